package store

import (
	"github.com/distro-registry/distro/internal/model"
	"testing"
	"time"
)

func annotateLocal(t *testing.T, s *Store, k string, ip string, kind Kind) *Record {
	t.Helper()
	var r *Record
	_ = s.Update(svcKey(k), func(tx *Tx) error { r = tx.AnnotateLocal(ikey(ip, 80), kind); return nil })
	if r == nil {
		t.Fatalf("AnnotateLocal(%s, %s) did nothing", ip, kind)
	}
	return r
}

// A local-only annotation shows locally, is served to peers as the version
// it annotates, keeps the digest, and is never collected; Publish makes it
// replicated, Revert drops it.
func TestAnnotateLocal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		settle  func(tx *Tx) bool
		wantPub bool
	}{
		{"publish", func(tx *Tx) bool { return tx.Publish(ikey("10.0.0.1", 80)) }, true},
		{"revert", func(tx *Tx) bool { return tx.Revert(ikey("10.0.0.1", 80)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore("n1")
			k := svcKey("a")
			live := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
			digest := s.Digest(k)
			var evs []Event
			s.OnChange(func(ev Event) { evs = append(evs, ev) })
			annotateLocal(t, s.Store, "a", "10.0.0.1", KindUnhealthy)
			annotateLocal(t, s.Store, "a", "10.0.0.1", KindExpired)
			if v := s.View(k); v != nil {
				t.Fatalf("local-only expiry still listed: %+v", v.Instances)
			}
			if got := get(s.Store, k, ikey("10.0.0.1", 80)); got.Kind != KindExpired {
				t.Fatalf("Records shows %s, want the local view", got.Kind)
			}
			recs, _ := s.PeerRecords(k, nil)
			if len(recs) != 1 || recs[0].Compare(live) != 0 || recs[0].Suspected != KindExpired {
				t.Fatalf("peers served %+v, want the live version, marked suspected", recs)
			}
			if s.Digest(k) != digest {
				t.Fatal("local-only annotation changed the digest")
			}
			if len(evs) != 2 || !evs[0].LocalOnly || !evs[1].LocalOnly {
				t.Fatalf("events %+v, want two local-only ones", evs)
			}
			s.advance(time.Hour)
			if n := s.GC(time.Minute); n != 0 {
				t.Fatalf("GC collected %d local-only records", n)
			}
			evs = nil
			var ok bool
			_ = s.Update(k, func(tx *Tx) error { ok = tc.settle(tx); return nil })
			if !ok || len(evs) != 1 || evs[0].LocalOnly == tc.wantPub {
				t.Fatalf("settle = %v, events %+v", ok, evs)
			}
			recs, _ = s.PeerRecords(k, nil)
			if tc.wantPub {
				if recs[0].Kind != KindExpired || s.View(k) != nil || s.Digest(k) == digest {
					t.Fatalf("published: peers get %s, digest changed %v", recs[0].Kind, s.Digest(k) != digest)
				}
			} else if recs[0] != live || s.View(k) == nil || s.Digest(k) != digest {
				t.Fatalf("reverted: peers get %+v, listed %v", recs[0], s.View(k) != nil)
			}
			// Settled: nothing left to settle.
			_ = s.Update(k, func(tx *Tx) error {
				ok = tx.Publish(ikey("10.0.0.1", 80)) || tx.Revert(ikey("10.0.0.1", 80))
				return nil
			})
			if ok {
				t.Fatal("a settled annotation settled again")
			}
		})
	}
}

