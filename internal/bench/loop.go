package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Worker is one load goroutine's state, kept across the warmup and the
// measured loop.
type Worker struct {
	// ID is the worker's index.
	ID int
	// Rand is the worker's own random source.
	Rand *rand.Rand
	// Node is the target this worker talks to by default (ID mod nodes).
	Node  int
	stats *Stats
}

// NewWorkers returns n workers spread over nodes targets, seeded from seed.
func NewWorkers(n, nodes int, seed uint64) []*Worker {
	ws := make([]*Worker, n)
	for i := range ws {
		ws[i] = &Worker{ID: i, Rand: rand.New(rand.NewPCG(seed, uint64(i)+1)), Node: i % max(nodes, 1)}
	}
	return ws
}

// OpFunc performs operation number seq (unique across the run) on behalf
// of a worker.
type OpFunc func(ctx context.Context, w *Worker, seq int64) Outcome

// LoopSpec bounds and shapes one load loop. Every loop is bounded in time
// (Duration) and, optionally, in count (MaxRequests).
type LoopSpec struct {
	// Workers is the concurrency of a closed loop, or the bound on
	// outstanding requests of an open loop.
	Workers int
	// Rate > 0 selects the open loop: request i is scheduled at
	// start + i/Rate, whatever happened to earlier ones.
	Rate float64
	// Duration stops issuing requests; in-flight ones complete.
	Duration time.Duration
	// MaxRequests stops after that many requests (0: no bound).
	MaxRequests int64
	// Op names the operation of outcomes that do not name one.
	Op string
}

// LoopResult is what a loop measured.
type LoopResult struct {
	Stats *Stats
	// Start is the loop's start; End the last completion.
	Start, End time.Time
	// Backlog counts open-loop requests that were scheduled before the
	// deadline but never sent because every outstanding slot stayed busy:
	// the rate was more than the server (or the bound) sustained.
	Backlog int64
	// Stopped is set when the scenario ran out of work.
	Stopped bool
}

// Elapsed is End - Start.
func (r *LoopResult) Elapsed() time.Duration { return r.End.Sub(r.Start) }

// RunLoop runs op on workers until spec's bounds are reached and returns the
// merged statistics. seq hands out operation numbers (shared with other
// loops of the same run so that unique names stay unique). live, if not
// nil, is updated as outcomes arrive.
//
// The closed loop measures each request from its actual start. The open
// loop schedules request i at start+i/Rate and measures it from that
// scheduled time, so time spent waiting for a free slot counts as latency:
// a stalled server cannot hide its stall by slowing the load down
// (coordinated omission).
func RunLoop(ctx context.Context, spec LoopSpec, ws []*Worker, seq *atomic.Int64, op OpFunc, live *Live) LoopResult {
	if spec.Workers <= 0 || spec.Workers > len(ws) {
		spec.Workers = len(ws)
	}
	ws = ws[:spec.Workers]
	for _, w := range ws {
		w.stats = NewStats()
	}
	var r LoopResult
	if spec.Rate > 0 {
		r = openLoop(ctx, spec, ws, seq, op, live)
	} else {
		r = closedLoop(ctx, spec, ws, seq, op, live)
	}
	r.Stats = NewStats()
	for _, w := range ws {
		r.Stats.Merge(w.stats)
		w.stats = nil
	}
	return r
}

func closedLoop(ctx context.Context, spec LoopSpec, ws []*Worker, seq *atomic.Int64, op OpFunc, live *Live) LoopResult {
	start := time.Now()
	deadline := start.Add(spec.Duration)
	var claimed atomic.Int64
	var stopped atomic.Bool
	ends := make([]time.Time, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			for ctx.Err() == nil && !stopped.Load() {
				if spec.Duration > 0 && !time.Now().Before(deadline) {
					return
				}
				if spec.MaxRequests > 0 && claimed.Add(1) > spec.MaxRequests {
					return
				}
				t0 := time.Now()
				o := op(ctx, w, seq.Add(1)-1)
				t1 := time.Now()
				if o.Stop {
					stopped.Store(true)
					return
				}
				if ctx.Err() != nil && o.Kind == "canceled" {
					return // interrupted, not a server failure
				}
				w.stats.Add(o, spec.Op, t1.Sub(t0))
				live.add(o)
				ends[i] = t1
			}
		})
	}
	wg.Wait()
	r := LoopResult{Start: start, End: start, Stopped: stopped.Load()}
	for _, e := range ends {
		if e.After(r.End) {
			r.End = e
		}
	}
	return r
}

type ticket struct {
	seq   int64
	sched time.Time
}

func openLoop(ctx context.Context, spec LoopSpec, ws []*Worker, seq *atomic.Int64, op OpFunc, live *Live) LoopResult {
	start := time.Now()
	deadline := start.Add(spec.Duration)
	ivl := float64(time.Second) / spec.Rate
	schedAt := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * ivl)) }
	// total is how many requests the schedule holds.
	total := int64(math.MaxInt64)
	if spec.Duration > 0 {
		total = int64(math.Ceil(float64(spec.Duration) / ivl))
		for total > 0 && !schedAt(total-1).Before(deadline) {
			total--
		}
		for schedAt(total).Before(deadline) {
			total++
		}
	}
	if spec.MaxRequests > 0 {
		total = min(total, spec.MaxRequests)
	}

	tickets := make(chan ticket) // unbuffered: a ticket is handed over only to an idle worker
	var stopped atomic.Bool
	ends := make([]time.Time, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			for t := range tickets {
				if stopped.Load() {
					continue
				}
				began := time.Now()
				o := op(ctx, w, t.seq)
				end := time.Now()
				if o.Stop {
					stopped.Store(true)
					continue
				}
				if ctx.Err() != nil && o.Kind == "canceled" {
					continue
				}
				w.stats.Add(o, spec.Op, end.Sub(t.sched))
				w.stats.addLag(began.Sub(t.sched))
				live.add(o)
				ends[i] = end
			}
		})
	}

	var backlog int64
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var deadlineC <-chan time.Time
	if spec.Duration > 0 {
		dl := time.NewTimer(spec.Duration)
		defer dl.Stop()
		deadlineC = dl.C
	}
dispatch:
	for i := int64(0); i < total && !stopped.Load(); i++ {
		sched := schedAt(i)
		if d := time.Until(sched); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break dispatch
			}
		}
		select {
		case tickets <- ticket{seq: seq.Add(1) - 1, sched: sched}:
		case <-deadlineC:
			backlog = total - i
			break dispatch
		case <-ctx.Done():
			break dispatch
		}
	}
	timer.Stop()
	close(tickets)
	wg.Wait()
	r := LoopResult{Start: start, End: start, Backlog: backlog, Stopped: stopped.Load()}
	for _, e := range ends {
		if e.After(r.End) {
			r.End = e
		}
	}
	return r
}
