package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Config is one simulation run.
type Config struct {
	// Nodes is the cluster size N.
	Nodes int
	// Services and PerService give M = Services × PerService instances.
	Services, PerService int
	// Seed drives every random choice.
	Seed uint64
	// ChangeRate is client writes per simulated second.
	ChangeRate float64
	// Calm is the change phase without faults; Faults the phase with loss,
	// a partition and churn; Settle the quiet time after the heal before
	// the invariants are checked.
	Calm, Faults, Settle time.Duration
	// Loss is the probability that a call is lost while faults are on.
	Loss float64
	// Partition splits the cluster into two halves for this long, from the
	// start of the fault phase (0: no partition).
	Partition time.Duration
	// Churn nodes crash at the start of the fault phase and restart empty
	// half-way through it.
	Churn int
	// Join adds one new member after the settle phase and measures its
	// snapshot load and the keys that move to it.
	Join bool
	// Latency is the mean one-way latency; each pair gets a fixed latency
	// between 0.5× and 1.5× of it.
	Latency time.Duration
	// Timing measures process CPU time (not deterministic).
	Timing bool
	// Engine adjusts the engines' configuration (defaults: production).
	Engine func(*distro.Config)
}

// DefaultConfig is a small run that exercises every phase.
func DefaultConfig() Config {
	return Config{Nodes: 5, Services: 200, PerService: 10, Seed: 1, ChangeRate: 50,
		Calm: 20 * time.Second, Faults: 30 * time.Second, Settle: 25 * time.Second,
		Loss: 0.05, Partition: 10 * time.Second, Churn: 1, Join: true, Latency: time.Millisecond}
}

const (
	suspectAfter = time.Second     // unreachable → SUSPICIOUS
	downAfter    = 3 * time.Second // unreachable → DOWN
	upAfter      = time.Second     // reachable again → UP
	repairDelay  = time.Millisecond
	heartbeat    = 5 * time.Second // Nacos clients' beat interval
)

// event is one scheduled action.
type event struct {
	at  int64 // simulated ns since the epoch
	seq uint64
	fn  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// simClock is the simulated time every engine reads. Stepped engines never
// wait on it, so After and NewTicker never fire.
type simClock struct{ s *Sim }

func (c simClock) Now() time.Time                       { return time.Unix(0, c.s.now) }
func (c simClock) After(time.Duration) <-chan time.Time { return nil }
func (c simClock) NewTicker(time.Duration) clock.Ticker { return idleTicker{} }

type idleTicker struct{}

func (idleTicker) C() <-chan time.Time { return nil }
func (idleTicker) Stop()               {}

// node is one member; a restart replaces its incarnation.
type node struct {
	idx   int
	addr  string
	alive bool
	inc   int
	group int // partition side

	st    *store.Store
	local *registry.Local
	eng   *distro.Engine

	loadStart   time.Time
	loadAttempt int
	view        []distro.State // by member index, as this node sees it
}

// pairState tracks reachability between two members for the oracle
// failure detector.
type pairState struct {
	reachable bool
	since     int64
}

// Sim is one running simulation.
type Sim struct {
	cfg    Config
	ecfg   distro.Config
	rng    *rand.Rand
	now    int64
	seq    uint64
	events eventHeap
	ctx    context.Context
	log    *slog.Logger

	nodes   []*node
	members []string
	pairs   [][]pairState
	latency [][]int64
	// pending is the time of the scheduled send event per (from, to).
	pending [][]int64
	// blocked holds sends after a failed call until the call timeout.
	blocked [][]int64
	touched []bool
	touchL  []int

	faults      bool
	partitioned bool

	rep   *Report
	track tracker
}

// Run executes one simulation and returns its report.
func Run(cfg Config) (*Report, error) {
	if cfg.Nodes < 1 || cfg.Services < 1 || cfg.PerService < 1 {
		return nil, errors.New("sim: nodes, services and per-service must be positive")
	}
	if cfg.Churn >= cfg.Nodes {
		return nil, errors.New("sim: churn must leave at least one node running")
	}
	s := &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), ctx: context.Background(),
		log: slog.New(slog.DiscardHandler), now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	s.ecfg = distro.DefaultConfig("")
	if cfg.Engine != nil {
		cfg.Engine(&s.ecfg)
	}
	s.rep = newReport(cfg)
	s.rep.startNs = s.now
	s.track.init(s)
	s.run()
	return s.rep, nil
}

func (s *Sim) nowTime() time.Time { return time.Unix(0, s.now) }

