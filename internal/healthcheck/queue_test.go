package healthcheck

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func tgt(port int) *target {
	return &target{ik: model.InstanceKey{IP: "127.0.0.1", Port: port, Cluster: "DEFAULT"}, idx: -1}
}

func ports(ts []*target) []int {
	out := make([]int, len(ts))
	for i, t := range ts {
		out[i] = t.ik.Port
	}
	return out
}

func TestQueue(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		op   string // schedule, remove, pop
		port int
		ms   int // due (schedule) or now (pop)
		max  int
		want []int
		// anyOrder: the popped targets had equal due times.
		anyOrder bool
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"pops only what is due, earliest first", []step{
			{op: "schedule", port: 1, ms: 30}, {op: "schedule", port: 2, ms: 10}, {op: "schedule", port: 3, ms: 20},
			{op: "pop", ms: 5, max: 10, want: []int{}},
			{op: "pop", ms: 20, max: 10, want: []int{2, 3}},
			{op: "pop", ms: 100, max: 10, want: []int{1}},
			{op: "pop", ms: 1000, max: 10, want: []int{}},
		}},
		{"max bounds a pop; the rest stay due", []step{
			{op: "schedule", port: 1, ms: 1}, {op: "schedule", port: 2, ms: 2}, {op: "schedule", port: 3, ms: 3},
			{op: "pop", ms: 10, max: 2, want: []int{1, 2}},
			{op: "pop", ms: 10, max: 2, want: []int{3}},
		}},
		{"rescheduling moves a queued target", []step{
			{op: "schedule", port: 1, ms: 10}, {op: "schedule", port: 2, ms: 20},
			{op: "schedule", port: 1, ms: 30},
			{op: "pop", ms: 25, max: 10, want: []int{2}},
			{op: "schedule", port: 2, ms: 5},
			{op: "pop", ms: 30, max: 10, want: []int{2, 1}},
		}},
		{"remove takes a target out; removing twice is harmless", []step{
			{op: "schedule", port: 1, ms: 10}, {op: "schedule", port: 2, ms: 20}, {op: "schedule", port: 3, ms: 30},
			{op: "remove", port: 2}, {op: "remove", port: 2},
			{op: "pop", ms: 100, max: 10, want: []int{1, 3}},
		}},
		{"equal due times all pop", []step{
			{op: "schedule", port: 1, ms: 10}, {op: "schedule", port: 2, ms: 10},
			{op: "pop", ms: 10, max: 10, want: []int{1, 2}, anyOrder: true},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var q queue
			ts := map[int]*target{}
			get := func(p int) *target {
				if ts[p] == nil {
					ts[p] = tgt(p)
				}
				return ts[p]
			}
			for i, s := range tt.steps {
				switch s.op {
				case "schedule":
					q.schedule(get(s.port), at(s.ms))
				case "remove":
					q.remove(get(s.port))
				case "pop":
					got := ports(q.popDue(at(s.ms), s.max, nil))
					want := slices.Clone(s.want)
					if s.anyOrder {
						slices.Sort(got)
						slices.Sort(want)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: popped %v, want %v", i, got, s.want)
					}
				}
				for j, e := range q {
					if e.idx != j {
						t.Fatalf("step %d: index of %d is %d at position %d", i, e.ik.Port, e.idx, j)
					}
				}
			}
		})
	}
}

// TestQueueOrderRandom checks the heap against a sorted reference under
// random schedules, reschedules and removals.
func TestQueueOrderRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q queue
	ts := make([]*target, 200)
	for i := range ts {
		ts[i] = tgt(i + 1)
	}
	due := map[*target]time.Time{}
	for i := 0; i < 5000; i++ {
		x := ts[r.IntN(len(ts))]
		if r.IntN(4) == 0 {
			q.remove(x)
			delete(due, x)
			continue
		}
		d := t0.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		q.schedule(x, d)
		due[x] = d
	}
	now := t0.Add(500 * time.Millisecond)
	var want []string
	for x, d := range due {
		if !d.After(now) {
			want = append(want, fmt.Sprint(x.ik.Port))
		}
	}
	got := q.popDue(now, len(ts), nil)
	for i := 1; i < len(got); i++ {
		if got[i].due.Before(got[i-1].due) {
			t.Fatalf("popped out of order at %d", i)
		}
	}
	var names []string
	for _, x := range got {
		names = append(names, fmt.Sprint(x.ik.Port))
	}
	slices.Sort(want)
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("popped %d due targets, want %d", len(names), len(want))
	}
	if next, ok := q.next(); ok && !next.After(now) {
		t.Fatalf("a due target was left behind: %v", next)
	}
}
