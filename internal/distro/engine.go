package distro

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Config holds the engine's timings and bounds.
type Config struct {
	// Self is this node's member identity (ip:port).
	Self string
	// SyncDelay merges changes to one key before they are sent to a peer.
	SyncDelay time.Duration
	// RetryMin and RetryMax bound the per-peer backoff after a failed send.
	RetryMin, RetryMax time.Duration
	// QueueLimit bounds the pending keys per peer; beyond it new keys are
	// dropped and left to verification.
	QueueLimit int
	// BatchKeys bounds the keys in one sync message.
	BatchKeys int
	// VerifyInterval is the anti-entropy period.
	VerifyInterval time.Duration
	// Buckets is the number of digest buckets.
	Buckets int
	// KeyDigestBatch bounds the keys in one key-digest message.
	KeyDigestBatch int
	// StartupTimeout: with no ready peer for this long, start as the first node.
	StartupTimeout time.Duration
	// LoadRetry is the pause between snapshot attempts.
	LoadRetry time.Duration
	// SnapshotChunkBytes bounds one snapshot chunk.
	SnapshotChunkBytes int
	// ForwardTimeout bounds a handed-on write; past it the write is applied locally.
	ForwardTimeout time.Duration
	// ForwardBackoff: after a failed hand-on to an owner, writes for its keys
	// are applied locally for this long without trying it, until health
	// probes settle its state.
	ForwardBackoff time.Duration
	// ForwardSkew is the wall-clock difference between members an owner
	// assumes when it has not measured the sender's clock: it then refuses
	// handed-on writes older than ForwardTimeout − ForwardSkew (the sender
	// may have given up on them).
	ForwardSkew time.Duration
	// CallTimeout bounds sync, digest and fetch calls.
	CallTimeout time.Duration
	// TombstoneRetention is how long deletions are remembered. A record older
	// than this that the owner lacks entirely was deleted long ago.
	// Collection waits longer while a member has not acknowledged the
	// tombstones (see TombstoneHorizon).
	TombstoneRetention time.Duration
	// TombstoneHoldMax: a member unreachable for longer than this no longer
	// holds tombstone collection back (0: forever).
	TombstoneHoldMax time.Duration
	// NoRejoinRounds turns off the immediate verification round with a peer
	// that is reachable again, leaving repairs to the periodic rounds (for
	// tests of what those alone do).
	NoRejoinRounds bool
	// MaxClockAhead bounds how far a peer's stamps may lead local wall time.
	MaxClockAhead time.Duration
	// ConnLease bounds how long instances of client connections held by an
	// unreachable node are kept.
	ConnLease time.Duration
	// Limits validates everything received from peers.
	Limits model.Limits
}

// DefaultConfig returns production defaults for self.
func DefaultConfig(self string) Config {
	return Config{
		Self: self, SyncDelay: 20 * time.Millisecond, RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second,
		QueueLimit: 200000, BatchKeys: 512, VerifyInterval: 5 * time.Second, Buckets: 256, KeyDigestBatch: 4096,
		StartupTimeout: 15 * time.Second, LoadRetry: time.Second, SnapshotChunkBytes: 1 << 20,
		ForwardTimeout: 500 * time.Millisecond, ForwardBackoff: time.Second, ForwardSkew: 100 * time.Millisecond, CallTimeout: 5 * time.Second, TombstoneRetention: 10 * time.Minute, TombstoneHoldMax: 24 * time.Hour,
		MaxClockAhead: 5 * time.Minute, ConnLease: 30 * time.Second, Limits: model.DefaultLimits(),
	}
}

// LocalWriter is the node's own write path: registry.Local.
type LocalWriter interface {
	registry.Writer
	SetOwnership(owns func(model.ServiceKey) bool, gained, lost []model.ServiceKey)
	// SetConfirmer installs the engine as the members' confirmation of
	// heartbeat timeouts; Evidence answers peers' confirmation rounds, and
	// Adopt applies a peer's timeout that neither node can confirm; Kick
	// asks for a scan now (the view changed, so timeouts waiting for a
	// majority may be settled).
	SetConfirmer(registry.Confirmer)
	Evidence(ref health.Ref, window time.Duration) (time.Duration, bool)
	Adopt(ref health.Ref, kind store.Kind, stamp hlc.Timestamp)
	// Suspects lists the timeouts this node applied locally only, for a
	// peer to confirm; Suspect takes such a timeout from a peer.
	Suspects(n int) []registry.Suspect
	Suspect(registry.Suspect)
	Kick()
}

