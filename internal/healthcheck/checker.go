package healthcheck

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/distro-registry/distro/internal/addrpolicy"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Config tunes the checker.
type Config struct {
	// Interval is the check period of an instance, unless its cluster
	// sets one (intervalMillis).
	Interval time.Duration
	// Timeout bounds one check, unless its cluster sets one (timeoutMillis).
	Timeout time.Duration
	// Threshold is the number of consecutive failures that mark a healthy
	// instance unhealthy, and of consecutive successes that restore it
	// (Nacos switch checkTimes).
	Threshold int
	// Workers bounds the checks in flight.
	Workers int
	// DefaultType is the checker of clusters without explicit settings:
	// model.CheckNone (no checks until a cluster is configured) or
	// model.CheckTCP (Nacos's default).
	DefaultType string
	// Tick is the scheduler's resolution: due checks start within a tick.
	Tick time.Duration
	// Jitter spreads checks: each next check is due Interval × (1 ± Jitter)
	// after the last one, and a new instance's first check at a random
	// point of its first interval.
	Jitter float64
	// WriteTimeout bounds writing a changed state.
	WriteTimeout time.Duration
	// Addrs decides which addresses the default prober may connect to
	// (addrpolicy.Default: no link-local or cloud metadata addresses).
	Addrs addrpolicy.Policy
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{Interval: 5 * time.Second, Timeout: 2 * time.Second, Threshold: 3, Workers: 32,
		DefaultType: model.CheckNone, Tick: 100 * time.Millisecond, Jitter: 0.1, WriteTimeout: 5 * time.Second,
		Addrs: addrpolicy.Default()}
}

// Ownership tells the checker which services this node is responsible for
// and when that changes; registry.Local implements it.
type Ownership interface {
	Owns(model.ServiceKey) bool
	OnOwnership(fn func(gained, lost []model.ServiceKey))
}

// Checker checks the persistent instances of the services this node owns
// and records their health through the registry write path.
type Checker struct {
	cfg    Config
	st     *store.Store
	w      registry.Writer
	own    Ownership
	prober Prober
	clk    clock.Clock
	log    *slog.Logger
	m      *metrics

	mu       sync.Mutex
	services map[model.ServiceKey]*service
	q        queue
	checked  int // targets whose checker is not NONE

	jobs chan job

	// pending holds the verdicts to write, the latest per target (under
	// mu); the writer goroutine drains it, so a slow or failing write (a
	// Raft without quorum) never holds up a check worker.
	pending map[*target]verdictWrite
	wake    chan struct{}

	logLimit   *rate.Limiter
	suppressed atomic.Int64
}

// verdictWrite is a verdict waiting to be written, with what its log line
// says.
type verdictWrite struct {
	gen      uint64
	healthy  bool
	probe    Probe
	failures int
	probeErr error
}

// Retry delays of the writer after a failed write (doubling).
const (
	writeRetryMin = 500 * time.Millisecond
	writeRetryMax = 10 * time.Second
)

// service is the checker's state for one owned service.
type service struct {
	meta    *model.ServiceMeta
	targets map[model.InstanceKey]*target
}

// target is one persistent instance of an owned service that has something
// to check: a checker other than NONE, or a verdict to lift. Instances of
// NONE clusters without a verdict (the default) have none, so that they
// cost nothing here; a change of the service's settings looks them up in
// the store again.
type target struct {
	svc  model.ServiceKey
	ik   model.InstanceKey
	inst *model.Instance
	// probe is resolved from the instance and its cluster's settings;
	// interval is its period.
	probe    Probe
	interval time.Duration
	due      time.Time
	idx      int // position in the queue, -1 when not queued
	inflight bool
	// gen changes whenever the probe changes, so that a result of the old
	// probe is not counted for the new one.
	gen  uint64
	runs runs
	// lift is set while the stored record carries an unhealthy verdict;
	// a NONE target is checked only then, to lift it.
	lift bool
}

type job struct {
	t     *target
	gen   uint64
	probe Probe
}

