package udppush

import (
	"testing"
	"time"
)

func TestSubscribers(t *testing.T) {
	h := newHarness(t, Config{MergeWindow: 10 * time.Millisecond})
	c1, c2 := newClient(t), newClient(t)
	h.subscribe(c1, "", goAgent)
	h.advance(time.Second)
	h.subscribe(c2, "a,b", goAgent)
	h.subscribe(c1, "a", goAgent)
	got := h.p.Subscribers(demoKey)
	if len(got) != 3 {
		t.Fatalf("subscribers = %+v; want 3", got)
	}
	for i := 1; i < len(got); i++ {
		if c := got[i-1].Addr.Compare(got[i].Addr); c > 0 || (c == 0 && got[i-1].Clusters > got[i].Clusters) {
			t.Fatalf("not sorted: %+v", got)
		}
	}
	for _, s := range got {
		want := t0.Add(time.Second)
		if s.Addr == c1.addr() && s.Clusters == "" {
			want = t0
		}
		if !s.LastSeen.Equal(want) || s.Pending {
			t.Fatalf("subscriber %+v: want last seen %v, nothing pending", s, want)
		}
	}
	h.put("10.0.0.1", 80, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	for _, s := range h.p.Subscribers(demoKey) {
		if !s.Pending {
			t.Fatalf("no push pending for %+v after a change", s)
		}
	}
}
