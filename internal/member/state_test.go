package member

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

var (
	errTimeout = context.DeadlineExceeded
	errRefused = fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
)

func TestIsRefused(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "x"}}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errTimeout, false},
		{errors.New("EOF"), false},
		{opErr, false},
		{errRefused, true},
		{fmt.Errorf("probe: %w", ErrRefused), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Err: syscall.ECONNREFUSED}}, true},
		{errors.New(`rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:9849: connect: connection refused"`), true},
	}
	for _, tt := range tests {
		if got := IsRefused(tt.err); got != tt.want {
			t.Errorf("IsRefused(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// step is one probe result fed to the state machine.
type step struct {
	err   error
	count bool
	want  State
	fails int
}

func ok(want State) step             { return step{nil, true, want, 0} }
func fail(want State, n int) step    { return step{errTimeout, true, want, n} }
func refused(want State, n int) step { return step{errRefused, true, want, n} }
func discarded(err error, want State, n int) step {
	return step{err, false, want, n}
}

func TestPeerStateMachine(t *testing.T) {
	def := DefaultConfig()
	lenient := Config{SuspectAfter: 2, DownAfter: 4}.withDefaults()
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"new peer answers", def, []step{ok(StateUp)}},
		{"new peer never answers", def, []step{
			fail(StateSuspicious, 1), fail(StateSuspicious, 2), fail(StateDown, 3), fail(StateDown, 4)}},
		{"one failure suspects, success clears", def, []step{
			ok(StateUp), fail(StateSuspicious, 1), ok(StateUp), fail(StateSuspicious, 1)}},
		{"three consecutive failures down", def, []step{
			ok(StateUp), fail(StateSuspicious, 1), fail(StateSuspicious, 2), fail(StateDown, 3)}},
		{"failures not consecutive never down", def, []step{
			ok(StateUp), fail(StateSuspicious, 1), fail(StateSuspicious, 2), ok(StateUp),
			fail(StateSuspicious, 1), fail(StateSuspicious, 2), ok(StateUp)}},
		{"refused is down at once", def, []step{ok(StateUp), refused(StateDown, 1)}},
		{"refused on new peer", def, []step{refused(StateDown, 1)}},
		{"down comes back", def, []step{refused(StateDown, 1), fail(StateDown, 2), ok(StateUp)}},
		{"discarded failures change nothing", def, []step{
			ok(StateUp), fail(StateSuspicious, 1), discarded(errTimeout, StateSuspicious, 1),
			discarded(errRefused, StateSuspicious, 1), fail(StateSuspicious, 2)}},
		{"discarded success still applies", def, []step{
			fail(StateSuspicious, 1), {nil, false, StateUp, 0}}},
		{"suspect after two", lenient, []step{
			ok(StateUp), fail(StateUp, 1), fail(StateSuspicious, 2), fail(StateSuspicious, 3), fail(StateDown, 4)}},
		{"new peer stays suspicious under lenient", lenient, []step{fail(StateSuspicious, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(1)
			if p.state != StateSuspicious {
				t.Fatalf("new peer state %s, want SUSPICIOUS", p.state)
			}
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var lastOK time.Time
			for i, s := range tt.steps {
				now = now.Add(time.Second)
				prev := p.state
				from, changed := p.observe(tt.cfg, s.err, s.count, now)
				if from != prev || changed != (p.state != prev) {
					t.Fatalf("step %d: observe returned (%s, %v) for %s -> %s", i, from, changed, prev, p.state)
				}
				if p.state != s.want || p.fails != s.fails {
					t.Fatalf("step %d (err=%v count=%v): state %s fails %d, want %s fails %d",
						i, s.err, s.count, p.state, p.fails, s.want, s.fails)
				}
				if s.err == nil {
					lastOK = now
					if p.lastErr != "" {
						t.Fatalf("step %d: lastErr %q after success", i, p.lastErr)
					}
				} else if s.count && p.lastErr != s.err.Error() {
					t.Fatalf("step %d: lastErr %q, want %q", i, p.lastErr, s.err.Error())
				}
				if !p.lastContact.Equal(lastOK) {
					t.Fatalf("step %d: lastContact %v, want %v", i, p.lastContact, lastOK)
				}
			}
		})
	}
}

func TestPauseGuard(t *testing.T) {
	const (
		iv = time.Second
		to = 500 * time.Millisecond
	)
	t0 := time.Now() // carries a monotonic reading, like clock.Real
	type ev struct {
		at         time.Duration // tick at t0+at
		wantPaused bool
		wantCount  bool // result of startRound after this tick
	}
	tests := []struct {
		name   string
		events []ev
	}{
		{"regular ticks count", []ev{{0, false, true}, {iv, false, true}, {2 * iv, false, true}}},
		{"jitter below threshold", []ev{{0, false, true}, {2*iv + to, false, true}, {3*iv + to, false, true}}},
		{"pause discards two rounds", []ev{
			{0, false, true}, {10 * iv, true, false}, {11 * iv, false, false}, {12 * iv, false, true}}},
		{"just over threshold", []ev{{0, false, true}, {2*iv + to + time.Millisecond, true, false}}},
		{"second pause during grace restarts it", []ev{
			{0, false, true}, {10 * iv, true, false}, {20 * iv, true, false}, {21 * iv, false, false}, {22 * iv, false, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newPauseGuard(iv, to)
			for i, e := range tt.events {
				gap, paused := g.tick(t0.Add(e.at))
				if paused != e.wantPaused {
					t.Fatalf("event %d: paused=%v (gap %v), want %v", i, paused, gap, e.wantPaused)
				}
				if c := g.startRound(); c != e.wantCount {
					t.Fatalf("event %d: round counts=%v, want %v", i, c, e.wantCount)
				}
			}
		})
	}
}

func TestPauseGuardSkippedTicksDoNotUseGrace(t *testing.T) {
	// A tick that arrives while a round is running starts no round; the grace
	// must still cover the next two rounds actually started.
	g := newPauseGuard(time.Second, 500*time.Millisecond)
	t0 := time.Now()
	g.tick(t0)
	if !g.startRound() {
		t.Fatal("first round should count")
	}
	if _, paused := g.tick(t0.Add(30 * time.Second)); !paused {
		t.Fatal("pause not detected")
	}
	g.tick(t0.Add(31 * time.Second)) // skipped: round in flight
	if g.startRound() || g.startRound() {
		t.Fatal("rounds right after a pause must not count")
	}
	if !g.startRound() {
		t.Fatal("third round after a pause should count")
	}
}

func TestPauseGuardStarved(t *testing.T) {
	g := newPauseGuard(time.Second, 500*time.Millisecond)
	for _, tt := range []struct {
		elapsed time.Duration
		want    bool
	}{
		{0, false},
		{500 * time.Millisecond, false},
		{1500 * time.Millisecond, false},
		{1501 * time.Millisecond, true},
		{10 * time.Second, true},
	} {
		if got := g.starved(tt.elapsed); got != tt.want {
			t.Errorf("starved(%v) = %v, want %v", tt.elapsed, got, tt.want)
		}
	}
}