// at schedules fn at simulated time t.
func (s *Sim) at(t int64, fn func()) {
	s.seq++
	heap.Push(&s.events, &event{at: max(t, s.now), seq: s.seq, fn: fn})
}

func (s *Sim) after(d time.Duration, fn func()) { s.at(s.now+int64(d), fn) }

// loop runs events until simulated time until.
func (s *Sim) loop(until int64) {
	for len(s.events) > 0 && s.events[0].at <= until {
		e := heap.Pop(&s.events).(*event)
		s.now = e.at
		e.fn()
		s.flushTouched()
	}
	s.now = max(s.now, until)
}

func addrOf(i int) string { return fmt.Sprintf("10.%d.%d.%d:8848", 1+i/65536, (i/256)%256, i%256) }

func (s *Sim) addMember() *node {
	i := len(s.nodes)
	n := &node{idx: i, addr: addrOf(i)}
	s.nodes = append(s.nodes, n)
	s.members = append(s.members, n.addr)
	for a := range s.pairs {
		s.pairs[a] = append(s.pairs[a], pairState{})
		s.latency[a] = append(s.latency[a], 0)
		s.pending[a] = append(s.pending[a], 0)
		s.blocked[a] = append(s.blocked[a], 0)
	}
	s.pairs = append(s.pairs, make([]pairState, i+1))
	s.latency = append(s.latency, make([]int64, i+1))
	s.pending = append(s.pending, make([]int64, i+1))
	s.blocked = append(s.blocked, make([]int64, i+1))
	s.touched = append(s.touched, false)
	for j := 0; j <= i; j++ {
		l := int64(s.cfg.Latency) / 2
		if s.cfg.Latency > 0 {
			l += s.rng.Int64N(int64(s.cfg.Latency))
		}
		s.latency[i][j], s.latency[j][i] = l, l
	}
	for _, m := range s.nodes {
		m.view = append(m.view, distro.StateSuspicious)
	}
	n.view = make([]distro.State, i+1)
	for j := range n.view {
		n.view[j] = distro.StateSuspicious
	}
	return n
}

// start gives n a new, empty incarnation.
func (s *Sim) start(n *node) {
	n.inc++
	n.alive = true
	for j := range n.view {
		n.view[j] = distro.StateSuspicious // as a fresh member.Health starts
	}
	n.st = store.New(n.addr, hlc.New(s.nowTime))
	n.local = registry.NewLocal(n.st, health.DefaultConfig(), simClock{s}, s.log)
	ec := s.ecfg
	ec.Self = n.addr
	n.eng = distro.New(ec, n.st, n.local, &transport{s: s, from: n}, simClock{s}, s.log, nil)
	inc := n.inc
	n.eng.EnableStepping(func(f func()) {
		s.after(repairDelay, func() {
			if n.alive && n.inc == inc {
				f()
				s.touch(n)
			}
		})
	})
	s.track.watch(n)
	for j := range s.nodes {
		if j != n.idx {
			s.setReach(n.idx, j)
		}
	}
	n.loadStart, n.loadAttempt = s.nowTime(), 0
	s.setView(n)
}

// reachable reports whether a call from a to b can get through (loss
// aside).
func (s *Sim) reachable(a, b int) bool {
	na, nb := s.nodes[a], s.nodes[b]
	if !na.alive || !nb.alive {
		return false
	}
	return !s.partitioned || na.group == nb.group
}

// setReach records the current reachability of a pair for the detector.
func (s *Sim) setReach(a, b int) {
	r := s.reachable(a, b)
	for _, p := range [][2]int{{a, b}, {b, a}} {
		ps := &s.pairs[p[0]][p[1]]
		if ps.reachable != r || ps.since == 0 {
			ps.reachable, ps.since = r, s.now
		}
	}
}

// faultChanged re-evaluates reachability and schedules the detector's
// decisions.
func (s *Sim) faultChanged() {
	for a := range s.nodes {
		for b := a + 1; b < len(s.nodes); b++ {
			s.setReach(a, b)
		}
	}
	for _, d := range []time.Duration{suspectAfter, downAfter} {
		s.after(d, s.refreshViews)
	}
}

// refreshViews applies the detector's current verdicts to every live node.
func (s *Sim) refreshViews() {
	for _, n := range s.nodes {
		if n.alive {
			s.setView(n)
		}
	}
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		for j, m := range s.nodes {
			if j != n.idx && n.view[j] == distro.StateUp {
				_ = n.eng.Probe(s.ctx, m.addr)
			}
		}
	}
}

