package member

import (
	"errors"
	"strings"
	"syscall"
	"time"
)

// State is a peer's health as seen by this node's own probes. The names are
// the Nacos NodeState names, so they can be shown on the Nacos nodes page
// unchanged.
type State string

const (
	// StateUp means the last probe answered.
	StateUp State = "UP"
	// StateSuspicious means the peer is new and not yet probed, or recent
	// probes failed but not enough of them to give up on it. A suspicious peer
	// still owns its keys, so that one lost probe does not move ownership.
	StateSuspicious State = "SUSPICIOUS"
	// StateDown means DownAfter consecutive probes failed, or the peer refused
	// the connection. A down peer owns nothing; it is still probed every
	// interval so that it comes back as soon as it answers.
	StateDown State = "DOWN"
)

// ErrRefused lets a Prober whose transport hides the system error (for
// example gRPC) report that the peer refused the connection, which marks the
// peer DOWN at once: nothing listens there, so waiting for more failures only
// delays the ownership change. Wrap it with %w.
var ErrRefused = errors.New("member: connection refused")

// IsRefused reports whether a probe error means the peer's host answered but
// nothing listens on the port: errors.Is ErrRefused or syscall.ECONNREFUSED,
// or, as Nacos does, a message carrying Go's dial text "connect: connection
// refused" (what gRPC reports after flattening the error).
func IsRefused(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrRefused) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "connect: connection refused")
}

// peerHealth is the pure per-peer state machine. It is not safe for
// concurrent use; Health guards it.
type peerHealth struct {
	gen         uint64    // incarnation: a peer removed and re-added gets a new one
	state       State     //
	fails       int       // consecutive counted failures
	lastContact time.Time // wall time of the last successful probe
	lastErr     string    // error of the last counted failed probe
}

// newPeer returns a peer that has not been probed yet. It starts SUSPICIOUS,
// not UP (unverified) and not DOWN (every node adds a new member to its owner
// list when the member list changes, not when its own first probe happens to
// answer, so views agree sooner).
func newPeer(gen uint64) *peerHealth {
	return &peerHealth{gen: gen, state: StateSuspicious}
}

// observe applies one probe result taken at now. err nil is a success. When
// count is false a failure is discarded (the pause guard judged it
// untrustworthy); a success is always applied, because an answer is proof of
// life whatever our own timing. It returns the previous state and whether the
// state changed.
func (p *peerHealth) observe(cfg Config, err error, count bool, now time.Time) (State, bool) {
	from := p.state
	switch {
	case err == nil:
		p.state = StateUp
		p.fails = 0
		p.lastContact = now.Round(0)
		p.lastErr = ""
	case !count:
		return from, false
	default:
		p.fails++
		p.lastErr = err.Error()
		switch {
		case IsRefused(err) || p.fails >= cfg.DownAfter:
			p.state = StateDown
		case p.state == StateUp && p.fails >= cfg.SuspectAfter:
			p.state = StateSuspicious
		}
	}
	return from, p.state != from
}

// pauseGuard is the Lifeguard-style self check of the probe loop (hazard H8).
// A node that was paused (SIGSTOP, a long GC, CPU starvation) wakes up with
// every probe timed out; those failures say nothing about the peers. The
// guard watches its own loop's timing on the monotonic clock and tells the
// loop which failures to discard. It is pure: all times are passed in.
type pauseGuard struct {
	interval time.Duration
	timeout  time.Duration

	last  time.Time // previous tick, monotonic
	grace int       // rounds whose failures are still discarded
}

// pauseGraceRounds is how many rounds after a detected pause have their
// failures discarded: the round started by the late tick and the next one.
const pauseGraceRounds = 2

func newPauseGuard(interval, timeout time.Duration) *pauseGuard {
	return &pauseGuard{interval: interval, timeout: timeout}
}

// threshold is the longest gap between two ticks that a healthy loop shows.
func (g *pauseGuard) threshold() time.Duration { return 2*g.interval + g.timeout }

// tick records that the loop received a tick at now. It reports the gap since
// the previous tick and whether that gap means the loop itself was paused, in
// which case the next pauseGraceRounds rounds have their failures discarded.
func (g *pauseGuard) tick(now time.Time) (gap time.Duration, paused bool) {
	if !g.last.IsZero() {
		gap = now.Sub(g.last)
		paused = gap > g.threshold()
	}
	g.last = now
	if paused {
		g.grace = pauseGraceRounds
	}
	return gap, paused
}

// startRound is called when a probe round starts. It reports whether that
// round's failures count, and uses up one grace round.
func (g *pauseGuard) startRound() bool {
	if g.grace > 0 {
		g.grace--
		return false
	}
	return true
}

// starved reports whether a probe that took elapsed (monotonic) overran its
// timeout by more than an interval. A probe's context ends at the timeout, so
// such a probe's goroutine was not running when its deadline passed: its
// "timeout" is our stall, not the peer's.
func (g *pauseGuard) starved(elapsed time.Duration) bool {
	return elapsed > g.timeout+g.interval
}
