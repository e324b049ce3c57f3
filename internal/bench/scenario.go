package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario is one workload. Setup prepares the servers (pre-registered
// instances), Op is called by the load loop, Teardown removes what the
// scenario created (performance.md §5.6: leftovers skew later runs).
type Scenario interface {
	Setup(ctx context.Context, e *Env) error
	Op(ctx context.Context, w *Worker, seq int64) Outcome
	Teardown(ctx context.Context, e *Env) error
}

// WarmupLimiter is implemented by scenarios whose operations use up a
// finite pool: the warmup may take at most WarmupLimit operations, so that
// the measured loop keeps most of the pool.
type WarmupLimiter interface {
	WarmupLimit() int64
}

// Reporter is implemented by scenarios that add figures of their own to
// the result (background load, push counters).
type Reporter interface {
	Report() map[string]any
}

// Scenarios lists the scenario names NewScenario accepts.
var Scenarios = []string{"query", "register", "reregister", "beat", "deregister", "mixed", "subscribe", "converge", "push", "fanout"}

// NewScenario builds the named scenario for cfg.
func NewScenario(name string, cfg *Config) (Scenario, error) {
	switch name {
	case "query":
		return &queryScenario{}, nil
	case "register":
		return &registerScenario{}, nil
	case "reregister":
		return &poolScenario{role: "rr", ephemeral: true, op: "reregister"}, nil
	case "beat":
		return &poolScenario{role: "b", ephemeral: true, op: "beat"}, nil
	case "deregister":
		return &deregisterScenario{}, nil
	case "mixed":
		mix, err := ParseMix(cfg.Mix)
		if err != nil {
			return nil, err
		}
		return &mixedScenario{mix: mix}, nil
	case "converge":
		if len(cfg.Targets) < 2 {
			return nil, fmt.Errorf("converge needs at least 2 targets, got %d", len(cfg.Targets))
		}
		return &convergeScenario{}, nil
	case "push":
		return &pushScenario{}, nil
	case "subscribe":
		return &subscribeScenario{}, nil
	case "fanout":
		return &fanoutScenario{}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Scenarios, ", "))
}

// Env is what scenarios see of the run.
type Env struct {
	// Cfg is the run's configuration (pool sizes, rates, timeouts).
	Cfg *Config
	// Driver speaks to the targets.
	Driver Driver
	// Prefix starts every service name of this run ("bench.<run id>"), so
	// that runs against a long-lived peer never collide.
	Prefix   string
	Progress *Progress
}

// ServiceName is the name of service number i of a role ("q", "b", ...).
func (e *Env) ServiceName(role string, i int64) string {
	return e.Prefix + "." + role + "." + strconv.FormatInt(i, 10)
}

// PoolInstance is instance i of a role's pool: perService consecutive
// instances share a service.
func (e *Env) PoolInstance(role string, i int64, perService int, ephemeral bool) Instance {
	return Instance{Service: e.ServiceName(role, i/int64(max(perService, 1))), IP: IPFor(i), Port: 8080, Ephemeral: ephemeral, Metadata: "{}"}
}

// IPFor maps i (< 2^24) to a distinct address in 10.0.0.0/8; larger i wrap
// into the port (PoolInstance keeps port 8080, so keep i below 2^24).
func IPFor(i int64) string {
	u := uint32(i) & 0xffffff
	return "10." + strconv.Itoa(int(u>>16)) + "." + strconv.Itoa(int(u>>8&0xff)) + "." + strconv.Itoa(int(u&0xff))
}

// node returns the target a worker uses for writes and reads.
func (e *Env) node(w *Worker) int { return w.Node % max(e.Driver.Nodes(), 1) }

// Bulk runs fn for i in [0, n) with the run's setup concurrency (at least
// 32) and fails if more than 1% of the calls failed.
func (e *Env) Bulk(ctx context.Context, phase string, n int64, fn func(ctx context.Context, node int, i int64) Outcome) error {
	if n <= 0 {
		return nil
	}
	conc := min(max(e.Cfg.Concurrency, 32), 256)
	ws := NewWorkers(conc, e.Driver.Nodes(), e.Cfg.Seed+7)
	var seq atomic.Int64
	live := &Live{}
	e.Progress.Phase(phase, 0, n, live)
	r := RunLoop(ctx, LoopSpec{Workers: conc, MaxRequests: n, Op: phase}, ws, &seq,
		func(ctx context.Context, w *Worker, i int64) Outcome { return fn(ctx, w.Node, i) }, live)
	e.Progress.End()
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Stats.Failed*100 > max(r.Stats.Requests(), 1) {
		return fmt.Errorf("%s: %d of %d calls failed (%s)", phase, r.Stats.Failed, r.Stats.Requests(), kindsString(r.Stats.Kinds))
	}
	return nil
}

func kindsString(k map[string]int64) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(k)) {
		parts = append(parts, fmt.Sprintf("%s=%d", name, k[name]))
	}
	return strings.Join(parts, " ")
}