// New builds a checker writing through w. It subscribes to st's change
// events and own's ownership changes: call it before the store is shared
// and before the node starts. prober nil uses NewNetProber(cfg.Addrs); reg
// may be nil.
func New(cfg Config, st *store.Store, w registry.Writer, own Ownership, prober Prober, clk clock.Clock, log *slog.Logger, reg prometheus.Registerer) *Checker {
	if prober == nil {
		prober = NewNetProber(cfg.Addrs)
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Threshold < 1 {
		cfg.Threshold = 1
	}
	c := &Checker{cfg: cfg, st: st, w: w, own: own, prober: prober, clk: clk, log: log,
		services: make(map[model.ServiceKey]*service), jobs: make(chan job, cfg.Workers),
		pending: make(map[*target]verdictWrite), wake: make(chan struct{}, 1),
		logLimit: rate.NewLimiter(rate.Every(200*time.Millisecond), 20)}
	c.m = newMetrics(reg, c)
	st.OnChange(c.onChange)
	own.OnOwnership(c.onOwnership)
	return c
}

// Scheduled returns the number of instances this node checks.
func (c *Checker) Scheduled() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked
}

// Run checks due instances until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	// What this node already owns (standalone: everything) before any
	// ownership change arrives.
	var owned []model.ServiceKey
	c.st.RangeKeys(func(k model.ServiceKey, _ uint64) bool {
		if c.own.Owns(k) {
			owned = append(owned, k)
		}
		return true
	})
	c.onOwnership(owned, nil)

	var wg sync.WaitGroup
	for i := 0; i < c.cfg.Workers; i++ {
		wg.Go(func() { c.work(ctx) })
	}
	wg.Go(func() { c.writeLoop(ctx) })
	t := c.clk.NewTicker(c.cfg.Tick)
	defer func() {
		t.Stop()
		wg.Wait()
	}()
	var buf []job
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			buf = c.dispatch(buf[:0])
		}
	}
}

// dispatch hands due checks to the workers, at most as many as the pool
// can take now; the rest stay due for the next tick. The work is
// proportional to the number of due checks.
func (c *Checker) dispatch(buf []job) []job {
	free := cap(c.jobs) - len(c.jobs)
	if free <= 0 {
		return buf
	}
	now := c.clk.Now()
	var due []*target
	c.mu.Lock()
	due = c.q.popDue(now, free, due)
	for _, t := range due {
		if !c.own.Owns(t.svc) {
			// Ownership moved between an event and its hook: drop it,
			// the new owner checks it.
			c.dropServiceLocked(t.svc)
			continue
		}
		if now.Sub(t.due) > 2*c.cfg.Tick {
			c.m.late.Inc()
		}
		t.inflight = true
		buf = append(buf, job{t: t, gen: t.gen, probe: t.probe})
	}
	c.mu.Unlock()
	for _, j := range buf {
		c.jobs <- j // never blocks: only dispatch sends, within the free slots
	}
	return buf
}

func (c *Checker) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.jobs:
			var err error
			if j.probe.Check.Type != model.CheckNone {
				start := c.clk.Now()
				pctx, cancel := context.WithTimeout(ctx, j.probe.Timeout)
				err = c.prober.Probe(pctx, &j.probe)
				cancel()
				if ctx.Err() != nil {
					return // shutting down: the result says nothing
				}
				c.m.observe(j.probe.Check.Type, c.clk.Now().Sub(start), err)
			}
			c.complete(j, err)
		}
	}
}

// complete counts a result and, if the results now contradict the stored
// state often enough, queues the instance's new health for the writer.
func (c *Checker) complete(j job, probeErr error) {
	t := j.t
	recs, _ := c.records(t.svc, []model.InstanceKey{t.ik})
	c.mu.Lock()
	t.inflight = false
	if cur := c.lookupLocked(t.svc, t.ik); cur != t {
		// Removed or replaced while in flight.
		c.mu.Unlock()
		return
	}
	if len(recs) == 0 || !persistent(recs[0]) {
		// Gone from the store, or no longer persistent.
		if s := c.services[t.svc]; s != nil {
			c.removeTargetLocked(s, t)
			if len(s.targets) == 0 {
				delete(c.services, t.svc)
			}
		}
		c.mu.Unlock()
		return
	}
	if t.gen != j.gen {
		// The settings changed while in flight: start over with the new probe.
		c.scheduleLocked(t, true)
		c.mu.Unlock()
		return
	}
	rec := recs[0]
	threshold := c.cfg.Threshold
	if t.probe.Check.Type == model.CheckNone {
		// Not checked: a verdict left by an earlier checker is lifted
		// once, and the instance keeps its own health flag.
		threshold = 1
	}
	t.runs.add(probeErr == nil)
	stored := rec.Kind == store.KindLive
	healthy, write := verdict(stored, t.runs, threshold)
	if write {
		// The latest verdict wins: one still waiting is replaced.
		c.pending[t] = verdictWrite{gen: j.gen, healthy: healthy, probe: j.probe, failures: t.runs.fail, probeErr: probeErr}
	} else {
		// The results agree with the stored state again: a verdict still
		// waiting is out of date.
		delete(c.pending, t)
	}
	c.scheduleLocked(t, false)
	c.mu.Unlock()
	if write {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// writeLoop writes the pending verdicts, one at a time, until ctx ends.
// After a failed write it keeps the verdict (unless a newer one replaced
// it) and waits, doubling the wait up to writeRetryMax, so that a Raft
// without quorum costs one timed-out write per wait, not one per check.
func (c *Checker) writeLoop(ctx context.Context) {
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for {
			t, v, ok := c.nextVerdict()
			if !ok {
				break
			}
			err := c.writeVerdict(ctx, t, v)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				retry = 0
				continue
			}
			c.mu.Lock()
			if _, newer := c.pending[t]; !newer && c.lookupLocked(t.svc, t.ik) == t {
				c.pending[t] = v
			}
			c.mu.Unlock()
			retry = min(max(2*retry, writeRetryMin), writeRetryMax)
			select {
			case <-ctx.Done():
				return
			case <-c.clk.After(retry):
			}
		}
	}
}

