package health

import (
	"container/heap"
	"sync"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// Ref names one tracked instance.
type Ref struct {
	Service  model.ServiceKey
	Instance model.InstanceKey
}

// Action is what a due deadline asks the caller to do.
type Action uint8

const (
	// MarkUnhealthy: the heartbeat timeout passed.
	MarkUnhealthy Action = iota + 1
	// Expire: the delete timeout passed; the instance must be removed.
	Expire
)

// Due is one deadline that passed.
type Due struct {
	Ref    Ref
	Action Action
	// HeartBeat and Delete are the instance's timeouts, so that a caller
	// whose members hold evidence against the timeout can Revive it.
	HeartBeat, Delete time.Duration
}

// Config sets the tracker's protections.
type Config struct {
	// PauseThreshold: a gap between two Scan calls longer than this is taken
	// as a pause of this process, and virtual time skips it. 0 disables.
	PauseThreshold time.Duration
	// ExpireWindow and ExpireMaxFraction cap expirations: at most
	// max(ExpireMinPerWindow, fraction × tracked) instances expire per
	// window; the rest are retried on later scans. A fraction of 0 disables.
	ExpireWindow       time.Duration
	ExpireMaxFraction  float64
	ExpireMinPerWindow int
}

// DefaultConfig mirrors Eureka's self-preservation (15% per window).
func DefaultConfig() Config {
	return Config{PauseThreshold: 2 * time.Second, ExpireWindow: 30 * time.Second, ExpireMaxFraction: 0.15, ExpireMinPerWindow: 50}
}

type tentry struct {
	ref      Ref
	lastBeat time.Duration // virtual time
	// lastReal is the monotonic time of the last real heartbeat or
	// registration (zero if none): grace periods and skipped pauses move
	// lastBeat but are no evidence that the client is alive.
	lastReal   time.Time
	hbTimeout  time.Duration
	delTimeout time.Duration
	unhealthy  bool
	// owned: this node runs expiry for the instance. An entry that is not
	// owned only keeps evidence (lastReal) of a beat this node handled, for
	// peers asking before they time the instance out; it is dropped
	// silently a delete timeout after the beat.
	owned    bool
	deadline time.Duration
	idx      int
}

func (e *tentry) schedule() {
	switch {
	case !e.owned:
		e.deadline = e.lastBeat + e.delTimeout
	case !e.unhealthy && e.hbTimeout < e.delTimeout:
		e.deadline = e.lastBeat + e.hbTimeout
	default:
		e.deadline = e.lastBeat + e.delTimeout
	}
}

type entryHeap []*tentry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *entryHeap) Push(x any) { e := x.(*tentry); e.idx = len(*h); *h = append(*h, e) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// Tracker holds heartbeat deadlines. It is safe for concurrent use; it reads
// no clock itself: callers pass the current monotonic time.
type Tracker struct {
	cfg     Config
	mu      sync.Mutex
	entries map[Ref]*tentry
	h       entryHeap
	owned   int // entries with owned set

	origin    time.Time     // virtual time 0
	paused    time.Duration // total skipped by pause detection
	lastScan  time.Time
	scanEvery time.Duration

	windowStart time.Duration
	expiredInW  int
	throttled   uint64
	pauses      uint64
}

// New returns an empty tracker; now anchors virtual time and scanEvery is the
// period at which the caller intends to call Scan.
func New(cfg Config, now time.Time, scanEvery time.Duration) *Tracker {
	return &Tracker{cfg: cfg, entries: make(map[Ref]*tentry), origin: now, lastScan: now, scanEvery: scanEvery}
}

func (t *Tracker) vnow(now time.Time) time.Duration { return now.Sub(t.origin) - t.paused }

// Beat records a heartbeat (or a registration) at now, tracking the instance
// if needed. It reports whether the instance had been marked unhealthy by a
// timeout, in which case the caller must restore it.
func (t *Tracker) Beat(ref Ref, in *model.Instance, now time.Time) (wasUnhealthy bool) {
	return t.touch(ref, in, now, true, true)
}

// Grace gives the instance a full timeout period from now, as a beat would,
// without counting as evidence of life (Fresh ignores it). It is what a node
// grants the instances of a key it has just become responsible for.
func (t *Tracker) Grace(ref Ref, in *model.Instance, now time.Time) {
	t.touch(ref, in, now, false, true)
}

// Witness records a real heartbeat that this node handled for an instance
// it does not own (the owner could not be reached): evidence that peers
// can ask for (Evidence), with no expiry here. For an owned instance it is
// Beat.
func (t *Tracker) Witness(ref Ref, in *model.Instance, now time.Time) {
	t.touch(ref, in, now, true, false)
}

// Revive tracks an owned instance again whose timeout a peer refuted with a
// real heartbeat age ago: its deadlines run from that beat, so a client that
// has really stopped is still timed out when the peer's evidence runs out.
func (t *Tracker) Revive(ref Ref, hb, del time.Duration, now time.Time, age time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.vnow(now) - age
	e := t.entries[ref]
	if e == nil {
		e = &tentry{ref: ref}
		t.entries[ref] = e
		heap.Push(&t.h, e)
	}
	if !e.owned {
		e.owned = true
		t.owned++
	}
	e.hbTimeout, e.delTimeout, e.unhealthy = hb, del, false
	e.lastBeat = max(e.lastBeat, v)
	if at := now.Add(-age); at.After(e.lastReal) {
		e.lastReal = at
	}
	e.schedule()
	heap.Fix(&t.h, e.idx)
}

func (t *Tracker) touch(ref Ref, in *model.Instance, now time.Time, real, own bool) (wasUnhealthy bool) {
	hb := time.Duration(in.HeartBeatTimeoutMs()) * time.Millisecond
	del := time.Duration(in.IPDeleteTimeoutMs()) * time.Millisecond
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.vnow(now)
	e := t.entries[ref]
	if e == nil {
		e = &tentry{ref: ref, lastBeat: v, hbTimeout: hb, delTimeout: del, owned: own}
		if own {
			t.owned++
		}
		if real {
			e.lastReal = now
		}
		e.schedule()
		t.entries[ref] = e
		heap.Push(&t.h, e)
		return false
	}
	if own && !e.owned {
		e.owned = true
		t.owned++
	}
	wasUnhealthy = e.unhealthy
	e.lastBeat, e.hbTimeout, e.delTimeout, e.unhealthy = v, hb, del, false
	if real {
		e.lastReal = now
	}
	e.schedule()
	heap.Fix(&t.h, e.idx)
	return wasUnhealthy
}

// Evidence returns the age of the last real heartbeat this node handled for
// ref, if it is younger than window: this node's evidence that the instance
// was alive window ago or later (grace periods and skipped pauses are no
// evidence). Owned and witnessed instances both count.
func (t *Tracker) Evidence(ref Ref, now time.Time, window time.Duration) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[ref]
	if e == nil || e.lastReal.IsZero() {
		return 0, false
	}
	age := now.Sub(e.lastReal)
	return age, age < window
}

