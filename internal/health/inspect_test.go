package health

import (
	"testing"
	"time"
)

func TestLastBeat(t *testing.T) {
	tr := New(noCap(), t0, tick)
	r := ref(1)
	if at, ok := tr.LastBeat(r); ok || !at.IsZero() {
		t.Fatalf("untracked ref: %v, %v", at, ok)
	}
	tr.Grace(r, instWith(nil), t0)
	if at, ok := tr.LastBeat(r); !ok || !at.IsZero() {
		t.Fatalf("after a grace period only: %v, %v; want tracked with no beat", at, ok)
	}
	tr.Beat(r, instWith(nil), t0.Add(2*time.Second))
	tr.Grace(r, instWith(nil), t0.Add(3*time.Second))
	if at, ok := tr.LastBeat(r); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("LastBeat = %v, %v; want the real beat at +2s", at, ok)
	}
	tr.Untrack(r)
	if _, ok := tr.LastBeat(r); ok {
		t.Fatal("untracked ref still reported")
	}
}
