// Package clock abstracts time so that expiry, probing and sync timing can be
// driven by a fake clock in tests. Production code uses Real.
package clock

import (
	"sync"
	"time"
)

// Clock is the time source every timed component takes. Now must carry a
// monotonic reading (time.Now does), so that deadlines survive wall-clock jumps.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker driven by this clock.
	NewTicker(d time.Duration) Ticker
	// After returns a channel that receives once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// Ticker is the subset of time.Ticker that components use.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTicker wraps time.NewTicker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

// After wraps time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Shifted is the system clock with every reading moved by Offset, as on a
// machine whose clock is off: durations between readings are unchanged
// (the monotonic reading moves too). Fault-injection tests use it.
type Shifted struct {
	Real
	Offset time.Duration
}

// Now returns time.Now() + Offset.
func (s Shifted) Now() time.Time { return time.Now().Add(s.Offset) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Fake is a manually advanced clock for tests of pure logic. Tickers created
// from it fire when Advance passes their period. Timed loops under
// testing/synctest can simply use Real instead.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	afters  []fakeAfter
}

type fakeAfter struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a fake clock starting at t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves time forward by d and fires due tickers and timers.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	now := f.now
	var fire []chan time.Time
	for _, t := range f.tickers {
		for !t.stopped && !t.next.After(now) {
			fire = append(fire, t.ch)
			t.next = t.next.Add(t.d)
		}
	}
	rest := f.afters[:0]
	for _, a := range f.afters {
		if !a.at.After(now) {
			fire = append(fire, a.ch)
		} else {
			rest = append(rest, a)
		}
	}
	f.afters = rest
	f.mu.Unlock()
	for _, ch := range fire {
		select {
		case ch <- now:
		default:
		}
	}
}

// NewTicker returns a ticker that fires on Advance.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{f: f, d: d, next: f.now.Add(d), ch: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	return t
}

// After returns a channel that fires once Advance passes d.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	f.afters = append(f.afters, fakeAfter{at: f.now.Add(d), ch: ch})
	return ch
}

type fakeTicker struct {
	f       *Fake
	d       time.Duration
	next    time.Time
	ch      chan time.Time
	stopped bool
}

func (t *fakeTicker) C() <-chan time.Time { return t.ch }
func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	t.stopped = true
	t.f.mu.Unlock()
}
