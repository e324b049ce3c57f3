package member

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/internal/clock"
)

// fakeProber answers probes from a per-peer behaviour the test sets.
type fakeProber struct {
	mu       sync.Mutex
	behave   map[string]func(ctx context.Context) error // nil entry: success
	calls    map[string]int
	inFlight map[string]int
	maxPeer  int // most concurrent probes of one peer
	cur, max int // concurrent probes overall
}

func newFakeProber() *fakeProber {
	return &fakeProber{behave: map[string]func(context.Context) error{}, calls: map[string]int{}, inFlight: map[string]int{}}
}

func (f *fakeProber) set(peer string, fn func(ctx context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behave[peer] = fn
}

func (f *fakeProber) Probe(ctx context.Context, peer string) error {
	f.mu.Lock()
	f.calls[peer]++
	f.inFlight[peer]++
	f.maxPeer = max(f.maxPeer, f.inFlight[peer])
	f.cur++
	f.max = max(f.max, f.cur)
	fn := f.behave[peer]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[peer]--
		f.cur--
		f.mu.Unlock()
	}()
	if fn == nil {
		return nil
	}
	return fn(ctx)
}

func (f *fakeProber) callCount(peer string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[peer]
}

// Behaviours.
func answer(context.Context) error { return nil }
func hang(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
func refuse(context.Context) error { return errRefused }
func failFast(context.Context) error {
	return errors.New("i/o timeout")
}

// viewRecorder is a subscriber that keeps every view it gets.
type viewRecorder struct {
	mu    sync.Mutex
	views []View
}

func (r *viewRecorder) record(v View) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.views = append(r.views, v)
}

func (r *viewRecorder) last(t *testing.T) View {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.views) == 0 {
		t.Fatal("no view delivered")
	}
	return r.views[len(r.views)-1]
}

func (r *viewRecorder) checkOrdered(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.views); i++ {
		if r.views[i].Epoch <= r.views[i-1].Epoch {
			t.Fatalf("views out of order: epoch %d after %d", r.views[i].Epoch, r.views[i-1].Epoch)
		}
	}
}

// statusOf returns addr's entry in a snapshot.
func statusOf(t *testing.T, ms []MemberStatus, addr string) MemberStatus {
	t.Helper()
	for _, m := range ms {
		if m.Address == addr {
			return m
		}
	}
	t.Fatalf("%s not in %v", addr, ms)
	return MemberStatus{}
}

func wantStates(t *testing.T, h *Health, want map[string]State) {
	t.Helper()
	snap := h.Snapshot()
	if len(snap) != len(want) {
		t.Fatalf("snapshot has %d members, want %d: %+v", len(snap), len(want), snap)
	}
	for addr, st := range want {
		if got := statusOf(t, snap, addr); got.State != st {
			t.Fatalf("%s is %s, want %s (%+v)", addr, got.State, st, got)
		}
	}
}

const (
	self  = "10.0.0.1:8848"
	peerB = "10.0.0.2:8848"
	peerC = "10.0.0.3:8848"
	peerD = "10.0.0.4:8848"
)