// Engine runs the Distro protocol for one node. Create it with New, feed it
// membership with SetView, serve its Handler on the cluster port, use it as
// the registry.Writer of every client entry point, and Run it.
type Engine struct {
	cfg   Config
	store *store.Store
	local LocalWriter
	tr    Transport
	clk   clock.Clock
	log   *slog.Logger
	m     *Metrics

	view     atomic.Pointer[View]
	ready    atomic.Bool
	readyCh  chan struct{}
	viewCh   chan struct{}
	readyMsg atomic.Pointer[string]
	// rejoined carries peers that have just become eligible again, for an
	// immediate verification round with each (see rejoinRound).
	rejoined chan string

	mu    sync.Mutex
	peers map[string]*peer
	// unreachableSince records when each member left the eligible list.
	unreachableSince map[string]time.Time
	// peerReady remembers the readiness each peer reported in its last probe reply.
	peerReady map[string]bool
	// contacts tracks each peer's reachability for tombstone collection.
	contacts map[string]*contact
	// clocks holds each peer's measured monotonic clock offset; clockID
	// names this process's clock (see peerclock.go).
	clocks  map[string]peerClock
	clockID uint64
	// majoritySince: this node's view has held a majority of the members
	// since then, without interruption (zero: not now). Guarded by mu.
	majoritySince time.Time
	// rejoinAt is when each peer last got a rejoin round. Guarded by mu.
	rejoinAt map[string]time.Time

	rounds rounds
	// stats holds the per-peer figures PeerStatuses reports.
	stats peerStats

	// ownMu serialises ownership updates; ownView is the view the write
	// path's ownership was last computed from.
	ownMu   sync.Mutex
	ownView *View
	// pullTurn rotates pull rounds over peers (verify loop only).
	pullTurn int
	// forwardFailed remembers, per owner, until when writes skip handing
	// on after a failed attempt (so one unreachable owner costs one
	// timeout, not one per write). Guarded by mu.
	forwardFailed map[string]time.Time
	// started is when this node's store began to hold data.
	started time.Time
	// firstNode is set when the node became ready without loading a
	// snapshot: only then does its uptime bound the tombstones it can have
	// collected (a loaded snapshot may come from a node that collected
	// older ones).
	firstNode atomic.Bool

	runCtx context.Context
	// step is set when the engine is driven by EnableStepping instead of Run.
	step *stepper
}

// New builds an engine. It subscribes to st's change events: call it before
// the store is shared.
func New(cfg Config, st *store.Store, local LocalWriter, tr Transport, clk clock.Clock, log *slog.Logger, m *Metrics) *Engine {
	if m == nil {
		m = NewMetrics(nil)
	}
	e := &Engine{cfg: cfg, store: st, local: local, tr: tr, clk: clk, log: log, m: m,
		readyCh: make(chan struct{}), viewCh: make(chan struct{}, 1), rejoined: make(chan string, 64),
		started: clk.Now(), forwardFailed: make(map[string]time.Time), peers: make(map[string]*peer), unreachableSince: make(map[string]time.Time), peerReady: make(map[string]bool),
		contacts: make(map[string]*contact), clocks: make(map[string]peerClock), clockID: newClockID(), rejoinAt: make(map[string]time.Time)}
	msg := "loading snapshot"
	e.readyMsg.Store(&msg)
	e.view.Store(NewView(cfg.Self, nil))
	// Until the startup load is done this node owns nothing, so it expires
	// nothing (no deletions from a node that is not ready).
	local.SetOwnership(func(model.ServiceKey) bool { return false }, nil, nil)
	local.SetConfirmer(e)
	st.OnChange(e.onChange)
	m.bind(e)
	return e
}

// Self returns this node's identity.
func (e *Engine) Self() string { return e.cfg.Self }

// View returns the current view.
func (e *Engine) View() *View { return e.view.Load() }

// Ready reports whether the startup load is done, and why not.
func (e *Engine) Ready() (bool, string) { return e.ready.Load(), *e.readyMsg.Load() }

// Owner returns the member responsible for k in the current view.
func (e *Engine) Owner(k model.ServiceKey) string { return Owner(k, e.view.Load().Eligible()) }

