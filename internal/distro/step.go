package distro

import (
	"context"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// Stepped operation. The deterministic simulator (internal/sim) runs many
// engines on one goroutine and on simulated time. It does not call Run: it
// drives each engine through the entry points below from its own event loop,
// and the engine starts no goroutine of its own. The protocol code is the
// same; only who decides when each piece runs differs:
//
//   - the load loop's attempts are StepLoad calls;
//   - each peer's send loop is NextSend (when is the next batch due) and
//     StepSend (send it);
//   - the verify loop's rounds are VerifyOnce calls, whose per-peer calls
//     run one after another instead of concurrently;
//   - a repair, which Run would start in a goroutine, and the rejoin round
//     with a peer that is reachable again, which Run's verify loop would
//     run, are handed to the later function given to EnableStepping, to be
//     run after the current call returns.
//
// The lease loop has no stepped form: the simulator holds no client
// connections.

type stepper struct {
	later func(func())
}

// EnableStepping switches e to stepped operation. Call it right after New,
// before the first SetView, and never call Run on a stepped engine.
func (e *Engine) EnableStepping(later func(func())) {
	e.step = &stepper{later: later}
}

// StepLoad makes one startup load attempt, as Run's load loop does after
// each pause, and reports whether the node is ready. start is when loading
// began (for StartupTimeout) and attempt counts from 0.
func (e *Engine) StepLoad(ctx context.Context, start time.Time, attempt int) bool {
	if e.ready.Load() {
		return true
	}
	return e.loadAttempt(ctx, start, attempt)
}

// NextSend returns when the earliest pending sync task to peer is due, and
// false when nothing is pending.
func (e *Engine) NextSend(peer string) (time.Time, bool) {
	e.mu.Lock()
	p := e.peers[peer]
	e.mu.Unlock()
	if p == nil {
		return time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.q.next()
}

// StepSend sends one batch of the sync tasks to peer that are due, as the
// peer's send loop would, and returns the send error (after which the batch
// is queued again with backoff).
func (e *Engine) StepSend(ctx context.Context, peer string) error {
	e.mu.Lock()
	p := e.peers[peer]
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	return e.sendDue(ctx, p)
}

// compareKeys orders service keys (namespace, group, name).
func compareKeys(a, b model.ServiceKey) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
