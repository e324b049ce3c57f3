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
	deadline   time.Duration
	idx        int
}

func (e *tentry) schedule() {
	switch {
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
	return t.touch(ref, in, now, true)
}

// Grace gives the instance a full timeout period from now, as a beat would,
// without counting as evidence of life (Fresh ignores it). It is what a node
// grants the instances of a key it has just become responsible for.
func (t *Tracker) Grace(ref Ref, in *model.Instance, now time.Time) {
	t.touch(ref, in, now, false)
}

func (t *Tracker) touch(ref Ref, in *model.Instance, now time.Time, real bool) (wasUnhealthy bool) {
	hb := time.Duration(in.HeartBeatTimeoutMs()) * time.Millisecond
	del := time.Duration(in.IPDeleteTimeoutMs()) * time.Millisecond
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.vnow(now)
	e := t.entries[ref]
	if e == nil {
		e = &tentry{ref: ref, lastBeat: v, hbTimeout: hb, delTimeout: del}
		if real {
			e.lastReal = now
		}
		e.schedule()
		t.entries[ref] = e
		heap.Push(&t.h, e)
		return false
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

// Fresh reports whether ref is tracked and had a real heartbeat within its
// heartbeat timeout (wall time, not virtual: neither a grace period nor a
// skipped pause counts), i.e. this node holds evidence that it is alive.
func (t *Tracker) Fresh(ref Ref, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[ref]
	return e != nil && !e.lastReal.IsZero() && now.Sub(e.lastReal) < e.hbTimeout
}

// Untrack stops tracking ref.
func (t *Tracker) Untrack(ref Ref) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[ref]; e != nil {
		heap.Remove(&t.h, e.idx)
		delete(t.entries, ref)
	}
}

// Len returns the number of tracked instances.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
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
		budget = int(t.cfg.ExpireMaxFraction * float64(len(t.entries)))
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
		if !e.unhealthy && e.hbTimeout < e.delTimeout && v-e.lastBeat < e.delTimeout {
			e.unhealthy = true
			e.schedule()
			heap.Push(&t.h, e)
			out = append(out, Due{Ref: e.ref, Action: MarkUnhealthy})
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
		out = append(out, Due{Ref: e.ref, Action: Expire})
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
