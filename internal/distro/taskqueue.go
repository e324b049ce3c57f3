package distro

import (
	"container/heap"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// maxTaskInstances bounds the instance set of one task; beyond it the task
// sends the whole key, which is cheaper than tracking a huge set.
const maxTaskInstances = 256

// task is the pending sync of one key to one peer. Tasks for the same key
// merge: the instance sets are joined and the first deadline is kept, so a
// stream of changes cannot postpone a send (Nacos DistroDelayTask.merge).
type task struct {
	key model.ServiceKey
	// all means every record of the key; otherwise only instances in iks.
	all      bool
	iks      map[model.InstanceKey]struct{}
	meta     bool
	deadline time.Time
	// since is when the oldest change in the task was made; sync latency
	// is measured from it.
	since time.Time
	idx   int
}

func (t *task) merge(o *task) {
	if o.all || t.all {
		t.all, t.iks = true, nil
	} else {
		for k := range o.iks {
			t.iks[k] = struct{}{}
		}
		if len(t.iks) > maxTaskInstances {
			t.all, t.iks = true, nil
		}
	}
	t.meta = t.meta || o.meta
	if o.deadline.Before(t.deadline) {
		t.deadline = o.deadline
	}
	if o.since.Before(t.since) {
		t.since = o.since
	}
}

// instanceKeys returns the instance keys to send, or nil for all.
func (t *task) instanceKeys() []model.InstanceKey {
	if t.all {
		return nil
	}
	out := make([]model.InstanceKey, 0, len(t.iks))
	for k := range t.iks {
		out = append(out, k)
	}
	return out
}

type taskHeap []*task

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *taskHeap) Push(x any) { t := x.(*task); t.idx = len(*h); *h = append(*h, t) }
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

// taskQueue is one peer's pending sync tasks: at most one per key, ordered
// by deadline, bounded in size. It is a plain data structure: the caller
// passes time in and holds any lock.
type taskQueue struct {
	byKey   map[model.ServiceKey]*task
	h       taskHeap
	limit   int
	dropped uint64
}

func newTaskQueue(limit int) *taskQueue {
	return &taskQueue{byKey: make(map[model.ServiceKey]*task), limit: limit}
}

// add merges t into the queue. It returns false, and counts a drop, when the
// queue is full and t is for a new key: anti-entropy repairs what is dropped.
func (q *taskQueue) add(t *task) bool {
	if cur := q.byKey[t.key]; cur != nil {
		before := cur.deadline
		cur.merge(t)
		if !cur.deadline.Equal(before) {
			heap.Fix(&q.h, cur.idx)
		}
		return true
	}
	if q.limit > 0 && len(q.byKey) >= q.limit {
		q.dropped++
		return false
	}
	q.byKey[t.key] = t
	heap.Push(&q.h, t)
	return true
}

// popDue removes and returns up to max tasks whose deadline is not after now.
func (q *taskQueue) popDue(now time.Time, max int) []*task {
	var out []*task
	for len(q.h) > 0 && len(out) < max && !q.h[0].deadline.After(now) {
		t := heap.Pop(&q.h).(*task)
		delete(q.byKey, t.key)
		out = append(out, t)
	}
	return out
}

// next returns the earliest deadline, if any.
func (q *taskQueue) next() (time.Time, bool) {
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].deadline, true
}

func (q *taskQueue) len() int { return len(q.byKey) }

// clear drops every task (the peer left the cluster).
func (q *taskQueue) clear() {
	q.byKey = make(map[model.ServiceKey]*task)
	q.h = nil
}
