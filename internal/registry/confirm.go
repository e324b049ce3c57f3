package registry

import (
	"context"
	"sync"
	"time"

	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// Confirmed timeouts (docs/protocol.md §8). An owner's silence is evidence
// only of what reached the owner: a node cut off from the clients' side,
// paused, or with a view missing the nodes the clients talk to hears no
// beats for instances that are alive. So before a heartbeat timeout
// becomes a replicated version, the owner asks the other members whether
// any of them handled a real beat of the instance within the timeout. A
// member that did refutes the timeout, and the owner's deadlines run from
// that beat. Without answers from a majority of the members, or when the
// owner has not heard a majority for the whole timeout (it was cut off
// during it, and the members holding the beats may still be out of
// reach), it cannot know, so it applies the timeout to its own listing
// only (peers keep being served the live version) and asks again until it
// can decide.

// Suspect is a heartbeat timeout this node is about to apply.
type Suspect struct {
	Ref health.Ref
	// Kind is store.KindUnhealthy or store.KindExpired.
	Kind store.Kind
	// Window is the timeout that passed: a real beat younger than this,
	// handled anywhere, refutes it.
	Window time.Duration
	// Stamp is the version timed out (0: not known). A node that holds a
	// newer version of the instance (a re-registration, a renewal) does
	// not take the timeout for it.
	Stamp hlc.Timestamp
}

// Confirmer asks the other members about suspects. The Distro engine
// implements it; a node without one (standalone) decides alone.
type Confirmer interface {
	// Confirm returns, for each suspect, the age of the youngest real
	// heartbeat an answering member handled within the suspect's window
	// (negative: none did); and, if this node and the members that answered
	// form a majority of the members, since when this node has been in
	// contact with a majority without interruption (zero otherwise). A
	// timeout is confirmed only if that contact covers its whole window.
	Confirm(ctx context.Context, suspects []Suspect) (ages []time.Duration, majoritySince time.Time)
}

// ConfirmTimeout bounds one confirmation round; the scan loop waits for it.
const ConfirmTimeout = 500 * time.Millisecond

// pending is a timeout applied locally only, awaiting a majority.
type pending struct {
	kind    store.Kind
	stamp   hlc.Timestamp
	hb, del time.Duration
	since   time.Time
}

type pendingSet struct {
	mu sync.Mutex
	m  map[health.Ref]pending
	// foreign holds peers' unconfirmed timeouts to confirm here (Suspect).
	foreign map[health.Ref]foreignSuspect
	// last is when the pending timeouts were last offered to the members;
	// retry is set by Kick (the view changed).
	last  time.Time
	retry bool
	// limit: an expiry pending for longer is abandoned (store.Abandon).
	limit time.Duration
}

// foreignSuspect is a peer's unconfirmed timeout: its kind and the version
// it timed out.
type foreignSuspect struct {
	kind  store.Kind
	stamp hlc.Timestamp
}

// DefaultUnconfirmedLimit is how long an expiry waits for a majority before
// it is kept as a plain local tombstone (SetUnconfirmedLimit).
const DefaultUnconfirmedLimit = 10 * time.Minute

// SetUnconfirmedLimit sets how long an expiry applied locally only waits
// for a majority of the members; after that this node stops serving the
// live version under it (peers time the instance out themselves when they
// can) and collects it as a tombstone. The tombstone retention is the
// natural choice.
func (l *Local) SetUnconfirmedLimit(d time.Duration) {
	l.pending.mu.Lock()
	l.pending.limit = d
	l.pending.mu.Unlock()
}

// pendingRetry is how often timeouts waiting for a majority are offered to
// the members again when the view has not changed (a member that was
// eligible did not answer): their number can be large, so not every scan.
const pendingRetry = time.Second

// SetConfirmer installs the members' confirmation of timeouts.
func (l *Local) SetConfirmer(c Confirmer) { l.confirmer.Store(&c) }

// Evidence returns the age of the last real heartbeat this node handled for
// an instance (as its owner or not), if it is younger than window.
func (l *Local) Evidence(ref health.Ref, window time.Duration) (time.Duration, bool) {
	return l.tracker.Evidence(ref, l.clk.Now(), window)
}

// Adopt applies a peer's timeout of an instance to this node's own listing,
// unconfirmed, as if this node had timed it out itself: the peer asked for
// evidence, this node has none, and neither can confirm the timeout (no
// majority heard for its whole window). It is settled like this node's own
// timeouts. Persistent and connection-held instances are left alone, and
// so is a version newer than the one the peer timed out (stamp; 0: any).
func (l *Local) Adopt(ref health.Ref, kind store.Kind, stamp hlc.Timestamp) {
	now := l.clk.Now()
	_ = l.store.Update(ref.Service, func(tx *store.Tx) error {
		r := tx.Get(ref.Instance)
		if r == nil || !heartbeatKept(r) || !r.Alive() || (stamp != 0 && r.Stamp > stamp) {
			return nil
		}
		done := tx.AnnotateLocal(ref.Instance, kind)
		if done == nil {
			return nil
		}
		hb := time.Duration(r.Instance.HeartBeatTimeoutMs()) * time.Millisecond
		del := time.Duration(r.Instance.IPDeleteTimeoutMs()) * time.Millisecond
		l.pending.mu.Lock()
		if l.pending.m == nil {
			l.pending.m = make(map[health.Ref]pending)
		}
		l.pending.m[ref] = pending{kind: kind, stamp: done.Stamp, hb: hb, del: del, since: now}
		l.pending.mu.Unlock()
		return nil
	})
}

// maxForeign bounds the peers' timeouts waiting to be confirmed here.
const maxForeign = 100000

// Suspects returns up to n of the timeouts this node applied to its own
// listing only, for a peer that can hear a majority to confirm.
func (l *Local) Suspects(n int) []Suspect {
	l.pending.mu.Lock()
	defer l.pending.mu.Unlock()
	out := make([]Suspect, 0, min(n, len(l.pending.m)))
	for ref, p := range l.pending.m {
		if len(out) == n {
			break
		}
		window := p.hb
		if p.kind == store.KindExpired {
			window = max(p.hb, p.del)
		}
		out = append(out, Suspect{Ref: ref, Kind: p.kind, Window: window, Stamp: p.stamp})
	}
	return out
}

// Suspect takes a peer's unconfirmed timeout (the peer cannot hear a
// majority; this node may): the next scan confirms it with the members as
// if this node's own deadline had passed, and publishes it, drops it
// against evidence, or applies it locally only.
func (l *Local) Suspect(s Suspect) {
	if s.Kind != store.KindUnhealthy && s.Kind != store.KindExpired {
		return
	}
	l.pending.mu.Lock()
	defer l.pending.mu.Unlock()
	if _, mine := l.pending.m[s.Ref]; mine {
		return
	}
	if l.pending.foreign == nil {
		l.pending.foreign = make(map[health.Ref]foreignSuspect)
	}
	if len(l.pending.foreign) < maxForeign && l.pending.foreign[s.Ref].kind < s.Kind {
		l.pending.foreign[s.Ref] = foreignSuspect{s.Kind, s.Stamp}
	}
}

// Unconfirmed returns the number of timeouts applied locally only, waiting
// for a majority of the members to confirm them.
func (l *Local) Unconfirmed() int {
	l.pending.mu.Lock()
	defer l.pending.mu.Unlock()
	return len(l.pending.m)
}

// Kick asks the scan loop to run now: the member view changed, and timeouts
// waiting for a majority may be settled.
func (l *Local) Kick() {
	l.pending.mu.Lock()
	l.pending.retry = true
	l.pending.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// vouch is the store's merge-time refutation (store.SetVouch): a remote
// timeout of an instance this node handled a real beat of, within the
// timeout, is answered with a renewal. An expiry refuted by a beat older
// than the heartbeat timeout renews the instance as unhealthy.
func (l *Local) vouch(k model.ServiceKey, r *store.Record) (store.Kind, bool) {
	ref := health.Ref{Service: k, Instance: r.Key()}
	hb := time.Duration(r.Instance.HeartBeatTimeoutMs()) * time.Millisecond
	del := time.Duration(r.Instance.IPDeleteTimeoutMs()) * time.Millisecond
	window := hb
	if r.Kind == store.KindExpired {
		window = max(hb, del)
	}
	age, ok := l.tracker.Evidence(ref, l.clk.Now(), window)
	if !ok {
		return 0, false
	}
	l.refuted.Add(1)
	if age >= hb {
		return store.KindUnhealthy, true
	}
	return store.KindLive, true
}

// suspect is the store's check for a version a peer hides under a timeout
// it could not confirm (store.SetSuspect): without evidence of life here,
// this node keeps it hidden too and settles the timeout as its own.
func (l *Local) suspect(k model.ServiceKey, r *store.Record) bool {
	ref := health.Ref{Service: k, Instance: r.Key()}
	hb := time.Duration(r.Instance.HeartBeatTimeoutMs()) * time.Millisecond
	del := time.Duration(r.Instance.IPDeleteTimeoutMs()) * time.Millisecond
	kind := r.Suspected
	window := hb
	if kind == store.KindExpired {
		window = max(hb, del)
	}
	now := l.clk.Now()
	if _, ok := l.tracker.Evidence(ref, now, window); ok {
		return false
	}
	l.pending.mu.Lock()
	defer l.pending.mu.Unlock()
	if l.pending.m == nil {
		l.pending.m = make(map[health.Ref]pending)
	}
	l.pending.m[ref] = pending{kind: kind, stamp: r.Stamp, hb: hb, del: del, since: now}
	return true
}

// ScanOnce applies due heartbeat deadlines, after asking the members
// (Confirmer), and settles timeouts still waiting for a majority.
func (l *Local) ScanOnce() {
	now := l.clk.Now()
	var sus []Suspect
	var fresh []health.Due
	seen := map[health.Ref]bool{}
	for _, d := range l.tracker.Scan(now) {
		if !l.ownsKey(d.Ref.Service) {
			l.tracker.Disown(d.Ref, now)
			continue
		}
		kind, window := store.KindUnhealthy, d.HeartBeat
		if d.Action == health.Expire {
			kind, window = store.KindExpired, max(d.HeartBeat, d.Delete)
		}
		sus = append(sus, Suspect{Ref: d.Ref, Kind: kind, Window: window})
		fresh = append(fresh, d)
		seen[d.Ref] = true
	}
	l.pending.mu.Lock()
	var waiting, abandon []health.Ref
	type cand struct {
		ref health.Ref
		p   pending
	}
	var cands []cand
	retry := l.pending.retry || now.Sub(l.pending.last) >= pendingRetry
	if retry && len(l.pending.m) > 0 {
		l.pending.retry, l.pending.last = false, now
	}
	if !retry {
		for ref := range seen {
			// A later deadline of the same instance supersedes it.
			delete(l.pending.m, ref)
		}
	} else {
		limit := l.pending.limit
		if limit <= 0 {
			limit = DefaultUnconfirmedLimit
		}
		for ref, p := range l.pending.m {
			if seen[ref] {
				delete(l.pending.m, ref)
				continue
			}
			if p.kind == store.KindExpired && now.Sub(p.since) >= limit {
				delete(l.pending.m, ref)
				abandon = append(abandon, ref)
				continue
			}
			cands = append(cands, cand{ref, p})
		}
	}
	foreign := l.pending.foreign
	l.pending.foreign = nil
	l.pending.mu.Unlock()
	// Each timeout names the version it is about, so that a peer holding a
	// newer one (a re-registration, a renewal) does not take it for that.
	for i := range fresh {
		sus[i].Stamp = l.stampOf(fresh[i].Ref)
	}
	for _, c := range cands {
		if !l.stillLocal(c.ref, c.p) {
			// Overtaken (a beat, a newer version): nothing to offer.
			l.dropPending(c.ref, c.p)
			continue
		}
		window := c.p.hb
		if c.p.kind == store.KindExpired {
			window = max(c.p.hb, c.p.del)
		}
		sus = append(sus, Suspect{Ref: c.ref, Kind: c.p.kind, Window: window, Stamp: c.p.stamp})
		waiting = append(waiting, c.ref)
	}
	var theirs []foreignDue
	for ref, fs := range foreign {
		if seen[ref] {
			continue
		}
		if d, ok := l.foreignDue(ref, fs, now); ok {
			theirs = append(theirs, d)
			sus = append(sus, Suspect{Ref: ref, Kind: fs.kind, Window: d.window, Stamp: d.stamp})
		}
	}
	for _, ref := range abandon {
		_ = l.store.Update(ref.Service, func(tx *store.Tx) error {
			tx.Abandon(ref.Instance)
			return nil
		})
	}
	if len(sus) == 0 {
		return
	}
	ages, since := l.confirm(sus)
	// A majority must have been heard over the whole window: a node back
	// from a minority may reach a majority before it reaches the members
	// that handled the beats it missed.
	confirmed := func(window time.Duration) bool { return !since.IsZero() && !since.After(now.Add(-window)) }
	for i, d := range fresh {
		l.applyDue(d, sus[i].Kind, ages[i], confirmed(sus[i].Window))
	}
	for j, ref := range waiting {
		l.settle(ref, ages[len(fresh)+j], confirmed(sus[len(fresh)+j].Window))
	}
	for j, d := range theirs {
		i := len(fresh) + len(waiting) + j
		if ages[i] >= 0 {
			continue // refuted; the peer learns it from its own rounds
		}
		l.applyDue(health.Due{Ref: d.ref, HeartBeat: d.hb, Delete: d.del}, d.kind, -1, confirmed(d.window))
	}
}

// foreignDue is a peer's unconfirmed timeout checked against this node's
// copy and evidence.
type foreignDue struct {
	ref     health.Ref
	kind    store.Kind
	stamp   hlc.Timestamp
	hb, del time.Duration
	window  time.Duration
}

func (l *Local) foreignDue(ref health.Ref, fs foreignSuspect, now time.Time) (foreignDue, bool) {
	kind := fs.kind
	recs, _ := l.store.Records(ref.Service, []model.InstanceKey{ref.Instance})
	if len(recs) == 0 || !heartbeatKept(recs[0]) || !recs[0].Alive() || recs[0].Kind >= kind || (fs.stamp != 0 && recs[0].Stamp > fs.stamp) {
		return foreignDue{}, false
	}
	in := recs[0].Instance
	d := foreignDue{ref: ref, kind: kind, stamp: recs[0].Stamp, hb: time.Duration(in.HeartBeatTimeoutMs()) * time.Millisecond,
		del: time.Duration(in.IPDeleteTimeoutMs()) * time.Millisecond}
	d.window = d.hb
	if kind == store.KindExpired {
		d.window = max(d.hb, d.del)
	}
	if _, ok := l.tracker.Evidence(ref, now, d.window); ok {
		return foreignDue{}, false // this node heard a beat itself
	}
	return d, true
}

// stampOf returns the stamp of the current version of ref (0: none).
func (l *Local) stampOf(ref health.Ref) hlc.Timestamp {
	recs, _ := l.store.Records(ref.Service, []model.InstanceKey{ref.Instance})
	if len(recs) == 0 {
		return 0
	}
	return recs[0].Stamp
}

// stillLocal reports whether p is still this node's local-only annotation
// of ref (no beat or newer version has replaced it).
func (l *Local) stillLocal(ref health.Ref, p pending) bool {
	ok := false
	_ = l.store.Update(ref.Service, func(tx *store.Tx) error {
		r := tx.LocalOnly(ref.Instance)
		ok = r != nil && r.Stamp == p.stamp && r.Kind == p.kind
		return nil
	})
	return ok
}

// dropPending forgets p if it is still the pending timeout of ref.
func (l *Local) dropPending(ref health.Ref, p pending) {
	l.pending.mu.Lock()
	defer l.pending.mu.Unlock()
	if cur, ok := l.pending.m[ref]; ok && cur == p {
		delete(l.pending.m, ref)
	}
}

func (l *Local) confirm(sus []Suspect) ([]time.Duration, time.Time) {
	none := func() []time.Duration {
		ages := make([]time.Duration, len(sus))
		for i := range ages {
			ages[i] = -1
		}
		return ages
	}
	p := l.confirmer.Load()
	if p == nil || *p == nil {
		return none(), time.Time{}.Add(1) // alone: always the majority
	}
	ctx, cancel := context.WithTimeout(context.Background(), ConfirmTimeout)
	defer cancel()
	ages, since := (*p).Confirm(ctx, sus)
	if len(ages) != len(sus) {
		return none(), time.Time{} // a broken confirmer confirms nothing
	}
	return ages, since
}

// applyDue applies one deadline the tracker reported: refuted by a member's
// evidence, replicated with a majority's confirmation, or local only.
func (l *Local) applyDue(d health.Due, kind store.Kind, age time.Duration, quorum bool) {
	now := l.clk.Now()
	if age >= 0 {
		l.tracker.Revive(d.Ref, d.HeartBeat, d.Delete, now, age)
		l.refuted.Add(1)
		_ = l.store.Update(d.Ref.Service, func(tx *store.Tx) error {
			tx.Revert(d.Ref.Instance) // an earlier local-only mark, if any
			return nil
		})
		return
	}
	_ = l.store.Update(d.Ref.Service, func(tx *store.Tx) error {
		if l.tracker.Fresh(d.Ref, now) {
			return nil // a beat arrived while the members were asked
		}
		r := tx.Get(d.Ref.Instance)
		if r == nil || !heartbeatKept(r) {
			return nil
		}
		var done *store.Record
		if quorum {
			done = tx.Annotate(d.Ref.Instance, kind)
		} else if done = tx.AnnotateLocal(d.Ref.Instance, kind); done != nil {
			l.pending.mu.Lock()
			if l.pending.m == nil {
				l.pending.m = make(map[health.Ref]pending)
			}
			l.pending.m[d.Ref] = pending{kind: kind, stamp: done.Stamp, hb: d.HeartBeat, del: d.Delete, since: now}
			l.pending.mu.Unlock()
		}
		if done == nil {
			return nil
		}
		if kind == store.KindExpired {
			l.expired.Add(1)
			l.log.Info("instance expired", "service", d.Ref.Service.String(), "instance", d.Ref.Instance.String(), "confirmed", quorum)
		} else {
			l.markedUnhealthy.Add(1)
		}
		return nil
	})
}

// settle resolves a local-only timeout: evidence of life restores the
// replicated version, a confirmation publishes the timeout, and a timeout
// the replicated state has overtaken (a beat, a peer's own version) is
// simply forgotten.
func (l *Local) settle(ref health.Ref, age time.Duration, confirmed bool) {
	l.pending.mu.Lock()
	p, ok := l.pending.m[ref]
	l.pending.mu.Unlock()
	if !ok {
		return
	}
	now := l.clk.Now()
	done, revived := false, false
	_ = l.store.Update(ref.Service, func(tx *store.Tx) error {
		r := tx.LocalOnly(ref.Instance)
		switch {
		case r == nil || r.Stamp != p.stamp || r.Kind != p.kind:
			done = true // replaced meanwhile (a beat, a newer version, the same timeout from a peer)
		case age >= 0 || l.tracker.Fresh(ref, now):
			done, revived = true, tx.Revert(ref.Instance)
		case confirmed:
			done = tx.Publish(ref.Instance)
		}
		return nil
	})
	if done {
		l.pending.mu.Lock()
		if cur, ok := l.pending.m[ref]; ok && cur == p {
			delete(l.pending.m, ref)
		}
		l.pending.mu.Unlock()
	}
	if revived {
		l.refuted.Add(1)
		if l.ownsKey(ref.Service) {
			l.tracker.Revive(ref, p.hb, p.del, now, max(age, 0))
		}
	}
}