// setView computes n's view from the detector and installs it if it changed.
func (s *Sim) setView(n *node) {
	changed := false
	members := make([]distro.Member, 0, len(s.nodes))
	for j, m := range s.nodes {
		st := distro.StateUp
		if j != n.idx {
			ps := s.pairs[n.idx][j]
			el := time.Duration(s.now - ps.since)
			st = n.view[j]
			switch {
			case ps.reachable && el >= upAfter:
				st = distro.StateUp
			case !ps.reachable && el >= downAfter:
				st = distro.StateDown
			case !ps.reachable && el >= suspectAfter && st == distro.StateUp:
				st = distro.StateSuspicious
			}
		}
		if st != n.view[j] {
			n.view[j], changed = st, true
		}
		members = append(members, distro.Member{Addr: m.addr, State: st})
	}
	if changed || n.eng.View().Members == nil {
		before := n.eng.View().Eligible()
		n.eng.SetView(distro.NewView(n.addr, members))
		s.rep.noteMove(s, n, before, n.eng.View().Eligible())
		s.touch(n)
	}
}

// touch marks n's send queues for rescheduling after the current event.
func (s *Sim) touch(n *node) {
	if !s.touched[n.idx] {
		s.touched[n.idx] = true
		s.touchL = append(s.touchL, n.idx)
	}
}

// flushTouched schedules the sends of every touched node's queues.
func (s *Sim) flushTouched() {
	for len(s.touchL) > 0 {
		l := s.touchL
		s.touchL = nil
		slices.Sort(l)
		for _, i := range l {
			s.touched[i] = false
			n := s.nodes[i]
			if !n.alive {
				continue
			}
			for j, m := range s.nodes {
				if j == i {
					continue
				}
				next, ok := n.eng.NextSend(m.addr)
				if !ok {
					continue
				}
				at := max(next.UnixNano(), s.now) + s.latency[i][j]
				at = max(at, s.blocked[i][j])
				if p := s.pending[i][j]; p != 0 && p <= at {
					continue
				}
				s.pending[i][j] = at
				inc := n.inc
				s.at(at, func() { s.send(n, inc, j, at) })
			}
		}
	}
}

func (s *Sim) send(n *node, inc, j int, at int64) {
	if s.pending[n.idx][j] == at {
		s.pending[n.idx][j] = 0
	}
	if !n.alive || n.inc != inc {
		return
	}
	if err := n.eng.StepSend(s.ctx, s.nodes[j].addr); err != nil {
		s.blocked[n.idx][j] = s.now + int64(s.ecfg.CallTimeout)
	}
	s.touch(n)
}

// transport delivers calls between simulated nodes, marshalling every
// message so that the receiver decodes fresh copies and sizes are real.
type transport struct {
	s    *Sim
	from *node
}

var errUnreachable = status.Error(codes.Unavailable, "sim: peer unreachable")

func (t *transport) peer(addr string) (*node, error) {
	s := t.s
	for _, n := range s.nodes {
		if n.addr == addr {
			if !s.reachable(t.from.idx, n.idx) {
				return nil, errUnreachable
			}
			return n, nil
		}
	}
	return nil, errUnreachable
}

func (t *transport) Call(ctx context.Context, peer string, req *clusterpb.Request) (*clusterpb.Response, error) {
	s := t.s
	kind := requestKind(req)
	to, err := t.peer(peer)
	if err == nil && s.faults && s.cfg.Loss > 0 && s.rng.Float64() < s.cfg.Loss {
		err = status.Error(codes.DeadlineExceeded, "sim: message lost")
	}
	if err != nil {
		s.rep.wire.lost(kind)
		return nil, err
	}
	in := &clusterpb.Request{}
	if err := roundTrip(req, in, func(n int) { s.rep.wire.add(kind, t.from.idx, n) }); err != nil {
		return nil, err
	}
	resp, herr := to.eng.HandleCall(ctx, t.from.addr, in)
	s.touch(to)
	if herr != nil {
		return nil, herr
	}
	out := &clusterpb.Response{}
	if err := roundTrip(resp, out, func(n int) { s.rep.wire.add(kind, to.idx, n) }); err != nil {
		return nil, err
	}
	return out, nil
}