func (e *Engine) owns(k model.ServiceKey) bool { return e.Owner(k) == e.cfg.Self }

// SetView installs a new membership view: peers are added or dropped, and if
// the eligible list changed, ownership moves. Every node with the same
// eligible list computes the same owners.
func (e *Engine) SetView(v *View) {
	old := e.view.Swap(v)
	now := e.clk.Now()
	e.mu.Lock()
	e.noteMajority(v, now)
	for _, m := range v.Peers() {
		if _, ok := e.peers[m.Addr]; !ok {
			e.peers[m.Addr] = newPeer(m.Addr, e.cfg.QueueLimit)
			if e.runCtx != nil {
				e.startPeer(e.peers[m.Addr])
			}
		}
		eligible := m.State == StateUp || m.State == StateSuspicious
		e.noteContact(m.Addr, eligible, now)
		if _, since := e.unreachableSince[m.Addr]; eligible {
			delete(e.unreachableSince, m.Addr)
		} else if !since {
			e.unreachableSince[m.Addr] = now
		}
	}
	for addr, p := range e.peers {
		if v.StateOf(addr) == "" {
			p.stop()
			delete(e.peers, addr)
			delete(e.peerReady, addr)
			delete(e.contacts, addr)
			delete(e.clocks, addr)
			e.unreachableSince[addr] = now
		}
	}
	e.mu.Unlock()
	if old.ID() != v.ID() {
		e.log.Info("member view changed", "view", v.ID(), "eligible", v.Eligible())
		if e.ready.Load() {
			for _, a := range v.Eligible() {
				// Only a member that was unreachable: a member new to
				// the view (this node's start, a join) has nothing that
				// missed the sync path.
				if a != e.cfg.Self && old.StateOf(a) != "" && !slices.Contains(old.Eligible(), a) {
					e.rejoin(a)
				}
			}
		}
	}
	e.ownMu.Lock()
	moved := false
	if e.ready.Load() && e.ownView.ID() != v.ID() {
		e.moveOwnership(e.ownView, v)
		e.ownView = v
		moved = true
	}
	e.ownMu.Unlock()
	if moved {
		e.local.Kick()
	}
	select {
	case e.viewCh <- struct{}{}:
	default:
	}
}

// moveOwnership tells the write path which keys this node gained and lost.
func (e *Engine) moveOwnership(old, v *View) {
	var gained, lost []model.ServiceKey
	self := e.cfg.Self
	e.store.RangeKeys(func(k model.ServiceKey, _ uint64) bool {
		was := old != nil && Owner(k, old.Eligible()) == self
		is := Owner(k, v.Eligible()) == self
		switch {
		case is && !was:
			gained = append(gained, k)
		case was && !is:
			lost = append(lost, k)
		}
		return true
	})
	elig := v.Eligible()
	e.local.SetOwnership(func(k model.ServiceKey) bool { return Owner(k, elig) == self }, gained, lost)
	e.log.Info("ownership changed", "view", v.ID(), "gained", len(gained), "lost", len(lost))
}

// markReady finishes startup: from now on this node expires instances it
// owns, sends verification and serves snapshots.
func (e *Engine) markReady(reason string) {
	if e.ready.Load() {
		return
	}
	e.readyMsg.Store(&reason)
	e.ownMu.Lock()
	v := e.view.Load()
	e.moveOwnership(nil, v)
	e.ownView = v
	e.ready.Store(true)
	e.ownMu.Unlock()
	close(e.readyCh)
	e.log.Info("distro ready", "reason", reason)
}

// ReadyCh is closed once the node is ready.
func (e *Engine) ReadyCh() <-chan struct{} { return e.readyCh }

// Run starts the engine's loops and blocks until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	e.mu.Lock()
	e.runCtx = ctx
	for _, p := range e.peers {
		e.startPeer(p)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { e.loadLoop(ctx) })
	wg.Go(func() { e.verifyLoop(ctx) })
	wg.Go(func() { e.leaseLoop(ctx) })
	<-ctx.Done()
	e.mu.Lock()
	for _, p := range e.peers {
		p.stop()
	}
	e.mu.Unlock()
	wg.Wait()
}