// registerPool registers n pool instances of role.
func (e *Env) registerPool(ctx context.Context, role string, n int64, ephemeral bool) error {
	per := e.Cfg.InstancesPerService
	return e.Bulk(ctx, "setup", n, func(ctx context.Context, node int, i int64) Outcome {
		in := e.PoolInstance(role, i, per, ephemeral)
		return e.Driver.Register(ctx, node, &in)
	})
}

// deregisterPool removes pool instances [from, to) of role.
func (e *Env) deregisterPool(ctx context.Context, role string, from, to int64, ephemeral bool) error {
	per := e.Cfg.InstancesPerService
	return e.Bulk(ctx, "cleanup", to-from, func(ctx context.Context, node int, i int64) Outcome {
		in := e.PoolInstance(role, from+i, per, ephemeral)
		return e.Driver.Deregister(ctx, node, &in)
	})
}

func (e *Env) poolSize() int64 {
	return int64(max(e.Cfg.Services, 1)) * int64(max(e.Cfg.InstancesPerService, 1))
}

// queryScenario: GET the instance list of a random service among
// --services, each pre-registered with --instances-per-service persistent
// instances.
type queryScenario struct {
	e *Env
}

func (s *queryScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	return e.registerPool(ctx, "q", e.poolSize(), false)
}

func (s *queryScenario) Op(ctx context.Context, w *Worker, _ int64) Outcome {
	svc := w.Rand.Int64N(int64(max(s.e.Cfg.Services, 1)))
	return s.e.Driver.Query(ctx, s.e.node(w), s.e.ServiceName("q", svc))
}

func (s *queryScenario) Teardown(ctx context.Context, e *Env) error {
	return e.deregisterPool(ctx, "q", 0, e.poolSize(), false)
}

// registerScenario: POST a new unique instance per operation, spread
// round-robin over --services (persistent unless --ephemeral). Over a
// driver that holds one instance per service and connection (v2 gRPC),
// each instance gets a service of its own instead.
type registerScenario struct {
	e        *Env
	high     atomic.Int64 // highest seq registered + 1
	distinct bool
}

// ServicePerInstance is implemented by drivers on which many new instances
// of one service would each need a connection of their own (v2 gRPC): the
// register scenario then puts every instance in a service of its own.
type ServicePerInstance interface {
	ServicePerInstance() bool
}

func (s *registerScenario) instance(seq int64) Instance {
	svc := seq % int64(max(s.e.Cfg.Services, 1))
	if s.distinct {
		svc = seq
	}
	return Instance{Service: s.e.ServiceName("r", svc), IP: IPFor(seq), Port: 8080 + int(seq>>24),
		Ephemeral: s.e.Cfg.Ephemeral, Metadata: "{}"}
}

func (s *registerScenario) Setup(_ context.Context, e *Env) error {
	s.e = e
	if sp, ok := e.Driver.(ServicePerInstance); ok {
		s.distinct = sp.ServicePerInstance()
	}
	return nil
}

func (s *registerScenario) Op(ctx context.Context, w *Worker, seq int64) Outcome {
	for {
		h := s.high.Load()
		if seq < h || s.high.CompareAndSwap(h, seq+1) {
			break
		}
	}
	in := s.instance(seq)
	return s.e.Driver.Register(ctx, s.e.node(w), &in)
}

func (s *registerScenario) Teardown(ctx context.Context, e *Env) error {
	return e.Bulk(ctx, "cleanup", s.high.Load(), func(ctx context.Context, node int, i int64) Outcome {
		in := s.instance(i)
		return e.Driver.Deregister(ctx, node, &in)
	})
}

// poolScenario re-registers (reregister) or heartbeats (beat) a fixed pool
// of pre-registered ephemeral instances, round-robin.
type poolScenario struct {
	e         *Env
	role, op  string
	ephemeral bool
}

func (s *poolScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	return e.registerPool(ctx, s.role, e.poolSize(), s.ephemeral)
}

func (s *poolScenario) Op(ctx context.Context, w *Worker, seq int64) Outcome {
	in := s.e.PoolInstance(s.role, seq%s.e.poolSize(), s.e.Cfg.InstancesPerService, s.ephemeral)
	var o Outcome
	if s.op == "beat" {
		o = s.e.Driver.Beat(ctx, s.e.node(w), &in)
	} else {
		o = s.e.Driver.Register(ctx, s.e.node(w), &in)
	}
	o.Op = s.op
	return o
}

func (s *poolScenario) Teardown(ctx context.Context, e *Env) error {
	return e.deregisterPool(ctx, s.role, 0, e.poolSize(), s.ephemeral)
}

// deregisterScenario: DELETE the instances of a pre-registered pool of
// --services × --instances-per-service instances (persistent unless
// --ephemeral), one per operation; the run stops early when the pool is
// used up.
type deregisterScenario struct {
	e    *Env
	high atomic.Int64
}

func (s *deregisterScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	return e.registerPool(ctx, "d", e.poolSize(), e.Cfg.Ephemeral)
}

func (s *deregisterScenario) Op(ctx context.Context, w *Worker, seq int64) Outcome {
	if seq >= s.e.poolSize() {
		return Outcome{Stop: true}
	}
	for {
		h := s.high.Load()
		if seq < h || s.high.CompareAndSwap(h, seq+1) {
			break
		}
	}
	in := s.e.PoolInstance("d", seq, s.e.Cfg.InstancesPerService, s.e.Cfg.Ephemeral)
	return s.e.Driver.Deregister(ctx, s.e.node(w), &in)
}

