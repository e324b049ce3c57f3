package distro

import (
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

func tk(name string, ip string, at time.Time) *task {
	return &task{key: key0(name), iks: map[model.InstanceKey]struct{}{{IP: ip, Port: 1, Cluster: "DEFAULT"}: {}}, deadline: at, since: at}
}

func key0(name string) model.ServiceKey {
	return model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name}
}

func TestTaskQueueMergeKeepsFirstDeadline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := newTaskQueue(10)
	q.add(tk("a", "1.1.1.1", t0.Add(20*time.Millisecond)))
	q.add(tk("a", "1.1.1.2", t0.Add(40*time.Millisecond)))
	q.add(tk("b", "1.1.1.3", t0.Add(30*time.Millisecond)))
	if q.len() != 2 {
		t.Fatalf("len = %d, want 2 (tasks merge by key)", q.len())
	}
	if got := q.popDue(t0.Add(19*time.Millisecond), 10); len(got) != 0 {
		t.Fatalf("popped %d before any deadline", len(got))
	}
	got := q.popDue(t0.Add(25*time.Millisecond), 10)
	if len(got) != 1 || got[0].key.Name != "a" || len(got[0].iks) != 2 {
		t.Fatalf("at 25ms want merged task a with 2 instances, got %+v", got)
	}
	if got := q.popDue(t0.Add(time.Second), 10); len(got) != 1 || got[0].key.Name != "b" {
		t.Fatalf("want b, got %+v", got)
	}
}

func TestTaskQueueEarlierDeadlineWins(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := newTaskQueue(10)
	q.add(tk("a", "1.1.1.1", t0.Add(time.Second)))      // a retry far out
	q.add(tk("a", "1.1.1.2", t0.Add(time.Millisecond))) // a fresh change
	if got := q.popDue(t0.Add(2*time.Millisecond), 10); len(got) != 1 {
		t.Fatal("a new change must not wait for the old retry deadline")
	}
}

func TestTaskQueueBoundedAndAll(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := newTaskQueue(2)
	for _, n := range []string{"a", "b", "c"} {
		q.add(tk(n, "1.1.1.1", t0))
	}
	if q.len() != 2 || q.dropped != 1 {
		t.Fatalf("len %d dropped %d, want 2 and 1", q.len(), q.dropped)
	}
	// A task already queued still merges when the queue is full.
	if !q.add(tk("a", "1.1.1.9", t0)) {
		t.Fatal("merge into an existing key refused on a full queue")
	}
	big := &task{key: key0("a"), all: true, deadline: t0, since: t0}
	q.add(big)
	got := q.popDue(t0, 10)
	for _, x := range got {
		if x.key.Name == "a" && (!x.all || x.instanceKeys() != nil) {
			t.Fatal("merging an all-records task must send all records")
		}
	}
}
