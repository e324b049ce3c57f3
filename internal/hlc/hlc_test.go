package hlc

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wallAt returns a wall clock the test moves by storing Unix milliseconds.
func wallAt(ms *atomic.Int64) func() time.Time {
	return func() time.Time { return time.UnixMilli(ms.Load()) }
}

func TestTimestampParts(t *testing.T) {
	ts := Make(1732550000123, 7)
	if ts.WallMillis() != 1732550000123 || ts.Logical() != 7 {
		t.Fatalf("Make round trip: %d %d", ts.WallMillis(), ts.Logical())
	}
	if got := ts.String(); got != "1732550000123.7" {
		t.Errorf("String = %q", got)
	}
	if !(Make(1, 65535) < Make(2, 0)) || !(Make(2, 0) < Make(2, 1)) {
		t.Error("integer order does not follow (wall, logical)")
	}
}

func TestNowStrictlyIncreasesWithFrozenWall(t *testing.T) {
	var ms atomic.Int64
	ms.Store(1000)
	c := New(wallAt(&ms))
	prev := c.Now()
	if prev.WallMillis() != 1000 || prev.Logical() != 0 {
		t.Fatalf("first stamp %v, want 1000.0", prev)
	}
	for i := 0; i < 70000; i++ { // more than the logical counter holds
		ts := c.Now()
		if ts <= prev {
			t.Fatalf("stamp %v after %v", ts, prev)
		}
		prev = ts
	}
	if c.Last() != prev {
		t.Errorf("Last = %v, want %v", c.Last(), prev)
	}
}

func TestNowConcurrentUnique(t *testing.T) {
	var ms atomic.Int64
	ms.Store(5000)
	c := New(wallAt(&ms))
	const workers, per = 8, 2000
	out := make([][]Timestamp, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if i%100 == 0 {
					ms.Add(1)
				}
				out[w] = append(out[w], c.Now())
			}
		}()
	}
	wg.Wait()
	seen := make(map[Timestamp]bool, workers*per)
	for w := range out {
		for i, ts := range out[w] {
			if seen[ts] {
				t.Fatalf("duplicate stamp %v", ts)
			}
			seen[ts] = true
			if i > 0 && ts <= out[w][i-1] {
				t.Fatalf("worker %d: %v after %v", w, ts, out[w][i-1])
			}
		}
	}
}

func TestWallClockGoesBackwards(t *testing.T) {
	var ms atomic.Int64
	ms.Store(10_000)
	c := New(wallAt(&ms))
	a := c.Now()
	ms.Store(5_000) // a jump back of 5 s
	b := c.Now()
	if b <= a {
		t.Fatalf("after a backward jump: %v <= %v", b, a)
	}
	if b.WallMillis() != 10_000 {
		t.Errorf("stamp should stay on the old wall time, got %v", b)
	}
	ms.Store(20_000)
	if d := c.Now(); d != Make(20_000, 0) {
		t.Errorf("after wall time catches up: %v, want 20000.0", d)
	}
}

func TestObserve(t *testing.T) {
	var ms atomic.Int64
	ms.Store(100_000)
	c := New(wallAt(&ms))
	c.Now()

	// A peer stamp slightly ahead pulls local stamps after it.
	peer := Make(100_500, 3)
	c.Observe(peer, time.Second)
	if c.Last() != peer {
		t.Fatalf("Last = %v, want %v", c.Last(), peer)
	}
	if n := c.Now(); n <= peer {
		t.Fatalf("Now %v not after observed %v", n, peer)
	}

	// An older stamp changes nothing.
	before := c.Last()
	c.Observe(Make(1, 0), time.Second)
	if c.Last() != before {
		t.Fatalf("old stamp moved the clock: %v", c.Last())
	}

	// A stamp further ahead than maxAhead is ignored.
	c.Observe(Make(100_000+60_000, 0), 30*time.Second)
	if c.Last() != before {
		t.Fatalf("far-future stamp was observed: %v", c.Last())
	}
	if n := c.Now(); n.WallMillis() > 101_000 {
		t.Fatalf("far-future stamp dragged the clock to %v", n)
	}

	// Exactly at the limit is accepted.
	edge := Make(100_000+30_000, 0)
	c.Observe(edge, 30*time.Second)
	if c.Last() != edge {
		t.Fatalf("stamp at the limit not observed: %v", c.Last())
	}
}

func TestNewDefaultsToRealTime(t *testing.T) {
	c := New(nil)
	ts := c.Now()
	if d := time.Since(time.UnixMilli(ts.WallMillis())); d < -time.Second || d > time.Minute {
		t.Fatalf("stamp %v is not near now", ts)
	}
}