func (t *transport) Snapshot(ctx context.Context, peer string, req *clusterpb.SnapshotRequest, fn func(*clusterpb.SnapshotChunk) error) error {
	s := t.s
	to, err := t.peer(peer)
	if err != nil {
		return err
	}
	return to.eng.HandleSnapshot(ctx, t.from.addr, req, func(c *clusterpb.SnapshotChunk) error {
		in := &clusterpb.SnapshotChunk{}
		if err := roundTrip(c, in, func(n int) { s.rep.wire.add("snapshot", to.idx, n) }); err != nil {
			return err
		}
		return fn(in)
	})
}

func roundTrip(m, into proto.Message, count func(int)) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	count(len(b))
	return proto.Unmarshal(b, into)
}

func requestKind(r *clusterpb.Request) string {
	switch k := r.GetKind().(type) {
	case *clusterpb.Request_Sync:
		return "sync"
	case *clusterpb.Request_Probe:
		return "probe"
	case *clusterpb.Request_Digest:
		if k.Digest.GetAllKeys() {
			return "pull"
		}
		return "digest"
	case *clusterpb.Request_KeyDigest:
		return "key-digest"
	case *clusterpb.Request_Fetch:
		return "fetch"
	case *clusterpb.Request_Forward:
		return "forward"
	}
	return "other"
}

// serviceKey and instance are the compact client model: pure functions of
// the indexes.
func serviceKey(i int) model.ServiceKey {
	return model.ServiceKey{Namespace: model.DefaultNamespace, Group: model.DefaultGroup, Name: fmt.Sprintf("svc-%06d", i)}
}

func instance(svc model.ServiceKey, j int, version int) model.Instance {
	in := model.Instance{IP: fmt.Sprintf("10.%d.%d.%d", 100+j/65536, (j/256)%256, j%256), Port: 8080,
		Weight: float64(1 + version%100), Healthy: true, Enabled: true, Ephemeral: true, Cluster: model.DefaultCluster}
	in.InstanceID = model.DefaultInstanceID(&in, svc)
	return in
}

func instanceKey(j int) model.InstanceKey {
	return model.InstanceKey{IP: fmt.Sprintf("10.%d.%d.%d", 100+j/65536, (j/256)%256, j%256), Port: 8080, Cluster: model.DefaultCluster}
}

// run is the whole scenario.
func (s *Sim) run() {
	cfg := s.cfg
	for range cfg.Nodes {
		s.addMember()
	}
	// Bootstrap: every node starts alone (first node, ready at once), then
	// learns the whole member list.
	for _, n := range s.nodes {
		n.alive = true
	}
	for _, n := range s.nodes {
		s.start(n)
		n.eng.SetView(distro.NewView(n.addr, nil))
		n.eng.StepLoad(s.ctx, n.loadStart, 0)
	}
	for a := range s.nodes {
		for b := range s.nodes {
			s.pairs[a][b] = pairState{reachable: true, since: s.now - int64(time.Hour)}
		}
	}
	s.refreshViews()
	s.loop(s.now)

	// Bulk load: every owner registers its services' instances; the real
	// sync path replicates them.
	t0 := s.now
	s.rep.phase = phaseBulk
	s.rep.wire.mark()
	elig := s.nodes[0].eng.View().Eligible()
	byAddr := map[string]*node{}
	for _, n := range s.nodes {
		byAddr[n.addr] = n
	}
	for i := range cfg.Services {
		k := serviceKey(i)
		owner := byAddr[distro.Owner(k, elig)]
		for j := range cfg.PerService {
			op := &registry.Op{Kind: registry.OpRegister, Key: k, Instance: instance(k, j, 0)}
			if _, err := owner.local.Apply(s.ctx, op); err != nil {
				s.rep.violate("I5", fmt.Sprintf("bulk register %s: %v", k, err))
			}
		}
		s.touch(owner)
	}
	s.track.bulk()
	s.flushTouched()
	// Replicate; done when no send is pending.
	for s.sendsPending() && len(s.events) > 0 {
		s.loop(s.events[0].at)
	}
	s.rep.bulkDone(s, time.Duration(s.now-t0))

	// Verification rounds, each node on its own phase.
	for _, n := range s.nodes {
		s.scheduleVerify(n, s.now+s.rng.Int64N(int64(s.ecfg.VerifyInterval)))
	}

	// Calm change phase.
	s.rep.phase = phaseCalm
	s.rep.wire.mark()
	calmEnd := s.now + int64(cfg.Calm)
	s.scheduleChanges(calmEnd)
	s.loop(calmEnd)
	s.rep.closePhase(phaseCalm)

	// Fault phase: loss, a partition, churn; writes go on.
	s.rep.phase = phaseFaults
	faultEnd := s.now + int64(cfg.Faults)
	s.faults = true
	if cfg.Partition > 0 {
		for _, n := range s.nodes {
			n.group = 0
			if n.idx >= len(s.nodes)/2 {
				n.group = 1
			}
		}
		s.partitioned = true
		s.faultChanged()
		s.after(cfg.Partition, func() { s.partitioned = false; s.faultChanged() })
	}
	var churned []*node
	for c := range cfg.Churn {
		n := s.nodes[(1+c*7)%len(s.nodes)]
		if slices.Contains(churned, n) {
			continue
		}
		churned = append(churned, n)
		s.after(time.Second, func() { s.crash(n) })
		s.after(cfg.Faults/2, func() { s.restart(n) })
	}
	s.scheduleChanges(faultEnd)
	s.loop(faultEnd)
	s.faults = false
	s.faultChanged()

	// Settle and check.
	s.rep.phase = phaseSettle
	s.loop(s.now + int64(cfg.Settle))
	s.rep.closePhase(phaseFaults)
	s.check()

	if cfg.Join {
		s.rep.phase = phaseJoin
		n := s.addMember()
		n.alive = true
		s.start(n)
		s.faultChanged()
		s.rep.joinAt = s.now
		s.scheduleLoad(n, n.inc, upAfter)
		s.loop(s.now + int64(downAfter+5*time.Second))
		s.rep.closePhase(phaseJoin)
	}
	s.rep.finish(s)
}