// nextVerdict takes one pending verdict whose target is still current.
func (c *Checker) nextVerdict() (*target, verdictWrite, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, v := range c.pending {
		delete(c.pending, t)
		if c.lookupLocked(t.svc, t.ik) == t && t.gen == v.gen {
			return t, v, true
		}
	}
	return nil, verdictWrite{}, false
}

// writeVerdict records one verdict through the write path.
func (c *Checker) writeVerdict(ctx context.Context, t *target, v verdictWrite) error {
	if !c.own.Owns(t.svc) {
		return nil // the new owner checks it
	}
	c.mu.Lock()
	in := *t.inst
	c.mu.Unlock()
	in.Healthy = v.healthy
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	if _, err := c.w.Apply(wctx, &registry.Op{Kind: registry.OpSetHealth, Key: t.svc, Instance: in}); err != nil {
		if ctx.Err() == nil {
			c.m.writeErrors.Inc()
			c.logLimited(slog.LevelWarn, "health check: could not record the instance's health (retried)",
				"service", t.svc.String(), "instance", t.ik.String(), "error", err.Error())
		}
		return err
	}
	to := "unhealthy"
	if v.healthy {
		to = "healthy"
	}
	c.m.changes.WithLabelValues(to).Inc()
	c.logChange(t, v.probe, to, v.failures, v.probeErr)
	return nil
}

// logChange logs a state change.
func (c *Checker) logChange(t *target, p Probe, to string, failures int, probeErr error) {
	attrs := []any{"service", t.svc.String(), "instance", t.ik.String(), "check", p.Check.Type, "target", p.Addr()}
	if probeErr != nil {
		attrs = append(attrs, "consecutive_failures", failures, "reason", probeErr.Error())
	}
	c.logLimited(slog.LevelInfo, fmt.Sprintf("health check: persistent instance is now %s", to), attrs...)
}

// logLimited logs at most a burst of 20 lines and then 5 per second (state
// changes and write failures share the budget); the lines let through say
// how many were left out before them.
func (c *Checker) logLimited(level slog.Level, msg string, attrs ...any) {
	if !c.logLimit.AllowN(c.clk.Now(), 1) {
		c.suppressed.Add(1)
		return
	}
	if n := c.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, "suppressed_lines", n)
	}
	c.log.Log(context.Background(), level, msg, attrs...)
}

// persistent reports whether r is an instance the server checks: present,
// not ephemeral, not held by a client connection.
func persistent(r *store.Record) bool {
	return r.Alive() && !r.Instance.Ephemeral && r.Conn == ""
}

func (c *Checker) lookupLocked(k model.ServiceKey, ik model.InstanceKey) *target {
	if s := c.services[k]; s != nil {
		return s.targets[ik]
	}
	return nil
}

// resolve builds the probe of inst under meta.
func (c *Checker) resolve(meta *model.ServiceMeta, inst *model.Instance) (Probe, time.Duration) {
	cm := meta.Cluster(inst.Cluster, c.cfg.DefaultType)
	p := Probe{Host: inst.IP, Port: cm.CheckPortFor(inst.Port), Check: cm.HealthChecker, Timeout: c.cfg.Timeout}
	if ms := cm.HealthChecker.TimeoutMs; ms > 0 {
		p.Timeout = time.Duration(ms) * time.Millisecond
	}
	interval := c.cfg.Interval
	if ms := cm.HealthChecker.IntervalMs; ms > 0 {
		interval = time.Duration(ms) * time.Millisecond
	}
	return p, interval
}

