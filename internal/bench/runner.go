package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Config is one benchmark run.
type Config struct {
	// Targets are the HTTP addresses (host:port) of the servers under test.
	Targets  []string
	Scenario string
	// Duration and Warmup bound the measured loop and the unrecorded
	// warmup loop before it.
	Duration, Warmup time.Duration
	// Concurrency is the number of closed-loop workers; with Rate > 0 it is
	// the default bound on outstanding requests.
	Concurrency int
	// Rate > 0 selects the open loop (requests per second).
	Rate float64
	// MaxOutstanding bounds open-loop requests in flight (default
	// Concurrency).
	MaxOutstanding int
	// MaxRequests bounds the measured loop in count (0: time only).
	MaxRequests int64
	// Services and InstancesPerService size the pre-registered pools.
	Services, InstancesPerService int
	// Ephemeral makes the write scenarios (register, deregister and the
	// writes of mixed) write ephemeral instead of persistent instances.
	// Persistent writes go through the CP side (Raft) on distrod.
	Ephemeral bool
	// Cleanup removes what setup and the run registered.
	Cleanup bool
	// Timeout bounds each request.
	Timeout time.Duration
	// ServerPIDs are the server processes whose CPU and memory are read
	// from /proc (several for a local cluster).
	ServerPIDs []int
	// BackgroundRate is the converge scenario's background write rate.
	BackgroundRate float64
	// PollInterval and VisibleTimeout shape converge polling and bound the
	// wait for a push.
	PollInterval, VisibleTimeout time.Duration
	// Subscribers is the fanout scenario's subscriber count (default
	// DefaultFanoutSubscribers).
	Subscribers int
	// Mix is the mixed scenario's operation mix (see ParseMix).
	Mix string
	// Seed seeds the workers' random sources.
	Seed uint64
	// RunID is part of every service name (random if empty).
	RunID string
	// Tags are copied into the result (server=distrod, rep=2, ...).
	Tags map[string]string
	// CaptureDir keeps the first response body of each request kind (for
	// the ceiling server).
	CaptureDir string
	// Progress shows progress (nil: none).
	Progress *Progress
	// StdTransport makes the HTTP driver use net/http's http.Transport
	// instead of its lean keep-alive transport.
	StdTransport bool
	// Protocol is "v1" (HTTP Open API, the default) or "v2" (Nacos 2 gRPC,
	// GRPCDriver) when Driver is nil.
	Protocol string
	// GRPCPortOffset is added to each target's port to reach its gRPC
	// listener (v2; default DefaultGRPCPortOffset).
	GRPCPortOffset int
	// Driver overrides the driver Protocol selects (tests).
	Driver Driver
}

