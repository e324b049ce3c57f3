package member

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/internal/clock"
)

// Prober checks that one peer is alive. It is the transport seam of Health:
// production probes over the cluster transport, tests use a fake.
//
// Probe is called concurrently for different peers, never twice at once for
// the same peer. It must return when ctx is done (ctx carries the probe
// timeout). A nil error means the peer answered. A refused connection should
// be reported so that IsRefused recognises it (wrap ErrRefused or keep
// syscall.ECONNREFUSED in the chain): it marks the peer DOWN at once.
type Prober interface {
	Probe(ctx context.Context, peer string) error
}

// Config holds the probe timings. The zero value of a field means its
// default; DefaultConfig shows them.
type Config struct {
	// Interval is how often every peer is probed (default 1 s). Shorter finds
	// dead peers sooner and costs N-1 requests per interval per node.
	Interval time.Duration
	// Timeout bounds one probe (default 500 ms). A timed-out probe is a
	// failure, so it must comfortably exceed the cluster's round-trip time.
	Timeout time.Duration
	// SuspectAfter is the number of consecutive failures that turn an UP peer
	// SUSPICIOUS (default 1). Suspicion is informational: a suspicious peer
	// still owns its keys.
	SuspectAfter int
	// DownAfter is the number of consecutive failures that turn a peer DOWN
	// (default 3), removing it from ownership. With the defaults a silent peer
	// is DOWN about 3 s after it stops answering; a refusing one at once.
	DownAfter int
	// MaxConcurrentProbes bounds the probes in flight (default 16). With many
	// peers a round may then take longer than Interval; the next tick is then
	// skipped rather than probing a peer twice at once.
	MaxConcurrentProbes int
}

// DefaultConfig returns the default probe timings (the memberlist LAN probe
// interval and timeout, and Nacos's fail count minus one: see
// docs/membership.md).
func DefaultConfig() Config {
	return Config{
		Interval:            time.Second,
		Timeout:             500 * time.Millisecond,
		SuspectAfter:        1,
		DownAfter:           3,
		MaxConcurrentProbes: 16,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.SuspectAfter == 0 {
		c.SuspectAfter = d.SuspectAfter
	}
	if c.DownAfter == 0 {
		c.DownAfter = d.DownAfter
	}
	if c.MaxConcurrentProbes == 0 {
		c.MaxConcurrentProbes = d.MaxConcurrentProbes
	}
	return c
}

// Validate reports a config that NewHealth would reject, naming the field, so
// that flag and file errors are caught at startup. Zero fields are valid
// (they take defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Interval < 0:
		return fmt.Errorf("member: Interval %v must be positive", c.Interval)
	case c.Timeout < 0:
		return fmt.Errorf("member: Timeout %v must be positive", c.Timeout)
	case c.SuspectAfter < 1:
		return fmt.Errorf("member: SuspectAfter %d must be at least 1", c.SuspectAfter)
	case c.DownAfter < c.SuspectAfter:
		return fmt.Errorf("member: DownAfter %d must be at least SuspectAfter %d", c.DownAfter, c.SuspectAfter)
	case c.MaxConcurrentProbes < 1:
		return fmt.Errorf("member: MaxConcurrentProbes %d must be at least 1", c.MaxConcurrentProbes)
	}
	return nil
}

// MemberStatus is one member as this node sees it, for status pages and the
// Nacos nodes API.
type MemberStatus struct {
	Address     string    // identity, "host:port"
	State       State     // this node's verdict from its own probes
	LastContact time.Time // wall time of the last successful probe; zero if none (self: when the status was taken)
	LastError   string    // last counted probe error since the last success
	FailCount   int       // consecutive counted failures
}

// View is an immutable picture of the membership, handed to subscribers such
// as the Distro engine, which computes ownership from Eligible. Treat Members
// as read-only.
type View struct {
	// Self is this node's identity.
	Self string
	// Members is every member including self, sorted by address. Details
	// other than State are as of when the view was made.
	Members []MemberStatus
	// Epoch increases by one on every change of the member set or of any
	// member's State, so a subscriber can tell a newer view from an older one.
	Epoch uint64
}