// scheduleLocked queues t's next check: fresh (a new or re-configured
// target) at a random point of its first interval, otherwise one interval
// (± jitter) from now. A NONE target is queued only while it carries a
// verdict to lift.
func (c *Checker) scheduleLocked(t *target, fresh bool) {
	if t.inflight {
		return // complete reschedules it
	}
	if t.probe.Check.Type == model.CheckNone && !t.lift {
		c.q.remove(t)
		return
	}
	var d time.Duration
	if fresh {
		d = time.Duration(rand.Float64() * float64(t.interval))
	} else {
		d = time.Duration(float64(t.interval) * (1 + c.cfg.Jitter*(2*rand.Float64()-1)))
	}
	c.q.schedule(t, c.clk.Now().Add(d))
}

// setProbeLocked installs a new probe: counting starts over.
func (c *Checker) setProbeLocked(t *target, p Probe, interval time.Duration) {
	if t.gen > 0 && t.probe.Check.Type != model.CheckNone {
		c.checked--
	}
	if p.Check.Type != model.CheckNone {
		c.checked++
	}
	t.gen++
	t.probe, t.interval, t.runs = p, interval, runs{}
	delete(c.pending, t) // a verdict of the old probe
}

func (c *Checker) removeTargetLocked(s *service, t *target) {
	c.q.remove(t)
	delete(c.pending, t)
	if t.probe.Check.Type != model.CheckNone {
		c.checked--
	}
	delete(s.targets, t.ik)
}

