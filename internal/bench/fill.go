package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FillConfig is a memory measurement: register Instances persistent
// instances on one server as fast as possible, let the heap settle, and
// compare memory before and after.
type FillConfig struct {
	Target string
	// Instances to register, InstancesPerService per service.
	Instances           int64
	InstancesPerService int
	Concurrency         int
	// ServerPID is read for VmRSS/VmHWM (0: heap figures only).
	ServerPID int
	// MetricsURL serves Prometheus text with go_memstats (default
	// http://Target/metrics; "none" to skip).
	MetricsURL string
	// MaxTime bounds the registration phase; a fill cut short is reported
	// as incomplete with the count it reached.
	MaxTime time.Duration
	// Settle bounds the wait for the heap to settle afterwards.
	Settle  time.Duration
	Timeout time.Duration
	RunID   string
	Tags    map[string]string
	// Progress shows progress (nil: none).
	Progress *Progress
}

// MemSnapshot is the server's memory at one moment.
type MemSnapshot struct {
	RSSBytes int64 `json:"rss_bytes"`
	HWMBytes int64 `json:"hwm_bytes"`
	Threads  int   `json:"threads,omitempty"`
	// Heap figures from go_memstats (0 when the server has no /metrics).
	HeapAllocBytes int64 `json:"heap_alloc_bytes,omitempty"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes,omitempty"`
	NextGCBytes    int64 `json:"next_gc_bytes,omitempty"`
	// HeapLiveBytes is the heap the last GC marked live
	// (go_gc_heap_live_bytes, runtime/metrics /gc/heap/live:bytes); the
	// settle phase makes sure that GC ran after the fill. A server without
	// that series gets the estimate next_gc / (1 + GOGC/100), which also
	// counts GOGC/100 / (1 + GOGC/100) of the stacks the GC scanned (the
	// GC's goal grows with them): half of them by default.
	HeapLiveBytes int64 `json:"heap_live_bytes,omitempty"`
	GCCycles      int64 `json:"gc_cycles,omitempty"`
	// StackInuseBytes (goroutine stacks) and Goroutines, from go_memstats
	// and go_goroutines.
	StackInuseBytes int64 `json:"stack_inuse_bytes,omitempty"`
	Goroutines      int64 `json:"goroutines,omitempty"`
}

// FillResult is the JSON result of a memory measurement (kind "memory").
type FillResult struct {
	Schema  int               `json:"schema"`
	Kind    string            `json:"kind"`
	Target  string            `json:"target"`
	Tags    map[string]string `json:"tags,omitempty"`
	Started time.Time         `json:"started"`
	// Requested and Registered instances; Complete is false when MaxTime
	// cut the fill short.
	Requested           int64            `json:"requested"`
	Registered          int64            `json:"registered"`
	Complete            bool             `json:"complete"`
	Services            int64            `json:"services"`
	InstancesPerService int              `json:"instances_per_service"`
	Errors              int64            `json:"errors"`
	ErrorKinds          map[string]int64 `json:"error_kinds,omitempty"`
	FillSeconds         float64          `json:"fill_seconds"`
	FillRateRPS         float64          `json:"fill_rate_rps"`
	SettleSeconds       float64          `json:"settle_seconds"`
	Before              MemSnapshot      `json:"before"`
	After               MemSnapshot      `json:"after"`
	// Per-instance figures: ΔRSS/N and Δlive heap/N.
	RSSPerInstance      float64 `json:"rss_bytes_per_instance"`
	HeapLivePerInstance float64 `json:"heap_live_bytes_per_instance,omitempty"`
	ServerCPUSeconds    float64 `json:"server_cpu_seconds,omitempty"`
}

// Fill runs a memory measurement.
func Fill(ctx context.Context, cfg FillConfig) (*FillResult, error) {
	if cfg.Instances <= 0 || cfg.Instances >= 1<<31 {
		return nil, errors.New("--instances must be between 1 and 2^31")
	}
	cfg.InstancesPerService = max(cfg.InstancesPerService, 1)
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.MetricsURL == "" {
		cfg.MetricsURL = "http://" + cfg.Target + "/metrics"
	}
	if cfg.MaxTime <= 0 {
		cfg.MaxTime = 10 * time.Minute
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 30 * time.Second
	}
	if cfg.RunID == "" {
		cfg.RunID = "fill"
	}
	d := NewHTTPDriver([]string{cfg.Target}, HTTPOptions{Conns: cfg.Concurrency, Timeout: cfg.Timeout})
	defer d.Close()
	env := &Env{Cfg: &Config{Services: 1, InstancesPerService: cfg.InstancesPerService}, Driver: d, Prefix: "bench." + cfg.RunID}
	res := &FillResult{Schema: ResultSchema, Kind: "memory", Target: cfg.Target, Tags: cfg.Tags, Requested: cfg.Instances,
		InstancesPerService: cfg.InstancesPerService, Started: time.Now().UTC().Truncate(time.Millisecond)}
	res.Services = (cfg.Instances + int64(cfg.InstancesPerService) - 1) / int64(cfg.InstancesPerService)

	var err error
	if res.Before, err = memSnapshot(cfg); err != nil {
		return nil, err
	}
	cpu0, _ := ReadProcCPU(strconv.Itoa(cfg.ServerPID))
	ws := NewWorkers(cfg.Concurrency, 1, 1)
	var seq atomic.Int64
	live := &Live{}
	cfg.Progress.Phase("fill", cfg.MaxTime, cfg.Instances, live)
	lr := RunLoop(ctx, LoopSpec{Workers: cfg.Concurrency, Duration: cfg.MaxTime, MaxRequests: cfg.Instances, Op: "register"}, ws, &seq,
		func(ctx context.Context, w *Worker, i int64) Outcome {
			in := env.PoolInstance("m", i, cfg.InstancesPerService, false)
			return d.Register(ctx, 0, &in)
		}, live)
	cfg.Progress.End()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := lr.Stats
	res.Registered, res.Errors, res.ErrorKinds = st.OK, st.Failed, st.Kinds
	res.Complete = st.Requests() >= cfg.Instances
	res.FillSeconds = round(lr.Elapsed().Seconds(), 3)
	if s := lr.Elapsed().Seconds(); s > 0 {
		res.FillRateRPS = round(float64(st.Requests())/s, 1)
	}
	if cpu1, err := ReadProcCPU(strconv.Itoa(cfg.ServerPID)); err == nil && cfg.ServerPID > 0 {
		res.ServerCPUSeconds = round((cpu1.Total() - cpu0.Total()).Seconds(), 3)
	}

	t0 := time.Now()
	if res.After, err = settle(ctx, cfg, d); err != nil {
		return nil, err
	}
	res.SettleSeconds = round(time.Since(t0).Seconds(), 3)
	if n := float64(res.Registered); n > 0 {
		if res.Before.RSSBytes > 0 {
			res.RSSPerInstance = round(float64(res.After.RSSBytes-res.Before.RSSBytes)/n, 1)
		}
		if res.After.HeapLiveBytes > 0 {
			res.HeapLivePerInstance = round(float64(res.After.HeapLiveBytes-res.Before.HeapLiveBytes)/n, 1)
		}
	}
	return res, nil
}