// Eligible returns self and every member that is UP or SUSPICIOUS, sorted:
// the list ownership is computed from. Self is always included, so a node
// never computes ownership without itself.
func (v View) Eligible() []string {
	out := make([]string, 0, len(v.Members)+1)
	if v.Self != "" {
		out = append(out, v.Self)
	}
	for _, m := range v.Members {
		if m.State == StateUp || m.State == StateSuspicious {
			out = append(out, m.Address)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ID is a short, stable hash of Eligible. Nodes whose IDs agree compute the
// same owners, so comparing IDs (in logs, sync messages, status pages) shows
// at a glance whether the cluster's views have converged.
func (v View) ID() string {
	sum := sha256.Sum256([]byte(strings.Join(v.Eligible(), "\n")))
	return hex.EncodeToString(sum[:8])
}

// subscriber is one Subscribe callback; delivered is only touched by Run.
type subscriber struct {
	fn        func(View)
	delivered uint64
}

// probeResult is one probe's outcome, passed from a round to Run.
type probeResult struct {
	peer       string
	gen        uint64
	err        error
	start, end time.Time
	count      bool // the round's failures count (pause guard)
}

// Health probes every peer from this node and keeps each peer's State. It is
// the only source of peer state: nothing a peer says about itself, and no
// inbound traffic, changes it (hazard H14), so a node that can receive but not
// send is seen DOWN by the others.
type Health struct {
	self   string
	cfg    Config
	prober Prober
	clk    clock.Clock
	log    *slog.Logger

	notify  chan struct{} // wakes Run to deliver a new view
	running atomic.Bool

	// guard is owned by the Run goroutine.
	guard *pauseGuard

	mu    sync.Mutex
	peers map[string]*peerHealth // every member except self
	gen   uint64                 // last peer incarnation handed out
	view  View
	subs  []*subscriber
}

// NewHealth returns a Health for the node self. Until SetMembers is called the
// membership is self alone. A nil logger discards. It panics if cfg does not
// pass Validate: that is a programming error, since flags are validated at
// startup.
func NewHealth(self string, cfg Config, p Prober, clk clock.Clock, logger *slog.Logger) *Health {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	h := &Health{
		self:   self,
		cfg:    cfg,
		prober: p,
		clk:    clk,
		log:    orDiscard(logger),
		notify: make(chan struct{}, 1),
		guard:  newPauseGuard(cfg.Interval, cfg.Timeout),
		peers:  map[string]*peerHealth{},
	}
	h.view = h.buildLocked(1, clk.Now())
	return h
}

// SetMembers replaces the member list; it is the Lookup's onChange. Peers
// already known keep their state; new peers start SUSPICIOUS (see newPeer);
// removed peers are forgotten. Self is never probed. Safe to call from any
// goroutine, before or during Run.
func (h *Health) SetMembers(members []string) {
	list := slices.Clone(members)
	slices.Sort(list)
	list = slices.Compact(list)

	h.mu.Lock()
	var added, removed []string
	for _, m := range list {
		if m == h.self {
			continue
		}
		if _, ok := h.peers[m]; !ok {
			h.gen++
			h.peers[m] = newPeer(h.gen)
			added = append(added, m)
		}
	}
	for m := range h.peers {
		if _, found := slices.BinarySearch(list, m); !found {
			delete(h.peers, m)
			removed = append(removed, m)
		}
	}
	_, selfListed := slices.BinarySearch(list, h.self)
	changed := len(added) > 0 || len(removed) > 0
	var v View
	if changed {
		h.view = h.buildLocked(h.view.Epoch+1, h.clk.Now())
		v = h.view
	}
	h.mu.Unlock()

	if !selfListed {
		h.log.Warn("this node is not in the member list; peers will not count it as an owner",
			"self", h.self, "members", list)
	}
	if !changed {
		return
	}
	slices.Sort(removed)
	h.log.Info("membership changed", "added", added, "removed", removed,
		"members", list, "epoch", v.Epoch, "view", v.ID())
	h.wake()
}

// Snapshot returns every member including self, sorted by address, with
// up-to-date details, for status pages and NodesJSON.
func (h *Health) Snapshot() []MemberStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buildLocked(h.view.Epoch, h.clk.Now()).Members
}

// View returns the current view, for callers that need it synchronously (for
// example at startup, before the first Subscribe callback).
func (h *Health) View() View {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.view
}

// Subscribe registers fn to receive views. fn is called from the Run
// goroutine, one call at a time and in increasing Epoch order: first with the
// current view, then after every change. Intermediate views may be skipped
// when changes come faster than fn returns, since each view is complete. fn
// must not block long (it delays probing) and is only called while Run runs;
// it may call Snapshot or View.
func (h *Health) Subscribe(fn func(View)) {
	h.mu.Lock()
	h.subs = append(h.subs, &subscriber{fn: fn})
	h.mu.Unlock()
	h.wake()
}

func (h *Health) wake() {
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

// buildLocked makes a view of the current state. now is self's LastContact.
func (h *Health) buildLocked(epoch uint64, now time.Time) View {
	ms := make([]MemberStatus, 0, len(h.peers)+1)
	ms = append(ms, MemberStatus{Address: h.self, State: StateUp, LastContact: now.Round(0)})
	for addr, p := range h.peers {
		ms = append(ms, MemberStatus{
			Address:     addr,
			State:       p.state,
			LastContact: p.lastContact,
			LastError:   p.lastErr,
			FailCount:   p.fails,
		})
	}
	slices.SortFunc(ms, func(a, b MemberStatus) int { return strings.Compare(a.Address, b.Address) })
	return View{Self: h.self, Members: ms, Epoch: epoch}
}

// Run probes every peer every Interval until ctx is cancelled, applies the
// results and delivers views to subscribers. Call it exactly once, in its own
// goroutine. It returns after its probes have finished.
func (h *Health) Run(ctx context.Context) {
	if !h.running.CompareAndSwap(false, true) {
		panic("member: Health.Run called twice")
	}
	ticker := h.clk.NewTicker(h.cfg.Interval)
	defer ticker.Stop()

	done := make(chan []probeResult, 1)
	inFlight := false
	startRound := func() {
		peers := h.roundPeers()
		count := h.guard.startRound()
		inFlight = true
		go h.round(ctx, peers, count, done)
	}

	h.guard.tick(h.clk.Now())
	h.publish()
	startRound()
	for {
		select {
		case <-ctx.Done():
			if inFlight {
				<-done
			}
			return
		case <-ticker.C():
			if gap, paused := h.guard.tick(h.clk.Now()); paused {
				h.log.Warn("probe loop was paused; discarding probe failures for the next rounds",
					"gap", gap, "threshold", h.guard.threshold(), "rounds", pauseGraceRounds)
			}
			if inFlight {
				h.log.Debug("probe round still running; skipping a tick")
				continue
			}
			startRound()
		case res := <-done:
			inFlight = false
			if ctx.Err() == nil {
				h.apply(res)
			}
		case <-h.notify:
			h.publish()
		}
	}
}

type roundPeer struct {
	addr string
	gen  uint64
}

func (h *Health) roundPeers() []roundPeer {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]roundPeer, 0, len(h.peers))
	for addr, p := range h.peers {
		out = append(out, roundPeer{addr, p.gen})
	}
	return out
}

// round probes peers concurrently (bounded) and sends all results to done.
func (h *Health) round(ctx context.Context, peers []roundPeer, count bool, done chan<- []probeResult) {
	results := make([]probeResult, len(peers))
	sem := make(chan struct{}, h.cfg.MaxConcurrentProbes)
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
			defer cancel()
			start := h.clk.Now()
			err := h.prober.Probe(pctx, p.addr)
			results[i] = probeResult{peer: p.addr, gen: p.gen, err: err, start: start, end: h.clk.Now(), count: count}
		})
	}
	wg.Wait()
	done <- results
}