// onChange keeps targets in step with the store: persistent instances of
// owned services are added, updated or dropped; a change of the service's
// settings re-resolves all of them. It runs on the writer's goroutine and
// only updates in-memory state; changes of ephemeral instances (nearly all
// of the write traffic) return before taking any lock.
func (c *Checker) onChange(ev store.Event) {
	if !ev.MetaChanged && !touchesPersistent(ev.Changed) {
		// An instance that turned from persistent into ephemeral leaves a
		// target behind: complete drops it at its next check.
		return
	}
	if !c.own.Owns(ev.Key) {
		return
	}
	c.mu.Lock()
	s := c.services[ev.Key]
	c.mu.Unlock()
	if s == nil && !anyPersistent(ev.Changed) && !ev.MetaChanged {
		return
	}
	var meta *model.ServiceMeta
	if s == nil || ev.MetaChanged {
		meta = c.loadMeta(ev.Key)
	}
	if s == nil && !ev.MetaChanged && !c.anyToCheck(meta, ev.Changed) {
		return // e.g. instances of a NONE cluster: nothing to keep
	}
	var recs []*store.Record
	if ev.MetaChanged {
		// Instances without a target may need one under the new settings.
		recs, _ = c.records(ev.Key, nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	created := false
	if s = c.services[ev.Key]; s == nil {
		s = &service{meta: meta, targets: make(map[model.InstanceKey]*target)}
		created = true
	} else if ev.MetaChanged {
		s.meta = meta
		for _, t := range s.targets {
			c.refreshLocked(s, t, t.inst, t.lift)
		}
	}
	for _, r := range recs {
		c.upsertLocked(s, ev.Key, r)
	}
	for _, r := range ev.Changed {
		c.upsertLocked(s, ev.Key, r)
	}
	switch {
	case len(s.targets) == 0 && !created:
		delete(c.services, ev.Key)
	case len(s.targets) > 0 && created:
		c.services[ev.Key] = s
	}
}

// touchesPersistent reports whether any record is a version of a
// persistent instance (present or not: a deregistration must drop its target).
func touchesPersistent(recs []*store.Record) bool {
	for _, r := range recs {
		if !r.Instance.Ephemeral {
			return true
		}
	}
	return false
}

func anyPersistent(recs []*store.Record) bool {
	for _, r := range recs {
		if persistent(r) {
			return true
		}
	}
	return false
}

// records reads the persistent instances of service k (only keys, when
// non-nil) and its settings from the store: the CP part, which holds them
// when the node runs Raft (internal/raftcp), first, then the Distro
// records (a node without the CP side, such as the in-memory test cluster,
// keeps persistent instances and settings there).
func (c *Checker) records(k model.ServiceKey, keys []model.InstanceKey) ([]*store.Record, *store.MetaRecord) {
	cp, cmr := c.st.PersistentRecords(k, keys)
	ap, amr := c.st.Records(k, keys)
	if cmr == nil {
		cmr = amr
	}
	if len(cp) == 0 {
		return ap, cmr
	}
	held := make(map[model.InstanceKey]bool, len(cp))
	for _, r := range cp {
		held[r.Key()] = true
	}
	for _, r := range ap {
		if !held[r.Key()] {
			cp = append(cp, r)
		}
	}
	return cp, cmr
}

// loadMeta reads a service's settings (without its records).
func (c *Checker) loadMeta(k model.ServiceKey) *model.ServiceMeta {
	_, mr := c.records(k, []model.InstanceKey{})
	return liveMeta(mr)
}

// liveMeta returns the settings of mr (stored records are never changed,
// so the checker reads them in place).
func liveMeta(mr *store.MetaRecord) *model.ServiceMeta {
	if mr == nil || mr.Deleted {
		return nil
	}
	return &mr.Meta
}

// anyToCheck reports whether one of recs would get a target under meta.
func (c *Checker) anyToCheck(meta *model.ServiceMeta, recs []*store.Record) bool {
	for _, r := range recs {
		if !persistent(r) {
			continue
		}
		if r.Kind == store.KindUnhealthy {
			return true
		}
		if p, _ := c.resolve(meta, r.Instance); p.Check.Type != model.CheckNone {
			return true
		}
	}
	return false
}

// upsertLocked adds, updates or removes the target of record r: a
// persistent instance has one while it has something to check (see target).
func (c *Checker) upsertLocked(s *service, k model.ServiceKey, r *store.Record) {
	t := s.targets[r.Key()]
	if !persistent(r) {
		if t != nil {
			c.removeTargetLocked(s, t)
		}
		return
	}
	lift := r.Kind == store.KindUnhealthy
	if t == nil {
		if p, _ := c.resolve(s.meta, r.Instance); p.Check.Type == model.CheckNone && !lift {
			return
		}
		t = &target{svc: k, ik: r.Key(), idx: -1}
		s.targets[t.ik] = t
	}
	c.refreshLocked(s, t, r.Instance, lift)
	if t.probe.Check.Type == model.CheckNone && !t.lift && !t.inflight {
		c.removeTargetLocked(s, t)
	}
}

// refreshLocked re-resolves t from its instance and the service settings;
// lift says whether the stored record carries an unhealthy verdict. A
// changed probe restarts counting and scheduling.
func (c *Checker) refreshLocked(s *service, t *target, inst *model.Instance, lift bool) {
	t.inst = inst
	p, interval := c.resolve(s.meta, inst)
	probeChanged := t.gen == 0 || p != t.probe || interval != t.interval
	liftChanged := lift != t.lift
	t.lift = lift
	switch {
	case probeChanged:
		c.setProbeLocked(t, p, interval)
		c.q.remove(t)
		c.scheduleLocked(t, true) // no-op while in flight: complete sees the new gen
	case liftChanged && t.probe.Check.Type == model.CheckNone:
		if lift {
			c.scheduleLocked(t, true)
		} else {
			c.q.remove(t)
		}
	}
}

// onOwnership follows ownership: the targets of lost services are dropped
// (a check in flight for one is discarded), gained services are loaded
// from the store.
func (c *Checker) onOwnership(gained, lost []model.ServiceKey) {
	c.mu.Lock()
	for _, k := range lost {
		c.dropServiceLocked(k)
	}
	c.mu.Unlock()
	for _, k := range gained {
		recs, mr := c.records(k, nil)
		if !anyPersistent(recs) {
			continue
		}
		c.mu.Lock()
		s := c.services[k]
		if s == nil {
			s = &service{meta: liveMeta(mr), targets: make(map[model.InstanceKey]*target)}
			c.services[k] = s
		}
		for _, r := range recs {
			c.upsertLocked(s, k, r)
		}
		if len(s.targets) == 0 {
			delete(c.services, k)
		}
		c.mu.Unlock()
	}
}

func (c *Checker) dropServiceLocked(k model.ServiceKey) {
	s := c.services[k]
	if s == nil {
		return
	}
	for _, t := range s.targets {
		c.removeTargetLocked(s, t)
	}
	delete(c.services, k)
}
