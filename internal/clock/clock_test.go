package clock

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeNowAndAdvance(t *testing.T) {
	f := NewFake(t0)
	if !f.Now().Equal(t0) {
		t.Fatalf("Now = %v", f.Now())
	}
	f.Advance(1500 * time.Millisecond)
	if got := f.Now().Sub(t0); got != 1500*time.Millisecond {
		t.Fatalf("advanced by %v", got)
	}
}

func TestFakeAfter(t *testing.T) {
	f := NewFake(t0)
	ch := f.After(time.Second)
	f.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("After fired early")
	default:
	}
	f.Advance(time.Millisecond)
	select {
	case got := <-ch:
		if !got.Equal(t0.Add(time.Second)) {
			t.Errorf("fired with %v", got)
		}
	default:
		t.Fatal("After did not fire")
	}
	f.Advance(time.Hour)
	select {
	case <-ch:
		t.Fatal("After fired twice")
	default:
	}
}

func TestFakeTicker(t *testing.T) {
	f := NewFake(t0)
	tk := f.NewTicker(time.Second)
	fired := func() bool {
		select {
		case <-tk.C():
			return true
		default:
			return false
		}
	}
	f.Advance(500 * time.Millisecond)
	if fired() {
		t.Fatal("ticker fired early")
	}
	f.Advance(500 * time.Millisecond)
	if !fired() {
		t.Fatal("ticker did not fire at its period")
	}
	// Like time.Ticker, a slow reader gets at most one buffered tick.
	f.Advance(5 * time.Second)
	if !fired() || fired() {
		t.Fatal("want exactly one buffered tick after a long advance")
	}
	tk.Stop()
	f.Advance(5 * time.Second)
	if fired() {
		t.Fatal("stopped ticker fired")
	}
}

func TestReal(t *testing.T) {
	var c Clock = Real{}
	if d := time.Since(c.Now()); d < 0 || d > time.Second {
		t.Fatalf("Real.Now off by %v", d)
	}
	tk := c.NewTicker(time.Millisecond)
	defer tk.Stop()
	select {
	case <-tk.C():
	case <-time.After(5 * time.Second):
		t.Fatal("real ticker did not fire")
	}
	select {
	case <-c.After(time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("real After did not fire")
	}
}
