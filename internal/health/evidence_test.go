package health

import (
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

func short() *model.Instance {
	return instWith(map[string]string{model.MetaHeartBeatTimeout: "3000", model.MetaIPDeleteTimeout: "6000"})
}

// Evidence is the age of the last real beat, within a window; grace
// periods are not evidence.
func TestEvidence(t *testing.T) {
	tr := New(noCap(), t0, tick)
	r := ref(1)
	tr.Grace(r, short(), t0)
	if _, ok := tr.Evidence(r, t0, time.Hour); ok {
		t.Fatal("a grace period counted as evidence")
	}
	tr.Beat(r, short(), t0.Add(time.Second))
	if age, ok := tr.Evidence(r, t0.Add(3*time.Second), 6*time.Second); !ok || age != 2*time.Second {
		t.Fatalf("Evidence = %v %v", age, ok)
	}
	if _, ok := tr.Evidence(r, t0.Add(3*time.Second), 2*time.Second); ok {
		t.Fatal("evidence as old as the window counted")
	}
}

// A witnessed beat (the node does not own the instance) is evidence but
// never makes anything due, and is dropped a delete timeout after the
// beat; so is the evidence a node keeps when it loses a key.
func TestWitnessAndDisown(t *testing.T) {
	tr := New(noCap(), t0, tick)
	w, o := ref(1), ref(2)
	tr.Witness(w, short(), t0)
	tr.Beat(o, short(), t0)
	if tr.Len() != 1 {
		t.Fatalf("Len = %d, want only the owned instance", tr.Len())
	}
	var now time.Duration
	if ev := scanUntil(tr, &now, time.Second); len(ev) != 0 {
		t.Fatalf("due: %+v", ev)
	}
	tr.Disown(o, t0.Add(time.Second))
	if tr.Len() != 0 {
		t.Fatalf("Len = %d after Disown", tr.Len())
	}
	if ev := scanUntil(tr, &now, 5750*time.Millisecond); len(ev) != 0 {
		t.Fatalf("unowned instances became due: %+v", ev)
	}
	for _, r := range []Ref{w, o} {
		if _, ok := tr.Evidence(r, t0.Add(5750*time.Millisecond), time.Hour); !ok {
			t.Fatalf("%v: evidence dropped before a delete timeout", r)
		}
	}
	scanUntil(tr, &now, 6*time.Second)
	for _, r := range []Ref{w, o} {
		if _, ok := tr.Evidence(r, t0.Add(6*time.Second), time.Hour); ok {
			t.Fatalf("%v: evidence kept past a delete timeout after the beat", r)
		}
	}
	// Disowning an instance with no real beat drops it at once.
	tr.Grace(o, short(), t0.Add(6*time.Second))
	tr.Disown(o, t0.Add(6*time.Second))
	if _, _, ok := tr.Timeouts(o); ok {
		t.Fatal("an instance without evidence kept after Disown")
	}
	// Grace on a witnessed instance makes it owned and keeps the evidence.
	tr.Witness(w, short(), t0.Add(6*time.Second))
	tr.Grace(w, short(), t0.Add(7*time.Second))
	if age, ok := tr.Evidence(w, t0.Add(7*time.Second), time.Hour); tr.Len() != 1 || !ok || age != time.Second {
		t.Fatalf("after Grace: Len %d, evidence %v %v", tr.Len(), age, ok)
	}
}

// Revive restarts an owned instance's deadlines from a peer's beat age ago.
func TestRevive(t *testing.T) {
	tr := New(noCap(), t0, tick)
	r := ref(1)
	tr.Beat(r, short(), t0)
	var now time.Duration
	ev := scanUntil(tr, &now, 6*time.Second)
	if len(ev) != 2 || ev[1].action != Expire {
		t.Fatalf("due %+v", ev)
	}
	// A member heard a beat 1 s ago: unhealthy again 2 s from now, expired 5 s from now.
	tr.Revive(r, 3*time.Second, 6*time.Second, t0.Add(now), time.Second)
	ev = scanUntil(tr, &now, 11*time.Second)
	if len(ev) != 2 || ev[0].at != 8*time.Second || ev[0].action != MarkUnhealthy || ev[1].at != 11*time.Second || ev[1].action != Expire {
		t.Fatalf("after Revive: %+v", ev)
	}
}