// WarmupLimit implements WarmupLimiter: a fifth of the pool.
func (s *deregisterScenario) WarmupLimit() int64 { return max(s.e.poolSize()/5, 1) }

func (s *deregisterScenario) Teardown(ctx context.Context, e *Env) error {
	return e.deregisterPool(ctx, "d", s.high.Load(), e.poolSize(), e.Cfg.Ephemeral)
}

// Mix is the operation mix of the mixed scenario: weights of query, beat,
// register and deregister.
type Mix struct {
	Query, Beat, Register, Deregister int
}

// DefaultMix is 80% query, 10% beat, 5% register, 5% deregister.
const DefaultMix = "query=80,beat=10,register=5,deregister=5"

// ParseMix parses "query=80,beat=10,register=5,deregister=5" (missing
// operations weigh 0; empty means DefaultMix).
func ParseMix(s string) (Mix, error) {
	if strings.TrimSpace(s) == "" {
		s = DefaultMix
	}
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return Mix{}, fmt.Errorf("mix %q: want op=weight,... with non-negative integer weights", s)
		}
		switch strings.TrimSpace(k) {
		case "query":
			m.Query = n
		case "beat":
			m.Beat = n
		case "register":
			m.Register = n
		case "deregister":
			m.Deregister = n
		default:
			return Mix{}, fmt.Errorf("mix: unknown operation %q (query, beat, register, deregister)", k)
		}
	}
	if m.Query+m.Beat+m.Register+m.Deregister == 0 {
		return Mix{}, fmt.Errorf("mix %q: all weights are zero", s)
	}
	return m, nil
}

// mixedScenario draws each operation from the mix. Registrations create
// new instances (persistent unless --ephemeral); deregistrations remove
// the oldest of those (or register when none is left).
type mixedScenario struct {
	e   *Env
	mix Mix

	mu      sync.Mutex
	fifo    []int64 // registered, not yet removed (seqs)
	removed int     // fifo[:removed] are gone
}

func (s *mixedScenario) Setup(ctx context.Context, e *Env) error {
	s.e = e
	if s.mix.Query > 0 {
		if err := e.registerPool(ctx, "q", e.poolSize(), false); err != nil {
			return err
		}
	}
	if s.mix.Beat > 0 {
		return e.registerPool(ctx, "b", e.poolSize(), true)
	}
	return nil
}

func (s *mixedScenario) written(seq int64) Instance {
	n := int64(max(s.e.Cfg.Services, 1))
	return Instance{Service: s.e.ServiceName("m", seq%n), IP: IPFor(seq), Port: 8080 + int(seq>>24), Ephemeral: s.e.Cfg.Ephemeral, Metadata: "{}"}
}

func (s *mixedScenario) Op(ctx context.Context, w *Worker, seq int64) Outcome {
	m := s.mix
	r := w.Rand.IntN(m.Query + m.Beat + m.Register + m.Deregister)
	e, node := s.e, s.e.node(w)
	switch {
	case r < m.Query:
		return e.Driver.Query(ctx, node, e.ServiceName("q", w.Rand.Int64N(int64(max(e.Cfg.Services, 1)))))
	case r < m.Query+m.Beat:
		in := e.PoolInstance("b", w.Rand.Int64N(e.poolSize()), e.Cfg.InstancesPerService, true)
		return e.Driver.Beat(ctx, node, &in)
	case r < m.Query+m.Beat+m.Register:
	default:
		s.mu.Lock()
		if s.removed < len(s.fifo) {
			victim := s.fifo[s.removed]
			s.removed++
			if s.removed > 4096 && s.removed*2 > len(s.fifo) {
				s.fifo = slices.Clone(s.fifo[s.removed:])
				s.removed = 0
			}
			s.mu.Unlock()
			in := s.written(victim)
			return e.Driver.Deregister(ctx, node, &in)
		}
		s.mu.Unlock()
	}
	in := s.written(seq)
	o := e.Driver.Register(ctx, node, &in)
	if o.OK() {
		s.mu.Lock()
		s.fifo = append(s.fifo, seq)
		s.mu.Unlock()
	}
	return o
}

func (s *mixedScenario) Teardown(ctx context.Context, e *Env) error {
	s.mu.Lock()
	left := slices.Clone(s.fifo[s.removed:])
	s.mu.Unlock()
	err := e.Bulk(ctx, "cleanup", int64(len(left)), func(ctx context.Context, node int, i int64) Outcome {
		in := s.written(left[i])
		return e.Driver.Deregister(ctx, node, &in)
	})
	if s.mix.Query > 0 {
		err = errors.Join(err, e.deregisterPool(ctx, "q", 0, e.poolSize(), false))
	}
	if s.mix.Beat > 0 {
		err = errors.Join(err, e.deregisterPool(ctx, "b", 0, e.poolSize(), true))
	}
	return err
}

// sleepCtx sleeps d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
