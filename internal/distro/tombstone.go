package distro

import (
	"time"
)

// Tombstone collection held for absent members (docs/protocol.md §7). A
// deletion must outlive every copy of what it deletes. A member that
// cannot be reached may still hold such a copy, and after the tombstone is
// collected nothing would stop that copy from coming back (a persistent
// instance is never dropped for being absent at its owner). So a tombstone
// is collected only once it is older than the retention and every member
// has acknowledged it: the member was reachable, continuously, for half the
// retention after the tombstone arrived here (long enough for sync,
// verification and pull rounds to have delivered it or found nothing to
// repair). A member unreachable for longer than TombstoneHoldMax no longer
// holds collection back.

// contact is this node's record of one peer's reachability.
type contact struct {
	// since is the start of the current contact period (zero while the
	// peer is not eligible); awaySince the start of its absence.
	since, awaySince time.Time
	// acked: tombstones that arrived at or before this wall time (ms) are
	// acknowledged by the peer.
	acked int64
}

// settle is how long a member must stay reachable before the tombstones it
// was absent for count as delivered.
func (e *Engine) settle() time.Duration { return e.cfg.TombstoneRetention / 2 }

// noteContact updates p's contact record for a view in which it is (or is
// not) eligible. Caller holds e.mu.
func (e *Engine) noteContact(addr string, eligible bool, now time.Time) {
	c := e.contacts[addr]
	if c == nil {
		c = &contact{}
		e.contacts[addr] = c
	}
	switch {
	case eligible && c.since.IsZero():
		c.since, c.awaySince = now, time.Time{}
	case !eligible && !c.since.IsZero():
		c.acked = max(c.acked, e.ackedBy(c, now))
		c.since, c.awaySince = time.Time{}, now
	case !eligible && c.awaySince.IsZero():
		c.awaySince = now
	}
}

// ackedBy is the acknowledgement horizon of a peer in contact since c.since.
func (e *Engine) ackedBy(c *contact, now time.Time) int64 {
	if !c.since.IsZero() && now.Sub(c.since) >= e.settle() {
		return max(c.acked, now.Add(-e.settle()).UnixMilli())
	}
	return c.acked
}

// TombstoneHorizon returns the wall time (ms) before which tombstones may
// be collected: the retention ago, or earlier while a member has not
// acknowledged the tombstones since then.
func (e *Engine) TombstoneHorizon() int64 {
	now := e.clk.Now()
	h := now.Add(-e.cfg.TombstoneRetention).UnixMilli()
	v := e.view.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range v.Peers() {
		c := e.contacts[m.Addr]
		if c == nil {
			continue
		}
		if c.since.IsZero() && e.cfg.TombstoneHoldMax > 0 && now.Sub(c.awaySince) >= e.cfg.TombstoneHoldMax {
			continue // gone too long to keep holding for it
		}
		h = min(h, e.ackedBy(c, now))
	}
	return h
}

// TombstoneHeld returns how far collection is held back beyond the
// retention for absent members.
func (e *Engine) TombstoneHeld() time.Duration {
	h := e.TombstoneHorizon()
	d := time.Duration(e.clk.Now().Add(-e.cfg.TombstoneRetention).UnixMilli()-h) * time.Millisecond
	return max(d, 0)
}