// advance moves the bubble's clock by d and waits for everything to settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestHealthProbeRoundsRealClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newTestLogger(t)
		p := newFakeProber()
		p.set(peerC, hang)
		h := NewHealth(self, Config{}, p, clock.Real{}, log)
		h.SetMembers([]string{self, peerB, peerC})
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateSuspicious, peerC: StateSuspicious})

		rec := &viewRecorder{}
		h.Subscribe(rec.record)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()

		// Round 1 starts at once; c's probe times out at 500 ms.
		advance(750 * time.Millisecond)
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp, peerC: StateSuspicious})
		c := statusOf(t, h.Snapshot(), peerC)
		if c.FailCount != 1 || c.LastError != context.DeadlineExceeded.Error() || !c.LastContact.IsZero() {
			t.Fatalf("c after one timeout: %+v", c)
		}
		if b := statusOf(t, h.Snapshot(), peerB); b.LastContact.IsZero() || b.FailCount != 0 {
			t.Fatalf("b after a success: %+v", b)
		}

		advance(time.Second) // round 2
		if c := statusOf(t, h.Snapshot(), peerC); c.State != StateSuspicious || c.FailCount != 2 {
			t.Fatalf("c after two timeouts: %+v", c)
		}
		advance(time.Second) // round 3
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp, peerC: StateDown})

		v := rec.last(t)
		if got, want := v.Eligible(), []string{self, peerB}; !slices.Equal(got, want) {
			t.Fatalf("eligible %v, want %v", got, want)
		}
		rec.checkOrdered(t)
		if got := logs.lines(`msg="member state changed"`, "peer="+peerC, "from=SUSPICIOUS", "to=DOWN"); len(got) != 1 {
			t.Fatalf("want one log line for c going DOWN, got %q", got)
		}

		// c answers again and is back at the next round.
		p.set(peerC, answer)
		advance(time.Second)
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp, peerC: StateUp})
		if got, want := rec.last(t).Eligible(), []string{self, peerB, peerC}; !slices.Equal(got, want) {
			t.Fatalf("eligible %v, want %v", got, want)
		}
		if n := p.callCount(self); n != 0 {
			t.Fatalf("self probed %d times", n)
		}

		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestHealthRefusedIsDownAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProber()
		p.set(peerB, refuse)
		h := NewHealth(self, Config{}, p, clock.Real{}, nil)
		h.SetMembers([]string{self, peerB})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		synctest.Wait()
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateDown})
		if got := h.View().Eligible(); !slices.Equal(got, []string{self}) {
			t.Fatalf("eligible %v", got)
		}
	})
}

// pausableClock is the real clock (virtual inside a synctest bubble) whose
// readings can jump forward without any tick being delivered in between:
// what a process sees after SIGSTOP/SIGCONT, where the ticker drops the
// ticks it missed.
type pausableClock struct {
	clock.Real
	off atomic.Int64
}

func (c *pausableClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// pause makes d pass in an instant, as seen by the process.
func (c *pausableClock) pause(d time.Duration) { c.off.Add(int64(d)) }

// TestHealthPauseWhileProbing simulates a SIGSTOP that hits while a round is
// in flight: the probe's deadline passes while the process is stopped, so it
// returns a timeout much later than it should have. On waking, the loop sees
// a long gap between ticks. Neither that probe nor the failures of the next
// two rounds may count, so the healthy peer is not declared DOWN.
func TestHealthPauseWhileProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newTestLogger(t)
		clk := &pausableClock{}
		p := newFakeProber()
		h := NewHealth(self, Config{}, p, clk, log)
		h.SetMembers([]string{self, peerB})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		synctest.Wait()
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp})

		// Round 2 (t=1s): the process is stopped for 30 s mid-probe.
		release := make(chan struct{})
		p.set(peerB, func(context.Context) error {
			<-release
			return context.DeadlineExceeded
		})
		advance(time.Second)
		clk.pause(30 * time.Second)
		p.set(peerB, failFast) // after waking, replies are still lost for a while
		close(release)
		synctest.Wait()
		// Rounds 3 and 4 fail too, but are grace rounds.
		advance(time.Second)
		advance(time.Second)
		if n := p.callCount(peerB); n != 4 {
			t.Fatalf("b probed %d times, want 4", n)
		}
		b := statusOf(t, h.Snapshot(), peerB)
		if b.State != StateUp || b.FailCount != 0 {
			t.Fatalf("b after a local pause: %+v; want UP with no counted failures", b)
		}
		if len(logs.lines("probe loop was paused", "gap=31s")) != 1 {
			t.Fatal("pause not logged once")
		}
		if len(logs.lines("discarded probe failures", "failures=1")) != 3 {
			t.Fatal("want three rounds of discarded failures logged")
		}
		// Round 5 counts.
		advance(time.Second)
		if b := statusOf(t, h.Snapshot(), peerB); b.State != StateSuspicious || b.FailCount != 1 {
			t.Fatalf("b after the grace rounds: %+v; want SUSPICIOUS with 1 failure", b)
		}
	})
}

