package health

import "time"

// LastBeat returns the monotonic-clock time of ref's last real heartbeat or
// registration on this node (grace periods do not count), and whether this
// node tracks ref at all. Only the owner of a service tracks its instances.
func (t *Tracker) LastBeat(ref Ref) (at time.Time, tracked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[ref]
	if e == nil {
		return time.Time{}, false
	}
	return e.lastReal, true
}
