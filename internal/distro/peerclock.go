package distro

import (
	"math/rand/v2"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
)

// Judging a handed-on write in the sender's own time (docs/protocol.md §5).
// The sender stops waiting for the owner after ForwardTimeout and applies
// the write itself; the owner must refuse a copy that arrives later (it sat
// in a connection through a partition), or it would land after the
// client's next writes. Comparing the sender's wall clock with the owner's
// needs a tolerance for clock differences, and any tolerance is a window
// in which a late copy is accepted. So the write carries the sender's
// monotonic clock reading, and every node measures each peer's monotonic
// clock against its own from its probes (NTP style: the peer's reading in
// the reply against the midpoint of the round trip, within half the round
// trip). The owner then knows how long the sender has been waiting, within
// that error and a drift bound, and refuses a write the sender may have
// given up on.

// clockDrift bounds how fast two monotonic clocks may drift apart (100 ppm,
// ten times a typical crystal's).
const clockDrift = 1e-4

// forwardMargin covers the owner's own time to apply a write after judging
// its age: the reply must leave before the sender gives up.
const forwardMargin = 5 * time.Millisecond

// peerClock is the measured offset of one peer's monotonic clock.
type peerClock struct {
	id uint64
	// offset is the peer's reading minus ours, err its uncertainty, at
	// when it was measured (our clock).
	offset, err time.Duration
	at          time.Time
}

// newClockID names this process's monotonic clock.
func newClockID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// mono is this node's monotonic clock reading: time since the engine was
// created.
func (e *Engine) mono(t time.Time) time.Duration { return t.Sub(e.started) }

// noteClock records one probe round trip to peer: sent and received on our
// clock, the peer's reading in its reply.
func (e *Engine) noteClock(peer string, sent, received time.Time, pr *clusterpb.ProbeReply) {
	if pr.GetClockId() == 0 {
		return // a node that does not report its clock
	}
	half := received.Sub(sent) / 2
	s := peerClock{id: pr.GetClockId(), offset: time.Duration(pr.GetMonoMicros())*time.Microsecond - e.mono(sent.Add(half)), err: half, at: received}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.clocks[peer]; ok && old.id == s.id && old.uncertainty(received) < s.err {
		return // the older, tighter measurement is still the better one
	}
	e.clocks[peer] = s
}

// uncertainty is the error of the measurement at now, drift included.
func (c peerClock) uncertainty(now time.Time) time.Duration {
	return c.err + time.Duration(float64(now.Sub(c.at))*clockDrift)
}

// forwardAge returns how long the sender of op has been waiting for it, and
// the uncertainty of that figure; ok is false when op carries no send time.
func (e *Engine) forwardAge(from string, op *clusterpb.WriteOp, now time.Time) (age, tolerance time.Duration, ok bool) {
	if id := op.GetClockId(); id != 0 {
		e.mu.Lock()
		c, known := e.clocks[from]
		e.mu.Unlock()
		if known && c.id == id {
			senderNow := e.mono(now) + c.offset
			return senderNow - time.Duration(op.GetIssuedMonoMicros())*time.Microsecond, c.uncertainty(now) + forwardMargin, true
		}
	}
	if at := op.GetIssuedUnixMillis(); at != 0 {
		// No measurement of the sender's clock (it restarted, or this node
		// cannot probe it): wall clocks, assumed to agree within ForwardSkew.
		return now.Sub(time.UnixMilli(at)), e.cfg.ForwardSkew + forwardMargin, true
	}
	return 0, 0, false
}