// Merging the annotated version itself makes a local-only annotation
// replicated (the cluster agrees); merging a newer replicated version below
// it updates what peers are served; a newer version replaces it.
func TestMergeUnderLocalAnnotation(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("a")
	live := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	annotateLocal(t, s.Store, "a", "10.0.0.1", KindExpired)
	unhealthy := *live
	unhealthy.Kind = KindUnhealthy
	s.Merge(k, []*Record{&unhealthy}, nil, time.Minute)
	if recs, _ := s.PeerRecords(k, nil); recs[0].Kind != KindUnhealthy {
		t.Fatalf("shadow not updated: peers get %s", recs[0].Kind)
	}
	expired := *live
	expired.Kind = KindExpired
	s.Merge(k, []*Record{&expired}, nil, time.Minute)
	var lo *Record
	_ = s.Update(k, func(tx *Tx) error { lo = tx.LocalOnly(ikey("10.0.0.1", 80)); return nil })
	if recs, _ := s.PeerRecords(k, nil); lo != nil || recs[0].Kind != KindExpired {
		t.Fatalf("after merging the same expiry: local-only %v, peers get %s", lo, recs[0].Kind)
	}

	// A newer version replaces a local-only annotation.
	s2 := newTestStore("n1")
	put(t, s2.Store, k, inst("10.0.0.1", 80), KindLive)
	annotateLocal(t, s2.Store, "a", "10.0.0.1", KindExpired)
	newer := *live
	newer.Stamp += 10
	newer.Origin = "n2"
	s2.Merge(k, []*Record{&newer}, nil, time.Minute)
	if v := s2.View(k); v == nil || len(v.Instances) != 1 {
		t.Fatal("a newer version did not replace the local-only expiry")
	}
}

// The vouch check answers a remote timeout with a renewal in the same
// critical section and reports the renewal as a local change.
func TestMergeVouch(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("a")
	live := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	asked := 0
	s.SetVouch(func(_ model.ServiceKey, r *Record) (Kind, bool) {
		asked++
		return KindLive, r.Kind == KindExpired
	})
	var evs []Event
	s.OnChange(func(ev Event) { evs = append(evs, ev) })
	expired := *live
	expired.Kind = KindExpired
	if n := s.Merge(k, []*Record{&expired}, nil, time.Minute); n != 1 {
		t.Fatalf("merge changed %d", n)
	}
	r := get(s.Store, k, ikey("10.0.0.1", 80))
	if r.Kind != KindLive || r.Stamp != live.Stamp+1 || r.Origin != "n1" {
		t.Fatalf("after a vouched expiry: %+v", r)
	}
	if len(evs) != 1 || evs[0].Remote || !evs[0].Renewal {
		t.Fatalf("events %+v, want one local renewal", evs)
	}
	// Deletions are never vouched against.
	tomb := *r
	tomb.Stamp, tomb.Kind = r.Stamp+5, KindDeleted
	asked = 0
	s.Merge(k, []*Record{&tomb}, nil, time.Minute)
	if asked != 0 || s.View(k) != nil {
		t.Fatalf("a deletion was vouched against (asked %d)", asked)
	}
}

// A version a peer serves as suspected (it hides it under an unconfirmed
// timeout) stays hidden here if this node did not show the instance and
// the suspect check agrees; it is installed normally over a version this
// node shows, or when the check refuses.
func TestMergeSuspected(t *testing.T) {
	for _, tc := range []struct {
		name       string
		shown      bool // this node shows the instance before the merge
		agree      bool
		wantHidden bool
	}{
		{"hidden here, no evidence", false, true, true},
		{"hidden here, evidence", false, false, false},
		{"shown here", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore("n1")
			k := svcKey("a")
			live := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
			if !tc.shown {
				_ = s.Update(k, func(tx *Tx) error { tx.Annotate(ikey("10.0.0.1", 80), KindExpired); return nil })
			}
			asked := 0
			s.SetSuspect(func(model.ServiceKey, *Record) bool { asked++; return tc.agree })
			newer := *live
			newer.Stamp, newer.Origin, newer.Suspected = live.Stamp+1, "n2", KindExpired
			s.Merge(k, []*Record{&newer}, nil, time.Minute)
			hidden := s.View(k) == nil
			if hidden != tc.wantHidden {
				t.Fatalf("hidden = %v, want %v (asked %d)", hidden, tc.wantHidden, asked)
			}
			recs, _ := s.PeerRecords(k, nil)
			if recs[0].Stamp != newer.Stamp || (recs[0].Suspected != 0) != tc.wantHidden {
				t.Fatalf("peers served %+v", recs[0])
			}
			if r := get(s.Store, k, ikey("10.0.0.1", 80)); !tc.wantHidden && r.Suspected != 0 {
				t.Fatal("a stored version kept the sender's suspicion")
			}
		})
	}
}
