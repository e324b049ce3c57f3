package healthcheck

import (
	"container/heap"
	"time"
)

// queue is an indexed min-heap of targets ordered by due time: scheduling,
// rescheduling and removing one target is O(log n), and popDue touches only
// the targets that are due. It is not safe for concurrent use (the Checker
// guards it with its mutex).
type queue []*target

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx = i
	q[j].idx = j
}

// Push and Pop implement heap.Interface; use schedule, remove and popDue.
func (q *queue) Push(x any) { t := x.(*target); t.idx = len(*q); *q = append(*q, t) }

// Pop implements heap.Interface.
func (q *queue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	t.idx = -1
	return t
}

// schedule sets t's due time, queueing it if it is not queued.
func (q *queue) schedule(t *target, at time.Time) {
	t.due = at
	if t.idx >= 0 {
		heap.Fix(q, t.idx)
		return
	}
	heap.Push(q, t)
}

// remove takes t out of the queue if it is queued.
func (q *queue) remove(t *target) {
	if t.idx >= 0 {
		heap.Remove(q, t.idx)
	}
}

// popDue appends to dst, and removes from the queue, up to max targets due
// at or before now, earliest first.
func (q *queue) popDue(now time.Time, max int, dst []*target) []*target {
	for n := 0; n < max && len(*q) > 0 && !(*q)[0].due.After(now); n++ {
		dst = append(dst, heap.Pop(q).(*target))
	}
	return dst
}

// next returns the earliest due time.
func (q queue) next() (time.Time, bool) {
	if len(q) == 0 {
		return time.Time{}, false
	}
	return q[0].due, true
}