func (s *Sim) sendsPending() bool {
	for i := range s.pending {
		for _, p := range s.pending[i] {
			if p != 0 {
				return true
			}
		}
	}
	return false
}

func (s *Sim) scheduleVerify(n *node, at int64) {
	inc := n.inc
	s.at(at, func() {
		if !n.alive || n.inc != inc {
			return
		}
		if ready, _ := n.eng.Ready(); ready {
			s.rep.verifyRound(s, n, func() { n.eng.VerifyOnce(s.ctx) })
			s.touch(n)
		}
		s.scheduleVerify(n, s.now+int64(s.ecfg.VerifyInterval))
	})
}

func (s *Sim) crash(n *node) {
	n.alive = false
	lost := s.track.crashed(n)
	n.eng, n.local, n.st = nil, nil, nil
	s.rep.LostInCrash += len(lost)
	for _, c := range lost {
		register := s.track.registered(c.si, c.ij)
		s.after(heartbeat, func() { s.write(c.si, c.ij, register) })
	}
	s.faultChanged()
}

func (s *Sim) restart(n *node) {
	s.start(n)
	s.faultChanged()
	s.scheduleLoad(n, n.inc, upAfter)
}

// scheduleLoad makes a startup load attempt after d, and retries.
func (s *Sim) scheduleLoad(n *node, inc int, d time.Duration) {
	s.after(d, func() {
		if !n.alive || n.inc != inc {
			return
		}
		mark := s.rep.wire.bytes["snapshot"]
		var ready bool
		cpu := s.rep.measure(func() { ready = n.eng.StepLoad(s.ctx, n.loadStart, n.loadAttempt) })
		n.loadAttempt++
		s.touch(n)
		if !ready {
			s.scheduleLoad(n, inc, s.ecfg.LoadRetry)
			return
		}
		s.rep.loaded(s, n, s.rep.wire.bytes["snapshot"]-mark, cpu)
		s.checkLoaded(n)
	})
}

// scheduleChanges issues client writes at Poisson times until end.
func (s *Sim) scheduleChanges(end int64) {
	if s.cfg.ChangeRate <= 0 {
		return
	}
	var next func()
	next = func() {
		gap := int64(s.rng.ExpFloat64() / s.cfg.ChangeRate * float64(time.Second))
		if s.now+gap >= end {
			return
		}
		s.after(time.Duration(gap), func() {
			s.change()
			next()
		})
	}
	next()
}

// change is one client write of a random instance.
func (s *Sim) change() {
	// An instance without a change in flight, so that the expected final
	// state is the last acknowledged write.
	var si, ij int
	for try := 0; ; try++ {
		si, ij = s.rng.IntN(s.cfg.Services), s.rng.IntN(s.cfg.PerService)
		if !s.track.busy(si, ij) || try > 20 {
			break
		}
	}
	register := !s.track.registered(si, ij) || s.rng.IntN(2) == 1
	s.write(si, ij, register)
}