// Defaults fills zero fields with the defaults of the distrobench flags.
func (c *Config) Defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if c.MaxOutstanding <= 0 {
		c.MaxOutstanding = c.Concurrency
	}
	if c.Services <= 0 {
		c.Services = 1000
	}
	if c.InstancesPerService <= 0 {
		c.InstancesPerService = 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Protocol == "" {
		c.Protocol = "v1"
	}
	if c.GRPCPortOffset == 0 {
		c.GRPCPortOffset = DefaultGRPCPortOffset
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Millisecond
	}
	if c.VisibleTimeout <= 0 {
		c.VisibleTimeout = 10 * time.Second
	}
	if c.RunID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.RunID = hex.EncodeToString(b[:])
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("--target: at least one host:port is required"))
	}
	if !slices.Contains(Scenarios, c.Scenario) {
		errs = append(errs, fmt.Errorf("--scenario: %q is not one of %s", c.Scenario, strings.Join(Scenarios, ", ")))
	}
	if c.Duration <= 0 && c.MaxRequests <= 0 {
		errs = append(errs, errors.New("--duration or --max-requests must bound the run"))
	}
	if c.Duration <= 0 && c.Rate <= 0 && c.MaxRequests <= 0 {
		errs = append(errs, errors.New("a run needs a bound"))
	}
	if c.Rate < 0 || c.BackgroundRate < 0 {
		errs = append(errs, errors.New("rates must not be negative"))
	}
	if c.Scenario == "converge" && len(c.Targets) < 2 {
		errs = append(errs, errors.New("converge needs at least two targets"))
	}
	switch c.Protocol {
	case "v1":
	case "v2":
		switch c.Scenario {
		case "beat":
			errs = append(errs, errors.New("--scenario beat is not available over --protocol v2: v2 clients have no heartbeats, their connection keeps their instances alive"))
		case "mixed":
			errs = append(errs, errors.New("--scenario mixed is not available over --protocol v2: its mix has heartbeats and writes many instances into each service (a v2 connection holds one instance per service)"))
		}
		if c.StdTransport {
			errs = append(errs, errors.New("--net-http selects an HTTP transport: --protocol v1 only"))
		}
		if _, err := GRPCTargets(c.Targets, c.GRPCPortOffset); err != nil {
			errs = append(errs, fmt.Errorf("--grpc-port-offset: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("--protocol %q: want v1 or v2", c.Protocol))
	}
	if int64(c.Services)*int64(c.InstancesPerService) >= 1<<24 {
		errs = append(errs, errors.New("--services × --instances-per-service must stay below 16777216"))
	}
	return errors.Join(errs...)
}

// Run performs one benchmark run: setup, warmup, the measured loop, then
// teardown, and returns the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := cfg.Driver
	if d == nil && cfg.Protocol == "v2" {
		gt, _ := GRPCTargets(cfg.Targets, cfg.GRPCPortOffset) // checked by Validate
		d = NewGRPCDriver(gt, GRPCOptions{Conns: min(max(cfg.Concurrency, cfg.MaxOutstanding), 64), Timeout: cfg.Timeout, CaptureDir: cfg.CaptureDir})
		defer d.Close()
	}
	if d == nil {
		d = NewHTTPDriver(cfg.Targets, HTTPOptions{Conns: max(cfg.Concurrency, cfg.MaxOutstanding), Timeout: cfg.Timeout, CaptureDir: cfg.CaptureDir, StdTransport: cfg.StdTransport})
		defer d.Close()
	}
	scen, err := NewScenario(cfg.Scenario, &cfg)
	if err != nil {
		return nil, err
	}
	env := &Env{Cfg: &cfg, Driver: d, Prefix: "bench." + cfg.RunID, Progress: cfg.Progress}

	res := &Result{Schema: ResultSchema, Kind: "run", Scenario: cfg.Scenario, Driver: d.Name(), Targets: cfg.Targets,
		Tags: cfg.Tags, Concurrency: cfg.Concurrency, DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
		MaxRequests: cfg.MaxRequests, Services: cfg.Services, InstancesPerService: cfg.InstancesPerService, RunID: cfg.RunID,
		Started: time.Now().UTC().Truncate(time.Millisecond)}
	res.Mode = "closed"
	if cfg.Rate > 0 {
		res.Mode, res.Rate, res.MaxOutstanding = "open", cfg.Rate, cfg.MaxOutstanding
	}
	res.Host = &HostResult{BusyBeforePct: hostBusyPct(300 * time.Millisecond)}

	if err := scen.Setup(ctx, env); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	workers := cfg.Concurrency
	if cfg.Rate > 0 {
		workers = cfg.MaxOutstanding
	}
	ws := NewWorkers(workers, d.Nodes(), cfg.Seed)
	var seq atomic.Int64
	spec := LoopSpec{Workers: workers, Rate: cfg.Rate, Op: cfg.Scenario}
	if cfg.Warmup > 0 {
		live := &Live{}
		wspec := spec
		wspec.Duration = cfg.Warmup
		if wl, ok := scen.(WarmupLimiter); ok {
			wspec.MaxRequests = wl.WarmupLimit()
		}
		cfg.Progress.Phase("warmup", cfg.Warmup, 0, live)
		RunLoop(ctx, wspec, ws, &seq, scen.Op, live)
		cfg.Progress.End()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	before := snapshot(cfg.ServerPIDs)
	live := &Live{}
	spec.Duration, spec.MaxRequests = cfg.Duration, cfg.MaxRequests
	cfg.Progress.Phase("measure", cfg.Duration, cfg.MaxRequests, live)
	lr := RunLoop(ctx, spec, ws, &seq, scen.Op, live)
	cfg.Progress.End()
	after := snapshot(cfg.ServerPIDs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.fill(&lr, before, after, cfg.ServerPIDs)
	if r, ok := scen.(Reporter); ok {
		res.Extra = r.Report()
	}
	if cfg.Cleanup {
		if err := scen.Teardown(ctx, env); err != nil {
			res.CleanupError = err.Error()
		}
	} else if c, ok := scen.(*convergeScenario); ok {
		c.stopBackground()
	}
	return res, nil
}

// procSnapshot is the CPU state at the edge of the measured loop.
type procSnapshot struct {
	at     time.Time
	server []ProcCPU
	errs   []error
	self   ProcCPU
	host   HostCPU
	hostOK bool
}

func snapshot(pids []int) procSnapshot {
	s := procSnapshot{at: time.Now()}
	for _, pid := range pids {
		c, err := ReadProcCPU(strconv.Itoa(pid))
		s.server = append(s.server, c)
		s.errs = append(s.errs, err)
	}
	s.self, _ = ReadProcCPU("self")
	var err error
	s.host, err = ReadHostCPU()
	s.hostOK = err == nil
	return s
}

// hostBusyPct samples the machine-wide CPU use over d, in percent of all
// cores (-1 if /proc/stat is unreadable).
func hostBusyPct(d time.Duration) float64 {
	a, err := ReadHostCPU()
	if err != nil {
		return -1
	}
	time.Sleep(d)
	b, err := ReadHostCPU()
	if err != nil {
		return -1
	}
	busy, all := b.Busy-a.Busy, b.Busy-a.Busy+b.Idle-a.Idle
	if all <= 0 {
		return 0
	}
	return round(100*float64(busy)/float64(all), 1)
}

func (r *Result) fill(lr *LoopResult, before, after procSnapshot, pids []int) {
	st := lr.Stats
	el := lr.Elapsed()
	if el <= 0 {
		el = after.at.Sub(before.at)
	}
	r.ElapsedS = round(el.Seconds(), 4)
	r.Requests, r.OK, r.Errors = st.Requests(), st.OK, st.Failed
	r.ErrorKinds = st.Kinds
	r.Backlog, r.Stopped = lr.Backlog, lr.Stopped
	if el > 0 {
		r.ThroughputRPS = round(float64(st.Requests())/el.Seconds(), 1)
	}
	r.Latency = st.Latency.Summarize()
	if st.Lag != nil {
		s := st.Lag.Summarize()
		r.StartLag = &s
	}
	if n := st.Requests(); n > 0 {
		r.BytesPerResponse = round(float64(st.Bytes)/float64(n), 1)
	}
	if st.Metric != nil {
		r.Metric = &MetricResult{Name: metricName(r.Scenario), Latency: st.Metric.Summarize()}
	}
	if len(st.Ops) > 1 {
		r.Ops = map[string]OpResult{}
		for _, name := range slices.Sorted(maps.Keys(st.Ops)) {
			o := st.Ops[name]
			op := OpResult{Requests: o.OK + o.Failed, Errors: o.Failed, Latency: o.Latency.Summarize()}
			if el > 0 {
				op.ThroughputRPS = round(float64(op.Requests)/el.Seconds(), 1)
			}
			if op.Requests > 0 {
				op.BytesPerResponse = round(float64(o.Bytes)/float64(op.Requests), 1)
			}
			r.Ops[name] = op
		}
	}
	wall := after.at.Sub(before.at).Seconds()
	var serverCPU time.Duration
	if len(pids) > 0 {
		sr := &ServerResult{PIDs: pids}
		for i, pid := range pids {
			if before.errs[i] != nil || after.errs[i] != nil {
				sr.Error = fmt.Sprintf("pid %d: %v", pid, errors.Join(before.errs[i], after.errs[i]))
				continue
			}
			serverCPU += after.server[i].Total() - before.server[i].Total()
			if m, err := ReadProcMem(strconv.Itoa(pid)); err == nil {
				sr.RSSBytes += m.RSS
				sr.HWMBytes += m.HWM
				sr.Threads += m.Threads
			}
		}
		sr.CPUSeconds = round(serverCPU.Seconds(), 3)
		if wall > 0 {
			sr.CPUUtilization = round(serverCPU.Seconds()/wall, 3)
		}
		if serverCPU > 0 {
			sr.RequestsPerCPUSecond = round(float64(st.Requests())/serverCPU.Seconds(), 1)
		}
		r.Server = sr
	}
	self := after.self.Total() - before.self.Total()
	r.Client = &CPUResult{CPUSeconds: round(self.Seconds(), 3)}
	if wall > 0 {
		r.Client.CPUUtilization = round(self.Seconds()/wall, 3)
	}
	if before.hostOK && after.hostOK && r.Host != nil {
		busy := after.host.Busy - before.host.Busy
		r.Host.BusyCPUSeconds = round(busy.Seconds(), 3)
		other := busy - serverCPU - self
		if len(pids) > 0 {
			r.Host.OtherCPUSeconds = round(max(other, 0).Seconds(), 3)
		}
	}
}

func metricName(scenario string) string {
	switch scenario {
	case "converge":
		return "time_to_visible_everywhere"
	case "push":
		return "register_to_push"
	case "fanout":
		return "register_to_push_per_subscriber"
	}
	return scenario
}