// settle makes the server's heap reflect only live data: it sends service
// list calls (GET /nacos/v1/ns/service/list, pageSize 1: each walks every
// service name and allocates in proportion, retaining nothing, so they drive
// the server's GC without adding cached renderings to its heap) until two
// GC cycles have completed after the fill, then waits for RSS to stop
// changing, bounded by cfg.Settle.
func settle(ctx context.Context, cfg FillConfig, d *HTTPDriver) (MemSnapshot, error) {
	deadline := time.Now().Add(cfg.Settle)
	first, err := memSnapshot(cfg)
	if err != nil {
		return first, err
	}
	if first.GCCycles > 0 || first.NextGCBytes > 0 {
		// Few workers: the calls' own allocations are in flight when a GC
		// marks, and would count as live.
		ws := NewWorkers(min(cfg.Concurrency, 2), 1, 2)
		var seq atomic.Int64
		for time.Now().Before(deadline) {
			RunLoop(ctx, LoopSpec{Workers: len(ws), Duration: 250 * time.Millisecond}, ws, &seq,
				func(ctx context.Context, w *Worker, _ int64) Outcome {
					o, _ := d.do(ctx, 0, http.MethodGet, PathServiceList, "pageNo=1&pageSize=1&groupName="+DefaultGroup, "", false)
					return o
				}, nil)
			s, err := memSnapshot(cfg)
			if err != nil {
				return s, err
			}
			if s.GCCycles >= first.GCCycles+2 {
				break
			}
		}
	}
	// RSS: stable within 0.5% over four samples 250 ms apart.
	var last MemSnapshot
	stable := 0
	for time.Now().Before(deadline) && stable < 4 {
		s, err := memSnapshot(cfg)
		if err != nil {
			return s, err
		}
		if last.RSSBytes > 0 && abs64(s.RSSBytes-last.RSSBytes)*200 <= last.RSSBytes {
			stable++
		} else {
			stable = 0
		}
		last = s
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return last, err
		}
	}
	return memSnapshot(cfg)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func memSnapshot(cfg FillConfig) (MemSnapshot, error) {
	var s MemSnapshot
	if cfg.ServerPID > 0 {
		m, err := ReadProcMem(strconv.Itoa(cfg.ServerPID))
		if err != nil {
			return s, fmt.Errorf("server pid %d: %w", cfg.ServerPID, err)
		}
		s.RSSBytes, s.HWMBytes, s.Threads = m.RSS, m.HWM, m.Threads
	}
	if cfg.MetricsURL == "none" {
		return s, nil
	}
	m, err := ScrapeMetrics(cfg.MetricsURL)
	if err != nil {
		return s, nil // heap figures are optional (a peer may have no /metrics)
	}
	s.HeapAllocBytes = int64(m["go_memstats_heap_alloc_bytes"])
	s.HeapInuseBytes = int64(m["go_memstats_heap_inuse_bytes"])
	s.NextGCBytes = int64(m["go_memstats_next_gc_bytes"])
	s.GCCycles = int64(m["go_gc_duration_seconds_count"])
	s.StackInuseBytes = int64(m["go_memstats_stack_inuse_bytes"])
	s.Goroutines = int64(m["go_goroutines"])
	gogc := 100.0
	if v, ok := m["go_gc_gogc_percent"]; ok && v > 0 {
		gogc = v
	}
	switch live := int64(m["go_gc_heap_live_bytes"]); {
	case live > 0:
		s.HeapLiveBytes = live
	case s.NextGCBytes > 0:
		s.HeapLiveBytes = min(int64(float64(s.NextGCBytes)/(1+gogc/100)), s.HeapAllocBytes)
	}
	return s, nil
}

// ScrapeMetrics fetches Prometheus text exposition from url and returns the
// unlabelled samples by name.
func ScrapeMetrics(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics parses unlabelled samples ("name value") of Prometheus text.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		out[f[0]] = v
	}
	return out, sc.Err()
}