// stateChange is one transition to log after the lock is released.
type stateChange struct {
	peer     string
	from, to State
	fails    int
	err      string
}

// apply feeds a round's results into the state machines.
func (h *Health) apply(results []probeResult) {
	var changes []stateChange
	discarded := 0
	h.mu.Lock()
	for _, r := range results {
		p, ok := h.peers[r.peer]
		if !ok || p.gen != r.gen {
			continue // removed (or removed and re-added) during the round
		}
		count := r.count && !h.guard.starved(r.end.Sub(r.start))
		if r.err != nil && !count {
			discarded++
		}
		from, changed := p.observe(h.cfg, r.err, count, r.end)
		if changed {
			changes = append(changes, stateChange{r.peer, from, p.state, p.fails, p.lastErr})
		}
	}
	var v View
	if len(changes) > 0 {
		h.view = h.buildLocked(h.view.Epoch+1, h.clk.Now())
		v = h.view
	}
	h.mu.Unlock()

	if discarded > 0 {
		h.log.Info("discarded probe failures observed while this node was paused", "failures", discarded)
	}
	for _, c := range changes {
		h.log.Info("member state changed", "peer", c.peer, "from", c.from, "to", c.to,
			"failures", c.fails, "error", c.err, "epoch", v.Epoch)
	}
	if len(changes) > 0 {
		h.log.Info("member view changed", "epoch", v.Epoch, "view", v.ID(), "eligible", v.Eligible())
		h.publish()
	}
}

// publish delivers the current view to every subscriber that has not seen it.
// Only the Run goroutine calls it.
func (h *Health) publish() {
	h.mu.Lock()
	v := h.view
	subs := slices.Clone(h.subs)
	h.mu.Unlock()
	for _, s := range subs {
		if s.delivered < v.Epoch {
			s.delivered = v.Epoch
			s.fn(v)
		}
	}
}
