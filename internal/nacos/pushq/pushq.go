// Package pushq is the merge-window queue both push paths (v1 UDP and v2
// gRPC) use: services that changed wait MergeWindow after their first
// change, later changes join the wait without moving it, and due services
// come out in deadline order. It holds no lock; its owner guards it.
package pushq

import "time"

type item[K comparable] struct {
	key K
	due time.Time
}

// Queue is a FIFO of keys with deadlines. Since every deadline is "first
// change + window", appending keeps it in deadline order, so no heap is
// needed. Not safe for concurrent use.
type Queue[K comparable] struct {
	items  []item[K]
	head   int
	queued map[K]struct{}
}

// New returns an empty queue.
func New[K comparable]() *Queue[K] { return &Queue[K]{queued: make(map[K]struct{})} }

// Add queues k with deadline due unless k is already queued (its first
// deadline stands). It reports whether k was added.
func (q *Queue[K]) Add(k K, due time.Time) bool {
	if _, ok := q.queued[k]; ok {
		return false
	}
	q.queued[k] = struct{}{}
	q.items = append(q.items, item[K]{key: k, due: due})
	return true
}

// PopDue appends to dst every key whose deadline is not after now, removes
// them, and returns dst.
func (q *Queue[K]) PopDue(now time.Time, dst []K) []K {
	var zero item[K]
	for q.head < len(q.items) && !q.items[q.head].due.After(now) {
		k := q.items[q.head].key
		q.items[q.head] = zero
		q.head++
		delete(q.queued, k)
		dst = append(dst, k)
	}
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head > 64 && q.head > len(q.items)/2:
		// Compact once the consumed prefix dominates, so memory follows
		// the backlog rather than the history.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return dst
}

// Len returns the number of queued keys.
func (q *Queue[K]) Len() int { return len(q.items) - q.head }

// Next returns the earliest deadline, if any key is queued (so that the
// owner can sleep until then instead of polling).
func (q *Queue[K]) Next() (time.Time, bool) {
	if q.head == len(q.items) {
		return time.Time{}, false
	}
	return q.items[q.head].due, true
}