// write registers or deregisters instance ij of service si through a random
// live node's write path.
func (s *Sim) write(si, ij int, register bool) {
	var alive []*node
	for _, n := range s.nodes {
		if n.alive {
			alive = append(alive, n)
		}
	}
	entry := alive[s.rng.IntN(len(alive))]
	k := serviceKey(si)
	op := &registry.Op{Kind: registry.OpDeregister, Key: k, Instance: instance(k, ij, s.track.nextVersion(si, ij))}
	if register {
		op.Kind = registry.OpRegister
	}
	_, err := entry.eng.Apply(s.ctx, op)
	s.touch(entry)
	if err != nil {
		s.rep.violate("I5", fmt.Sprintf("write %s %s at %s failed: %v", op.Kind, k, entry.addr, err))
		return
	}
	s.track.issued(si, ij, register, entry)
}

// check verifies the invariants after the settle phase: every live node
// holds the same data (I1), every acknowledged registration is listed and
// every acknowledged deregistration is gone everywhere (I2, I3), and every
// change reached every node (I6).
func (s *Sim) check() {
	var live []*node
	for _, n := range s.nodes {
		if n.alive {
			live = append(live, n)
			if ready, msg := n.eng.Ready(); !ready {
				s.rep.violate("I8", fmt.Sprintf("%s not ready after the settle phase: %s", n.addr, msg))
			}
		}
	}
	ref := live[0]
	var refKeys []model.ServiceKey
	ref.st.RangeKeys(func(k model.ServiceKey, _ uint64) bool { refKeys = append(refKeys, k); return true })
	for _, n := range live[1:] {
		cnt := 0
		n.st.RangeKeys(func(model.ServiceKey, uint64) bool { cnt++; return true })
		if cnt != len(refKeys) {
			s.rep.violate("I1", fmt.Sprintf("%s holds %d keys, %s %d", n.addr, cnt, ref.addr, len(refKeys)))
		}
		diff := 0
		for _, k := range refKeys {
			if n.st.Digest(k) != ref.st.Digest(k) {
				diff++
			}
		}
		if diff > 0 {
			s.rep.violate("I1", fmt.Sprintf("%s differs from %s in %d services", n.addr, ref.addr, diff))
		}
	}
	missing, resurrected := 0, 0
	var example string
	for si := range s.cfg.Services {
		k := serviceKey(si)
		for ij := range s.cfg.PerService {
			want := s.track.registered(si, ij)
			ik := instanceKey(ij)
			for _, n := range live {
				recs, _ := n.st.Records(k, []model.InstanceKey{ik})
				has := len(recs) == 1 && recs[0].Alive()
				switch {
				case want && !has:
					missing++
					example = fmt.Sprintf("%s/%s missing on %s", k, ik, n.addr)
				case !want && has:
					resurrected++
					example = fmt.Sprintf("%s/%s deregistered but listed on %s", k, ik, n.addr)
				}
			}
		}
	}
	if missing > 0 {
		s.rep.violate("I2", fmt.Sprintf("%d (instance, node) pairs miss an acknowledged registration, e.g. %s", missing, example))
	}
	if resurrected > 0 {
		s.rep.violate("I3", fmt.Sprintf("%d (instance, node) pairs list a deregistered instance, e.g. %s", resurrected, example))
	}
	if n := s.track.outstanding(); n > 0 {
		s.rep.violate("I6", fmt.Sprintf("%d changes had not reached every node after the settle phase, e.g. %s", n, s.track.example()))
	}
	s.rep.Checked = append(s.rep.Checked, "I1", "I2", "I3", "I5", "I6", "I8")
}

// checkLoaded is I8: a node that finished its startup load holds at least
// everything its snapshot source held.
func (s *Sim) checkLoaded(n *node) {
	_, msg := n.eng.Ready()
	i := strings.LastIndex(msg, " from ")
	if i < 0 {
		return // first node: nothing to compare
	}
	src := msg[i+len(" from "):]
	var from *node
	for _, m := range s.nodes {
		if m.addr == src && m.alive {
			from = m
		}
	}
	if from == nil {
		return
	}
	short := 0
	from.st.RangeKeys(func(k model.ServiceKey, _ uint64) bool {
		theirs, _ := from.st.PeerRecords(k, nil)
		for _, r := range theirs {
			mine, _ := n.st.Records(k, []model.InstanceKey{r.Key()})
			if len(mine) == 0 || mine[0].Compare(r) < 0 {
				short++
			}
		}
		return true
	})
	if short > 0 {
		s.rep.violate("I8", fmt.Sprintf("%s became ready %d records short of its snapshot source %s", n.addr, short, src))
	}
}