// TestHealthPauseWhileIdle: the process is stopped between rounds. The late
// tick shows the gap, and the failures of that round and the next are
// discarded; real failures after that still count and bring the peer DOWN.
func TestHealthPauseWhileIdle(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pause     time.Duration
		wantState State // after two failing rounds
		wantFails int
	}{
		{"no pause", 0, StateSuspicious, 2},
		{"gap under threshold", 1400 * time.Millisecond, StateSuspicious, 2},
		{"gap over threshold", 1600 * time.Millisecond, StateUp, 0},
		{"long pause", time.Minute, StateUp, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := &pausableClock{}
				p := newFakeProber()
				h := NewHealth(self, Config{}, p, clk, nil)
				h.SetMembers([]string{self, peerB})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				go h.Run(ctx)
				synctest.Wait()
				wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp})

				p.set(peerB, failFast)
				clk.pause(tc.pause) // the next tick comes 1 s + pause after the last
				advance(time.Second)
				advance(time.Second)
				if b := statusOf(t, h.Snapshot(), peerB); b.State != tc.wantState || b.FailCount != tc.wantFails {
					t.Fatalf("b: %+v, want %s with %d failures", b, tc.wantState, tc.wantFails)
				}
				// Failures keep coming: three counted ones make b DOWN.
				for range 3 {
					advance(time.Second)
				}
				wantStates(t, h, map[string]State{self: StateUp, peerB: StateDown})
			})
		})
	}
}

func TestHealthSetMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newTestLogger(t)
		p := newFakeProber()
		p.set(peerC, refuse)
		h := NewHealth(self, Config{}, p, clock.Real{}, log)
		if v := h.View(); v.Epoch != 1 || !slices.Equal(v.Eligible(), []string{self}) {
			t.Fatalf("initial view %+v", v)
		}
		h.SetMembers([]string{peerC, self, peerB, peerB})
		if e := h.View().Epoch; e != 2 {
			t.Fatalf("epoch %d after first SetMembers, want 2", e)
		}
		h.SetMembers([]string{self, peerB, peerC})
		if e := h.View().Epoch; e != 2 {
			t.Fatalf("epoch %d after a no-op SetMembers, want 2", e)
		}

		rec := &viewRecorder{}
		h.Subscribe(rec.record)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		synctest.Wait()
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp, peerC: StateDown})

		// c leaves, d joins; b keeps its state; d starts SUSPICIOUS.
		h.SetMembers([]string{self, peerB, peerD})
		wantStates(t, h, map[string]State{self: StateUp, peerB: StateUp, peerD: StateSuspicious})
		if got := logs.lines(`msg="membership changed"`, "added=["+peerD+"]", "removed=["+peerC+"]"); len(got) != 1 {
			t.Fatalf("membership change log lines: %q", got)
		}
		synctest.Wait() // the subscriber is told from the health goroutine
		v := rec.last(t)
		if !slices.Equal(v.Eligible(), []string{self, peerB, peerD}) {
			t.Fatalf("subscriber's view %+v", v)
		}
		rec.checkOrdered(t)

		// c comes back: it is a new member again, not DOWN from before.
		h.SetMembers([]string{self, peerB, peerC, peerD})
		if st := statusOf(t, h.Snapshot(), peerC).State; st != StateSuspicious {
			t.Fatalf("re-added c is %s, want SUSPICIOUS", st)
		}

		// Self missing from the list is still in the view, with a warning.
		h.SetMembers([]string{peerB, peerC, peerD})
		if got := h.View().Eligible(); !slices.Contains(got, self) {
			t.Fatalf("self missing from eligible %v", got)
		}
		if len(logs.lines("this node is not in the member list")) == 0 {
			t.Fatal("no warning about self missing from the list")
		}
	})
}

// TestHealthStaleResultIgnored: a probe result for a peer that was removed
// and re-added while the probe was in flight must not touch the new entry.
func TestHealthStaleResultIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProber()
		release := make(chan struct{})
		p.set(peerB, func(context.Context) error { <-release; return errRefused })
		h := NewHealth(self, Config{Timeout: time.Hour, Interval: time.Hour}, p, clock.Real{}, nil)
		h.SetMembers([]string{self, peerB})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		synctest.Wait() // b's probe is in flight
		h.SetMembers([]string{self})
		h.SetMembers([]string{self, peerB})
		close(release)
		synctest.Wait()
		if st := statusOf(t, h.Snapshot(), peerB).State; st != StateSuspicious {
			t.Fatalf("b is %s; a refusal for its previous incarnation was applied", st)
		}
	})
}

func TestHealthBoundedConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProber()
		members := []string{self}
		for _, a := range []string{"10.0.1.1:8848", "10.0.1.2:8848", "10.0.1.3:8848", "10.0.1.4:8848", "10.0.1.5:8848"} {
			p.set(a, hang)
			members = append(members, a)
		}
		h := NewHealth(self, Config{MaxConcurrentProbes: 2}, p, clock.Real{}, nil)
		h.SetMembers(members)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		// Each round takes 3 × 500 ms, longer than the interval; ticks that
		// arrive meanwhile are skipped.
		advance(10 * time.Second)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.max != 2 {
			t.Fatalf("max concurrent probes %d, want 2", p.max)
		}
		if p.maxPeer != 1 {
			t.Fatalf("a peer was probed %d times at once", p.maxPeer)
		}
		for a, n := range p.calls {
			if n < 4 || n > 6 {
				t.Fatalf("%s probed %d times in 10 s, want 4-6 (one per round)", a, n)
			}
		}
	})
}

func TestHealthSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProber()
		h := NewHealth(self, Config{}, p, clock.Real{}, nil)
		h.SetMembers([]string{self, peerB})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.Run(ctx)
		synctest.Wait()

		// A late subscriber gets the current view first, and may call back
		// into Health without deadlocking.
		var got []View
		var snaps int
		h.Subscribe(func(v View) {
			got = append(got, v)
			snaps += len(h.Snapshot())
		})
		synctest.Wait()
		if len(got) != 1 || got[0].Epoch != h.View().Epoch || snaps != 2 {
			t.Fatalf("late subscriber got %+v (snapshot sizes %d)", got, snaps)
		}
		// No change, no call.
		advance(5 * time.Second)
		if len(got) != 1 {
			t.Fatalf("subscriber called %d times without a change", len(got))
		}
		p.set(peerB, refuse)
		advance(time.Second)
		if len(got) != 2 || got[1].Epoch != got[0].Epoch+1 {
			t.Fatalf("after b went DOWN subscriber got %+v", got)
		}
	})
}

func TestViewEligibleAndID(t *testing.T) {
	mk := func(selfAddr string, states ...any) View {
		v := View{Self: selfAddr}
		for i := 0; i < len(states); i += 2 {
			v.Members = append(v.Members, MemberStatus{Address: states[i].(string), State: states[i+1].(State)})
		}
		return v
	}
	a, b, c := "10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"
	tests := []struct {
		name string
		v    View
		want []string
	}{
		{"all up", mk(a, a, StateUp, b, StateUp, c, StateUp), []string{a, b, c}},
		{"suspicious counts", mk(a, a, StateUp, b, StateSuspicious, c, StateUp), []string{a, b, c}},
		{"down excluded", mk(a, a, StateUp, b, StateDown, c, StateUp), []string{a, c}},
		{"self always", mk(b, a, StateDown, c, StateDown), []string{b}},
		{"self listed down still eligible", mk(a, a, StateDown), []string{a}},
		{"unsorted input", mk(c, c, StateUp, a, StateUp), []string{a, c}},
	}
	for _, tt := range tests {
		if got := tt.v.Eligible(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Eligible() = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Same eligible list, same ID, whatever the rest of the view says.
	v1 := mk(a, a, StateUp, b, StateUp, c, StateDown)
	v2 := mk(b, a, StateSuspicious, b, StateUp)
	v2.Epoch = 42
	if v1.ID() != v2.ID() {
		t.Errorf("same eligible list, different IDs %s %s", v1.ID(), v2.ID())
	}
	v3 := mk(a, a, StateUp, b, StateUp, c, StateUp)
	if v1.ID() == v3.ID() {
		t.Errorf("different eligible lists, same ID %s", v1.ID())
	}
	if len(v1.ID()) != 16 {
		t.Errorf("ID %q is not 16 hex digits", v1.ID())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{}, false},
		{DefaultConfig(), false},
		{Config{Interval: -1}, true},
		{Config{Timeout: -1}, true},
		{Config{SuspectAfter: -1}, true},
		{Config{SuspectAfter: 3, DownAfter: 2}, true},
		{Config{SuspectAfter: 2, DownAfter: 2}, false},
		{Config{MaxConcurrentProbes: -2}, true},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.cfg, err, tt.wantErr)
		}
	}
}
