package store

import (
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// TestPersistentPart: the CP part is listed with the ephemeral records,
// wins an identity collision, is invisible to Distro (records, digests),
// emits Persistent events, and an emptied service is kept for the
// tombstone retention.
func TestPersistentPart(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("db")
	var evs []Event
	s.OnChange(func(ev Event) { evs = append(evs, ev) })
	put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	digest := s.Digest(k)
	db := inst("10.0.0.2", 3306)
	db.Ephemeral = false
	clash := inst("10.0.0.1", 80)
	clash.Ephemeral, clash.Weight = false, 7
	if err := s.UpdatePersistent(k, func(p *PTx) error {
		p.Put(db)
		p.Put(clash)
		p.SetSettings(&model.ServiceMeta{ProtectThreshold: 0.4})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; !last.Persistent || !last.Remote || len(last.Changed) != 2 || !last.MetaChanged {
		t.Fatalf("persistent event %+v", last)
	}
	v := s.View(k)
	if len(v.Instances) != 2 || v.Meta == nil || v.Meta.ProtectThreshold != 0.4 {
		t.Fatalf("view %+v", v)
	}
	for _, in := range v.Instances {
		if in.IP == "10.0.0.1" && (in.Ephemeral || in.Weight != 7) {
			t.Fatalf("the ephemeral record won the identity collision: %+v", in)
		}
	}
	if recs, meta := s.Records(k, nil); len(recs) != 1 || meta != nil || s.Digest(k) != digest {
		t.Fatalf("Distro sees the persistent part: %d records, meta %v, digest changed %v", len(recs), meta, s.Digest(k) != digest)
	}
	if s.PersistentInstance(k, db.Key()) != db || s.EphemeralInstance(k, db.Key()) != nil {
		t.Fatal("lookups")
	}
	n := 0
	s.RangePersistent(func(ps PersistentService) bool { n += len(ps.Instances); return true })
	if n != 2 {
		t.Fatalf("RangePersistent saw %d instances", n)
	}
	// Emptied: still listed (empty) until the retention passes.
	s.Forget(k, []model.InstanceKey{ikey("10.0.0.1", 80)})
	if keys := s.ClearPersistent(); len(keys) != 1 {
		t.Fatalf("ClearPersistent changed %v", keys)
	}
	if s.View(k) != nil || s.ListView(k) == nil {
		t.Fatal("an emptied service must have a list view but no view")
	}
	s.advance(time.Minute)
	s.GC(30 * time.Second)
	if s.ListView(k) != nil {
		t.Fatal("an emptied service outlived the retention")
	}
	if svcs, ins := s.Counts(); svcs != 0 || ins != 0 {
		t.Fatalf("counts %d %d", svcs, ins)
	}
}
