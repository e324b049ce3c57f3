package store

import "testing"

func TestStoreRevision(t *testing.T) {
	s := newTestStore("n1")
	r0 := s.Revision()
	put(t, s.Store, svcKey("a"), inst("10.0.0.1", 1), KindLive)
	r1 := s.Revision()
	if r1 <= r0 {
		t.Fatalf("revision %d after a write, %d before", r1, r0)
	}
	if v := s.View(svcKey("a")); v.Revision != r1 {
		t.Fatalf("store revision %d, the written service's %d", r1, v.Revision)
	}
	// A write that changes nothing commits nothing.
	_ = s.Update(svcKey("a"), func(*Tx) error { return nil })
	if r := s.Revision(); r != r1 {
		t.Fatalf("an empty transaction moved the revision to %d", r)
	}
	put(t, s.Store, svcKey("b"), inst("10.0.0.1", 1), KindLive)
	if r := s.Revision(); r <= r1 {
		t.Fatalf("revision %d after a write to another service", r)
	}
}