// Apply implements registry.Writer: a write for a key this node does not
// own is handed to the owner, and the client gets the owner's answer. If
// the owner cannot be reached the write is applied here: a write to any
// reachable node succeeds, and the merge reconciles it later.
func (e *Engine) Apply(ctx context.Context, op *registry.Op) (registry.Result, error) {
	owner := e.Owner(op.Key)
	if owner == e.cfg.Self || op.Conn != "" {
		// Connection-held instances belong to the node holding the connection.
		return e.local.Apply(ctx, op)
	}
	now := e.clk.Now()
	e.mu.Lock()
	// A SUSPICIOUS owner missed a probe: do not make clients wait on it.
	skip := now.Before(e.forwardFailed[owner]) || e.view.Load().StateOf(owner) == StateSuspicious
	e.mu.Unlock()
	if skip {
		e.m.forwardFallback.Inc()
		return e.local.Apply(ctx, op)
	}
	fctx, cancel := context.WithTimeout(ctx, e.cfg.ForwardTimeout)
	defer cancel()
	wop := opToPB(op)
	wop.IssuedUnixMillis = now.UnixMilli()
	wop.IssuedMonoMicros, wop.ClockId = e.mono(now).Microseconds(), e.clockID
	resp, err := e.tr.Call(fctx, owner, &clusterpb.Request{Kind: &clusterpb.Request_Forward{Forward: &clusterpb.ForwardRequest{Op: wop}}})
	fr := resp.GetForward()
	if err == nil && (fr.GetStatus() == http.StatusRequestTimeout || fr.GetStatus() == http.StatusServiceUnavailable) {
		err = fmt.Errorf("owner declined the write: %s", fr.GetMessage())
	}
	if err != nil || fr == nil {
		if ctx.Err() != nil {
			return registry.Result{}, ctx.Err()
		}
		e.mu.Lock()
		e.forwardFailed[owner] = e.clk.Now().Add(e.cfg.ForwardBackoff)
		e.mu.Unlock()
		e.m.forwardFallback.Inc()
		e.log.Debug("owner unreachable; applying write locally", "service", op.Key.String(), "owner", owner, "op", op.Kind.String(), "error", err)
		return e.local.Apply(ctx, op)
	}
	e.m.forwarded.Inc()
	res := registry.Result{BeatCode: int(fr.GetBeatCode()), ClientBeatInterval: fr.GetClientBeatInterval()}
	if st := int(fr.GetStatus()); st != 0 && st != http.StatusOK {
		return res, &registry.Error{Status: st, Msg: fr.GetMessage()}
	}
	return res, nil
}

// onChange schedules sync of local writes to every peer. Changes merged
// from peers are not re-broadcast: their origin sends them to everyone, and
// verification repairs what is lost.
func (e *Engine) onChange(ev store.Event) {
	if ev.Remote {
		return
	}
	now := e.clk.Now()
	t := task{key: ev.Key, meta: ev.MetaChanged, deadline: now.Add(e.cfg.SyncDelay), since: now}
	if len(ev.Changed) > maxTaskInstances {
		t.all = true
	} else {
		t.iks = make(map[model.InstanceKey]struct{}, len(ev.Changed))
		for _, r := range ev.Changed {
			t.iks[r.Key()] = struct{}{}
		}
	}
	v := e.view.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	for addr, p := range e.peers {
		if v.StateOf(addr) == StateDown {
			// A DOWN peer is not hammered: it catches up through
			// verification or its startup snapshot when it returns.
			continue
		}
		cp := t
		if !t.all {
			cp.iks = make(map[model.InstanceKey]struct{}, len(t.iks))
			for k := range t.iks {
				cp.iks[k] = struct{}{}
			}
		}
		p.enqueue(&cp, e.m)
	}
}

// enqueueRepair schedules a send of the given records of k to one peer.
func (e *Engine) enqueueRepair(addr string, k model.ServiceKey, iks []model.InstanceKey, meta bool) {
	now := e.clk.Now()
	t := &task{key: k, meta: meta, deadline: now, since: now}
	if iks == nil || len(iks) > maxTaskInstances {
		t.all = true
	} else {
		t.iks = make(map[model.InstanceKey]struct{}, len(iks))
		for _, ik := range iks {
			t.iks[ik] = struct{}{}
		}
	}
	e.mu.Lock()
	p := e.peers[addr]
	e.mu.Unlock()
	if p != nil {
		p.enqueue(t, e.m)
	}
}

// errNotReady is returned to peers asking a node that is still loading for
// a snapshot.
var errNotReady = errors.New("node is not ready: it serves no snapshot until its own load is done")
