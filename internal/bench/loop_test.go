package bench

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The loop tests run inside a synctest bubble: time.Now and timers use the
// bubble's fake clock, which advances only when every goroutine is blocked,
// so the schedules below are exact and the tests take no real time.

// sleepOp is an operation that takes d of (fake) time.
func sleepOp(d time.Duration) OpFunc {
	return func(ctx context.Context, _ *Worker, _ int64) Outcome {
		time.Sleep(d)
		return Outcome{Bytes: 10}
	}
}

func latencies(t *testing.T, s *Stats) []time.Duration {
	t.Helper()
	h := s.Latency
	if !h.Exact() {
		t.Fatal("expected exact samples")
	}
	out := make([]time.Duration, len(h.samples))
	for i, v := range h.samples {
		out[i] = time.Duration(v)
	}
	slices.Sort(out)
	return out
}

func TestOpenLoopMeasuresFromScheduledStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 100 req/s for 200 ms = 20 scheduled requests, one outstanding at
		// a time, each taking 45 ms: the server cannot keep up. Request i
		// is scheduled at 10i ms but can only start when request i-1 ends
		// (45i ms), so its latency is 45(i+1) - 10i = 45 + 35i ms. A closed
		// loop would report 45 ms for every request: that is coordinated
		// omission.
		var seq atomic.Int64
		ws := NewWorkers(1, 1, 1)
		r := RunLoop(t.Context(), LoopSpec{Workers: 1, Rate: 100, Duration: 200 * time.Millisecond}, ws, &seq, sleepOp(45*time.Millisecond), nil)
		got := latencies(t, r.Stats)
		want := []time.Duration{45, 80, 115, 150, 185}
		if len(got) != len(want) {
			t.Fatalf("completed %d requests (%v), want %d", len(got), got, len(want))
		}
		for i := range want {
			if got[i] != want[i]*time.Millisecond {
				t.Errorf("request %d latency %v, want %v", i, got[i], want[i]*time.Millisecond)
			}
		}
		// Requests 5..19 were scheduled before the deadline but never sent.
		if r.Backlog != 15 {
			t.Errorf("backlog %d, want 15", r.Backlog)
		}
		// The start lag (scheduled → sent) is part of the latency and
		// reported on its own: 0, 35, 70, 105, 140 ms.
		if r.Stats.Lag.Max() != 140*time.Millisecond {
			t.Errorf("max start lag %v", r.Stats.Lag.Max())
		}
		if r.Elapsed() != 225*time.Millisecond {
			t.Errorf("elapsed %v", r.Elapsed())
		}
	})
}

func TestOpenLoopKeepsUpWhenServerIsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seq atomic.Int64
		ws := NewWorkers(4, 1, 1)
		r := RunLoop(t.Context(), LoopSpec{Workers: 4, Rate: 1000, Duration: 100 * time.Millisecond}, ws, &seq, sleepOp(3*time.Millisecond), nil)
		if n := r.Stats.Requests(); n != 100 {
			t.Fatalf("requests %d, want 100", n)
		}
		// Three requests overlap at any time (3 ms each, 1 ms apart), within
		// the bound of 4: every latency is exactly the service time.
		lat := latencies(t, r.Stats)
		if lat[0] != 3*time.Millisecond || lat[len(lat)-1] != 3*time.Millisecond || r.Backlog != 0 {
			t.Fatalf("latency range %v..%v backlog %d", lat[0], lat[len(lat)-1], r.Backlog)
		}
		if seq.Load() != 100 {
			t.Errorf("seq %d", seq.Load())
		}
	})
}

func TestOpenLoopMaxRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seq atomic.Int64
		ws := NewWorkers(2, 1, 1)
		r := RunLoop(t.Context(), LoopSpec{Workers: 2, Rate: 50, Duration: time.Hour, MaxRequests: 7}, ws, &seq, sleepOp(time.Millisecond), nil)
		if r.Stats.Requests() != 7 {
			t.Fatalf("requests %d", r.Stats.Requests())
		}
		// The 7th request is scheduled at 120 ms and takes 1 ms.
		if r.Elapsed() != 121*time.Millisecond {
			t.Fatalf("elapsed %v", r.Elapsed())
		}
	})
}

func TestClosedLoopBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seq atomic.Int64
		ws := NewWorkers(2, 1, 1)
		live := &Live{}
		r := RunLoop(t.Context(), LoopSpec{Workers: 2, Duration: 100 * time.Millisecond}, ws, &seq, sleepOp(10*time.Millisecond), live)
		// Two workers, 10 ms each, for 100 ms: 10 requests each.
		if n := r.Stats.Requests(); n != 20 || live.Done.Load() != 20 {
			t.Fatalf("requests %d live %d", n, live.Done.Load())
		}
		lat := latencies(t, r.Stats)
		if lat[0] != 10*time.Millisecond || lat[19] != 10*time.Millisecond {
			t.Fatalf("latencies %v", lat)
		}
		if r.Stats.Bytes != 200 || r.Elapsed() != 100*time.Millisecond {
			t.Fatalf("bytes %d elapsed %v", r.Stats.Bytes, r.Elapsed())
		}

		r = RunLoop(t.Context(), LoopSpec{Workers: 2, Duration: time.Hour, MaxRequests: 5}, ws, &seq, sleepOp(time.Millisecond), nil)
		if n := r.Stats.Requests(); n != 5 {
			t.Fatalf("max-requests: %d", n)
		}
		if seq.Load() != 25 {
			t.Fatalf("seq continues across loops: %d", seq.Load())
		}
	})
}

func TestLoopStopsWhenScenarioRunsOut(t *testing.T) {
	for _, rate := range []float64{0, 1000} {
		synctest.Test(t, func(t *testing.T) {
			var seq atomic.Int64
			ws := NewWorkers(3, 1, 1)
			op := func(ctx context.Context, _ *Worker, s int64) Outcome {
				time.Sleep(time.Millisecond)
				if s >= 10 {
					return Outcome{Stop: true}
				}
				return Outcome{Op: "deregister"}
			}
			r := RunLoop(t.Context(), LoopSpec{Workers: 3, Rate: rate, Duration: time.Hour}, ws, &seq, op, nil)
			if !r.Stopped || r.Stats.Requests() != 10 {
				t.Fatalf("rate %v: stopped %v requests %d", rate, r.Stopped, r.Stats.Requests())
			}
			if r.Stats.Ops["deregister"].OK != 10 {
				t.Fatalf("per-op %+v", r.Stats.Ops)
			}
		})
	}
}

func TestLoopCountsFailuresByKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seq atomic.Int64
		ws := NewWorkers(1, 1, 1)
		op := func(ctx context.Context, _ *Worker, s int64) Outcome {
			time.Sleep(time.Millisecond)
			switch s % 3 {
			case 1:
				return Outcome{Kind: "http_503", Status: 503}
			case 2:
				return Outcome{Kind: "timeout", HasSample: true, Sample: time.Second}
			}
			return Outcome{HasSample: true, Sample: 7 * time.Millisecond}
		}
		r := RunLoop(t.Context(), LoopSpec{Workers: 1, MaxRequests: 9, Op: "x"}, ws, &seq, op, nil)
		st := r.Stats
		if st.OK != 3 || st.Failed != 6 || st.Kinds["http_503"] != 3 || st.Kinds["timeout"] != 3 {
			t.Fatalf("stats ok %d failed %d kinds %v", st.OK, st.Failed, st.Kinds)
		}
		if st.Metric.Count() != 6 || st.Ops["x"].Failed != 6 {
			t.Fatalf("metric %d ops %+v", st.Metric.Count(), st.Ops["x"])
		}
	})
}

func TestLoopCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var seq atomic.Int64
		ws := NewWorkers(2, 1, 1)
		go func() { time.Sleep(55 * time.Millisecond); cancel() }()
		r := RunLoop(ctx, LoopSpec{Workers: 2, Rate: 100, Duration: time.Hour}, ws, &seq, sleepOp(time.Millisecond), nil)
		if n := r.Stats.Requests(); n != 6 {
			t.Fatalf("requests %d, want 6 (0..50 ms)", n)
		}
	})
}
