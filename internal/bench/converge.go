package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// convergeScenario measures propagation: each operation registers a new
// ephemeral instance (in a service of its own) on a random node, takes the
// time the registration was acknowledged, then polls every other node's
// instance list every --poll-interval until the instance is listed there.
// The sample is the time from the ack until the instance is visible on
// every node. The instance is then deregistered. With --background-rate,
// an open loop of other registrations (re-registrations of a pool with
// changing metadata, so each is a real change to replicate) runs
// meanwhile, on random nodes.
type convergeScenario struct {
	e *Env

	bgCancel context.CancelFunc
	bgDone   chan struct{}
	bg       LoopResult

	polls, cleanupFailed atomic.Int64
}

func (s *convergeScenario) bgPool() int64 { return s.e.poolSize() }

func (s *convergeScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	if e.Cfg.BackgroundRate <= 0 {
		return nil
	}
	if err := e.registerPool(ctx, "bg", s.bgPool(), true); err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(ctx)
	s.bgCancel, s.bgDone = cancel, make(chan struct{})
	ws := NewWorkers(max(64, int(e.Cfg.BackgroundRate/100)), e.Driver.Nodes(), e.Cfg.Seed+99)
	var seq atomic.Int64
	// Bounded in time like every loop: the whole run plus a margin.
	span := e.Cfg.Warmup + e.Cfg.Duration + time.Minute
	if e.Cfg.MaxRequests > 0 && e.Cfg.Rate > 0 {
		span = max(span, time.Duration(float64(e.Cfg.MaxRequests)/e.Cfg.Rate*float64(time.Second))+e.Cfg.Warmup+time.Minute)
	}
	go func() {
		defer close(s.bgDone)
		s.bg = RunLoop(bctx, LoopSpec{Workers: len(ws), Rate: e.Cfg.BackgroundRate, Duration: span, Op: "background"}, ws, &seq,
			func(ctx context.Context, w *Worker, seq int64) Outcome {
				in := e.PoolInstance("bg", seq%s.bgPool(), e.Cfg.InstancesPerService, true)
				in.Metadata = `{"seq":"` + strconv.FormatInt(seq, 10) + `"}`
				return e.Driver.Register(ctx, w.Rand.IntN(e.Driver.Nodes()), &in)
			}, nil)
	}()
	return nil
}

