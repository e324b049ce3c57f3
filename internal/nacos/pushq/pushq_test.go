package pushq

import (
	"slices"
	"testing"
	"time"
)

func TestQueueKeepsFirstDeadlineAndOrder(t *testing.T) {
	t0 := time.Unix(100, 0)
	q := New[string]()
	if !q.Add("a", t0.Add(20*time.Millisecond)) || !q.Add("b", t0.Add(30*time.Millisecond)) {
		t.Fatal("new keys refused")
	}
	if q.Add("a", t0.Add(90*time.Millisecond)) {
		t.Fatal("a queued key was added again (its first deadline must stand)")
	}
	if got := q.PopDue(t0.Add(10*time.Millisecond), nil); len(got) != 0 {
		t.Fatalf("popped %v before any deadline", got)
	}
	if got := q.PopDue(t0.Add(25*time.Millisecond), nil); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("at 25ms got %v, want [a]", got)
	}
	if !q.Add("a", t0.Add(50*time.Millisecond)) {
		t.Fatal("a popped key could not be queued again")
	}
	if got := q.PopDue(t0.Add(time.Second), nil); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("got %v, want [b a]", got)
	}
	if q.Len() != 0 {
		t.Fatalf("len %d after draining", q.Len())
	}
}

func TestQueueCompacts(t *testing.T) {
	t0 := time.Unix(100, 0)
	q := New[int]()
	for i := 0; i < 1000; i++ {
		q.Add(i, t0.Add(time.Duration(i)*time.Millisecond))
	}
	got := q.PopDue(t0.Add(700*time.Millisecond), nil)
	if len(got) != 701 || q.Len() != 299 {
		t.Fatalf("popped %d, %d left", len(got), q.Len())
	}
	if cap(q.items) > 1024 || len(q.items) != 299 {
		t.Fatalf("not compacted: len %d", len(q.items))
	}
}

func TestQueueNext(t *testing.T) {
	t0 := time.Unix(100, 0)
	q := New[string]()
	if _, ok := q.Next(); ok {
		t.Fatal("an empty queue has a next deadline")
	}
	q.Add("a", t0.Add(20*time.Millisecond))
	q.Add("b", t0.Add(30*time.Millisecond))
	if d, ok := q.Next(); !ok || !d.Equal(t0.Add(20*time.Millisecond)) {
		t.Fatalf("next = %v %v, want a's deadline", d, ok)
	}
	q.PopDue(t0.Add(25*time.Millisecond), nil)
	if d, ok := q.Next(); !ok || !d.Equal(t0.Add(30*time.Millisecond)) {
		t.Fatalf("next = %v %v after popping a, want b's deadline", d, ok)
	}
	q.PopDue(t0.Add(time.Second), nil)
	if _, ok := q.Next(); ok {
		t.Fatal("a drained queue has a next deadline")
	}
}
