package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/internal/nacos/grpcapi"
)

// ConnsConfig is a measurement of what connected Nacos 2 clients cost a
// server: open Connections gRPC client connections, each set up as a Nacos
// 2 client does, with one registered instance and one subscription, hold
// them, let the heap settle, and compare the server's memory before and
// after.
type ConnsConfig struct {
	// Target is the server's HTTP address (for /metrics and the settle
	// calls); the gRPC API is at its port + GRPCPortOffset.
	Target         string
	GRPCPortOffset int
	Connections    int
	// Concurrency is how many connections are set up at once.
	Concurrency int
	ServerPID   int
	// MetricsURL serves Prometheus text with go_memstats (default
	// http://Target/metrics; "none" to skip).
	MetricsURL string
	Settle     time.Duration
	Timeout    time.Duration
	// Hold keeps the connections open this long after the measurement
	// (to profile the server meanwhile).
	Hold     time.Duration
	RunID    string
	Tags     map[string]string
	Progress *Progress
}

// ConnsResult is the JSON result of a connection measurement (kind
// "connections").
type ConnsResult struct {
	Schema       int               `json:"schema"`
	Kind         string            `json:"kind"`
	Target       string            `json:"target"`
	Tags         map[string]string `json:"tags,omitempty"`
	Started      time.Time         `json:"started"`
	Requested    int               `json:"requested"`
	Connected    int               `json:"connected"`
	Errors       int64             `json:"errors"`
	ErrorKinds   map[string]int64  `json:"error_kinds,omitempty"`
	SetupSeconds float64           `json:"setup_seconds"`
	Before       MemSnapshot       `json:"before"`
	After        MemSnapshot       `json:"after"`
	// Per-connection figures: ΔRSS, Δlive heap, Δgoroutine stacks and
	// Δgoroutines over the connected count.
	RSSPerConn        float64 `json:"rss_bytes_per_conn"`
	HeapLivePerConn   float64 `json:"heap_live_bytes_per_conn,omitempty"`
	StackPerConn      float64 `json:"stack_bytes_per_conn,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn,omitempty"`
}

// MeasureConns runs a connection measurement.
func MeasureConns(ctx context.Context, cfg ConnsConfig) (*ConnsResult, error) {
	if cfg.Connections <= 0 {
		return nil, errors.New("--connections must be positive")
	}
	if cfg.GRPCPortOffset == 0 {
		cfg.GRPCPortOffset = DefaultGRPCPortOffset
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 30 * time.Second
	}
	if cfg.RunID == "" {
		cfg.RunID = "conns"
	}
	gt, err := GRPCTargets([]string{cfg.Target}, cfg.GRPCPortOffset)
	if err != nil {
		return nil, err
	}
	fc := FillConfig{Target: cfg.Target, ServerPID: cfg.ServerPID, MetricsURL: cfg.MetricsURL, Settle: cfg.Settle,
		Concurrency: 8, Timeout: cfg.Timeout}
	if fc.MetricsURL == "" {
		fc.MetricsURL = "http://" + cfg.Target + "/metrics"
	}
	hd := NewHTTPDriver([]string{cfg.Target}, HTTPOptions{Conns: 8, Timeout: cfg.Timeout})
	defer hd.Close()
	gd := NewGRPCDriver(gt, GRPCOptions{Conns: 1, Timeout: cfg.Timeout})
	defer gd.Close()
	res := &ConnsResult{Schema: ResultSchema, Kind: "connections", Target: cfg.Target, Tags: cfg.Tags,
		Requested: cfg.Connections, Started: time.Now().UTC().Truncate(time.Millisecond)}
	if res.Before, err = settle(ctx, fc, hd); err != nil {
		return nil, err
	}

	prefix := "bench." + cfg.RunID
	conns := make([]*grpcConn, cfg.Connections)
	var next atomic.Int64
	var mu sync.Mutex
	kinds := map[string]int64{}
	fail := func(kind string) {
		mu.Lock()
		kinds[kind]++
		mu.Unlock()
	}
	live := &Live{}
	cfg.Progress.Phase("connect", 0, int64(cfg.Connections), live)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.Connections) || ctx.Err() != nil {
					return
				}
				c, err := gd.dial(ctx, gt[0])
				if err != nil {
					fail(grpcKind(err))
					live.add(Outcome{Kind: "dial"})
					continue
				}
				conns[i] = c
				svc := prefix + ".c." + strconv.FormatInt(i%100, 10)
				in := Instance{Service: svc, IP: IPFor(i), Port: 8080, Ephemeral: true, Metadata: "{}"}
				o, _ := gd.do(ctx, c, "register", grpcapi.TypeInstanceRequest, gd.instanceBody("registerInstance", &in), false)
				if o.OK() {
					o, _ = gd.do(ctx, c, "subscribe", grpcapi.TypeSubscribeServiceRequest,
						gd.subscribeBody(prefix+".w."+strconv.FormatInt(i%100, 10), true), false)
				}
				if !o.OK() {
					fail(o.Kind)
				}
				live.add(o)
			}
		})
	}
	wg.Wait()
	cfg.Progress.End()
	res.SetupSeconds = round(time.Since(t0).Seconds(), 3)
	defer func() {
		var cw sync.WaitGroup
		for _, c := range conns {
			if c != nil {
				cw.Go(c.close)
			}
		}
		cw.Wait()
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, c := range conns {
		if c != nil && !c.dead.Load() {
			res.Connected++
		}
	}
	for _, n := range kinds {
		res.Errors += n
	}
	if len(kinds) > 0 {
		res.ErrorKinds = kinds
	}
	if res.After, err = settle(ctx, fc, hd); err != nil {
		return nil, err
	}
	if cfg.Hold > 0 {
		cfg.Progress.Phase("hold", cfg.Hold, 0, nil)
		_ = sleepCtx(ctx, cfg.Hold)
		cfg.Progress.End()
	}
	if n := float64(res.Connected); n > 0 {
		if res.Before.RSSBytes > 0 {
			res.RSSPerConn = round(float64(res.After.RSSBytes-res.Before.RSSBytes)/n, 1)
		}
		if res.After.HeapLiveBytes > 0 {
			res.HeapLivePerConn = round(float64(res.After.HeapLiveBytes-res.Before.HeapLiveBytes)/n, 1)
		}
		if res.After.StackInuseBytes > 0 {
			res.StackPerConn = round(float64(res.After.StackInuseBytes-res.Before.StackInuseBytes)/n, 1)
		}
		if res.After.Goroutines > 0 {
			res.GoroutinesPerConn = round(float64(res.After.Goroutines-res.Before.Goroutines)/n, 2)
		}
	}
	return res, nil
}