func (s *convergeScenario) Op(ctx context.Context, w *Worker, seq int64) Outcome {
	e := s.e
	nodes := e.Driver.Nodes()
	a := w.Rand.IntN(nodes)
	in := Instance{Service: e.ServiceName("c", seq), IP: IPFor(seq), Port: 9090, Ephemeral: true, Metadata: "{}"}
	o := e.Driver.Register(ctx, a, &in)
	o.Op = "converge"
	if !o.OK() {
		return o
	}
	ack := time.Now()
	deadline := ack.Add(e.Cfg.VisibleTimeout)
	var (
		mu   sync.Mutex
		last = ack
		kind string
		wg   sync.WaitGroup
	)
	for n := range nodes {
		if n == a {
			continue
		}
		wg.Go(func() {
			for {
				s.polls.Add(1)
				lo, hosts := e.Driver.Lookup(ctx, n, in.Service)
				now := time.Now()
				if lo.OK() && containsEndpoint(hosts, in.Endpoint()) {
					mu.Lock()
					if now.After(last) {
						last = now
					}
					mu.Unlock()
					return
				}
				if !now.Before(deadline) || ctx.Err() != nil {
					mu.Lock()
					kind = "not_visible"
					mu.Unlock()
					return
				}
				if sleepCtx(ctx, e.Cfg.PollInterval) != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if d := e.Driver.Deregister(ctx, a, &in); !d.OK() {
		s.cleanupFailed.Add(1)
	}
	if kind != "" {
		return o.Failed(kind)
	}
	o.Sample, o.HasSample = last.Sub(ack), true
	return o
}

// stopBackground ends the background load and waits for it.
func (s *convergeScenario) stopBackground() {
	if s.bgCancel != nil {
		s.bgCancel()
		<-s.bgDone
		s.bgCancel = nil
	}
}

func (s *convergeScenario) Teardown(ctx context.Context, e *Env) error {
	s.stopBackground()
	if e.Cfg.BackgroundRate <= 0 {
		return nil
	}
	return e.deregisterPool(ctx, "bg", 0, s.bgPool(), true)
}

// Report implements Reporter: the achieved background write rate and its
// errors, and polling counts.
func (s *convergeScenario) Report() map[string]any {
	s.stopBackground()
	m := map[string]any{
		"metric":              "time_to_visible_everywhere",
		"measured_from":       "register acknowledged",
		"poll_interval_ms":    float64(s.e.Cfg.PollInterval) / 1e6,
		"visible_timeout_ms":  float64(s.e.Cfg.VisibleTimeout) / 1e6,
		"polls":               s.polls.Load(),
		"cleanup_failed":      s.cleanupFailed.Load(),
		"background_rate_set": s.e.Cfg.BackgroundRate,
	}
	if st := s.bg.Stats; st != nil {
		el := s.bg.Elapsed().Seconds()
		m["background_requests"] = st.Requests()
		m["background_errors"] = st.Failed
		m["background_backlog"] = s.bg.Backlog
		if el > 0 {
			m["background_rate_achieved"] = float64(st.Requests()) / el
		}
		m["background_latency"] = st.Latency.Summarize()
		if len(st.Kinds) > 0 {
			m["background_error_kinds"] = st.Kinds
		}
	}
	return m
}

// pushScenario measures register-to-notification time: each operation
// subscribes to a new service on node A (v1: a list call with udpPort and
// a push-capable User-Agent; v2: SubscribeServiceRequest, pushes arrive as
// NotifySubscriberRequest on the connection's stream), registers an instance of it on node B (the
// next target, or A itself with one target), and waits for the push that
// lists the instance. The sample runs from the register request's start to
// the push's arrival. Pushes are acked as the Go SDK does.
type pushScenario struct {
	e *Env
	w Watcher

	cleanupFailed atomic.Int64
}

func (s *pushScenario) Setup(_ context.Context, e *Env) error {
	s.e = e
	w, ok := e.Driver.(Watcher)
	if !ok {
		return errors.New("push: the " + e.Driver.Name() + " driver cannot subscribe")
	}
	s.w = w
	return nil
}

func (s *pushScenario) Op(ctx context.Context, _ *Worker, seq int64) Outcome {
	e := s.e
	nodes := e.Driver.Nodes()
	a := int(seq % int64(nodes))
	b := (a + 1) % nodes
	in := Instance{Service: e.ServiceName("p", seq), IP: IPFor(seq), Port: 9091, Ephemeral: true, Metadata: "{}"}
	sub, o := s.w.Watch(ctx, a, in.Service)
	if !o.OK() {
		return o
	}
	defer sub.Close()
	t0 := time.Now()
	o = e.Driver.Register(ctx, b, &in)
	o.Op = "push"
	if !o.OK() {
		return o
	}
	timer := time.NewTimer(max(e.Cfg.VisibleTimeout-time.Since(t0), 0))
	defer timer.Stop()
	defer func() {
		if d := e.Driver.Deregister(ctx, b, &in); !d.OK() {
			s.cleanupFailed.Add(1)
		}
	}()
	for {
		select {
		case n := <-sub.C():
			if n.Contains(in.Endpoint()) {
				o.Sample, o.HasSample = n.At.Sub(t0), true
				return o
			}
		case <-timer.C:
			return o.Failed("no_push")
		case <-ctx.Done():
			return o.Failed("canceled")
		}
	}
}

func (s *pushScenario) Teardown(context.Context, *Env) error { return nil }

// Report implements Reporter.
func (s *pushScenario) Report() map[string]any {
	m := map[string]any{
		"metric":         "register_to_push",
		"measured_from":  "register request sent",
		"cleanup_failed": s.cleanupFailed.Load(),
	}
	switch d := s.e.Driver.(type) {
	case *HTTPDriver:
		ps := d.PushStats()
		m["udp_packets"], m["udp_acked"], m["udp_bad"] = ps.Packets, ps.Acked, ps.Bad
	case *GRPCDriver:
		ps := d.PushStats()
		m["grpc_pushes"], m["grpc_acked"], m["grpc_bad"] = ps.Packets, ps.Acked, ps.Bad
	}
	return m
}
