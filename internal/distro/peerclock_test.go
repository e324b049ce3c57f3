package distro

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

func testEngine(t *testing.T, clk clock.Clock) *Engine {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New("10.0.0.1:8848", hlc.New(time.Now))
	return New(DefaultConfig("10.0.0.1:8848"), st, registry.NewLocal(st, health.DefaultConfig(), clk, log), nil, clk, log, nil)
}

// The owner reads a handed-on write's age in the sender's monotonic clock,
// measured by probes; without a measurement of that clock (a restarted
// sender, a peer it cannot probe) it falls back to wall clocks, assuming
// they agree within ForwardSkew.
func TestForwardAge(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	e := testEngine(t, clk)
	const peer = "10.0.0.2:8848"
	// The peer's clock reads 1 h more than ours; a 4 ms round trip.
	sent := clk.Now()
	clk.Advance(4 * time.Millisecond)
	peerMono := e.mono(sent.Add(2*time.Millisecond)) + time.Hour
	e.noteClock(peer, sent, clk.Now(), &clusterpb.ProbeReply{MonoMicros: peerMono.Microseconds(), ClockId: 7})
	// A write the peer handed on 300 ms ago (its clock).
	clk.Advance(10 * time.Second)
	issued := e.mono(clk.Now()) + time.Hour - 300*time.Millisecond
	op := &clusterpb.WriteOp{IssuedMonoMicros: issued.Microseconds(), ClockId: 7, IssuedUnixMillis: clk.Now().Add(-time.Minute).UnixMilli()}
	age, tol, ok := e.forwardAge(peer, op, clk.Now())
	if !ok || age != 300*time.Millisecond {
		t.Fatalf("age %v %v, want 300ms from the sender's clock (its wall clock says a minute)", age, ok)
	}
	// Half the round trip, 10 s of drift at 100 ppm, and the margin.
	if want := 2*time.Millisecond + time.Millisecond + forwardMargin; tol != want {
		t.Fatalf("tolerance %v, want %v", tol, want)
	}
	// A looser measurement does not replace a tighter recent one.
	s2 := clk.Now()
	clk.Advance(200 * time.Millisecond)
	e.noteClock(peer, s2, clk.Now(), &clusterpb.ProbeReply{MonoMicros: (e.mono(s2.Add(100*time.Millisecond)) + time.Hour + 50*time.Millisecond).Microseconds(), ClockId: 7})
	if c := e.clocks[peer]; c.err != 2*time.Millisecond {
		t.Fatalf("measurement replaced by a looser one: %+v", c)
	}
	// A restarted sender has another clock: wall clocks, with ForwardSkew.
	op.ClockId = 8
	age, tol, ok = e.forwardAge(peer, op, clk.Now())
	if !ok || age < time.Minute || tol != e.cfg.ForwardSkew+forwardMargin {
		t.Fatalf("fallback age %v tol %v %v", age, tol, ok)
	}
	// A write without any send time (an old sender) is not judged.
	if _, _, ok := e.forwardAge(peer, &clusterpb.WriteOp{}, clk.Now()); ok {
		t.Fatal("a write without a send time was judged")
	}
}