// Timeouts returns the heartbeat and delete timeouts ref is tracked with.
func (t *Tracker) Timeouts(ref Ref) (hb, del time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[ref]; e != nil {
		return e.hbTimeout, e.delTimeout, true
	}
	return 0, 0, false
}

// Fresh reports whether ref is tracked and had a real heartbeat within its
// heartbeat timeout (wall time, not virtual: neither a grace period nor a
// skipped pause counts), i.e. this node holds evidence that it is alive.
func (t *Tracker) Fresh(ref Ref, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[ref]
	return e != nil && !e.lastReal.IsZero() && now.Sub(e.lastReal) < e.hbTimeout
}

// Untrack stops tracking ref, evidence included.
func (t *Tracker) Untrack(ref Ref) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[ref]; e != nil {
		t.remove(e)
	}
}

func (t *Tracker) remove(e *tentry) {
	if e.idx >= 0 {
		heap.Remove(&t.h, e.idx)
	}
	if e.owned {
		t.owned--
	}
	delete(t.entries, e.ref)
}

// Disown stops running expiry for ref (this node no longer owns it) but
// keeps the evidence of its last real heartbeat, if any, until a delete
// timeout after that beat: the new owner may ask for it.
func (t *Tracker) Disown(ref Ref, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[ref]
	if e == nil || !e.owned {
		return
	}
	if e.lastReal.IsZero() || now.Sub(e.lastReal) >= e.delTimeout {
		t.remove(e)
		return
	}
	e.owned, e.unhealthy = false, false
	t.owned--
	e.lastBeat = t.vnow(now) - now.Sub(e.lastReal)
	e.schedule()
	heap.Fix(&t.h, e.idx)
}

// Len returns the number of instances whose expiry this node runs.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.owned
}

// Stats returns counters for metrics: expirations deferred by the cap, and
// pauses detected.
func (t *Tracker) Stats() (throttled, pauses uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.throttled, t.pauses
}

// Scan pops every deadline due at now and returns what to do for each.
// Entries that are marked unhealthy stay tracked until their delete
// deadline; expired entries are dropped.
func (t *Tracker) Scan(now time.Time) []Due {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gap := now.Sub(t.lastScan); t.cfg.PauseThreshold > 0 && gap > t.cfg.PauseThreshold+t.scanEvery {
		// We were not scheduled for gap: do not let the lost time count
		// against instances whose beats could not be processed either.
		t.paused += gap - t.scanEvery
		t.pauses++
	}
	t.lastScan = now
	v := t.vnow(now)
	if t.cfg.ExpireWindow > 0 && v-t.windowStart >= t.cfg.ExpireWindow {
		t.windowStart, t.expiredInW = v, 0
	}
	budget := -1
	if t.cfg.ExpireMaxFraction > 0 {
		budget = int(t.cfg.ExpireMaxFraction * float64(t.owned))
		if budget < t.cfg.ExpireMinPerWindow {
			budget = t.cfg.ExpireMinPerWindow
		}
		// Once the window's share is used up, nothing more expires in it.
		budget = max(budget-t.expiredInW, 0)
	}
	var out []Due
	var deferred []*tentry
	for len(t.h) > 0 && t.h[0].deadline <= v {
		e := heap.Pop(&t.h).(*tentry)
		if !e.owned {
			// Evidence older than any timeout it could refute.
			delete(t.entries, e.ref)
			continue
		}
		if !e.unhealthy && e.hbTimeout < e.delTimeout && v-e.lastBeat < e.delTimeout {
			e.unhealthy = true
			e.schedule()
			heap.Push(&t.h, e)
			out = append(out, Due{Ref: e.ref, Action: MarkUnhealthy, HeartBeat: e.hbTimeout, Delete: e.delTimeout})
			continue
		}
		if budget == 0 {
			deferred = append(deferred, e)
			continue
		}
		if budget > 0 {
			budget--
		}
		t.expiredInW++
		delete(t.entries, e.ref)
		t.owned--
		out = append(out, Due{Ref: e.ref, Action: Expire, HeartBeat: e.hbTimeout, Delete: e.delTimeout})
	}
	for _, e := range deferred {
		// Retry at the start of the next window.
		t.throttled++
		e.unhealthy = true
		e.deadline = t.windowStart + t.cfg.ExpireWindow
		heap.Push(&t.h, e)
	}
	return out
}
