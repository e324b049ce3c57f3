package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
)

// testStore is a store whose wall clock (for HLC stamps, lastRefTime and
// tombstone ages) the test controls.
type testStore struct {
	*Store
	ms atomic.Int64
}

func newTestStore(self string) *testStore {
	ts := &testStore{}
	ts.ms.Store(1_700_000_000_000)
	ts.Store = New(self, hlc.New(func() time.Time { return time.UnixMilli(ts.ms.Load()) }))
	ts.wallMs = ts.ms.Load
	return ts
}

func (ts *testStore) advance(d time.Duration) { ts.ms.Add(d.Milliseconds()) }

func svcKey(name string) model.ServiceKey {
	return model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name}
}

func inst(ip string, port int) *model.Instance {
	return &model.Instance{IP: ip, Port: port, Cluster: "DEFAULT", Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}
}

func ikey(ip string, port int) model.InstanceKey {
	return model.InstanceKey{IP: ip, Port: port, Cluster: "DEFAULT"}
}

func put(t testing.TB, s *Store, k model.ServiceKey, in *model.Instance, kind Kind) *Record {
	t.Helper()
	var r *Record
	if err := s.Update(k, func(tx *Tx) error { r = tx.Put(in, kind, "", ""); return nil }); err != nil {
		t.Fatal(err)
	}
	return r
}

func get(s *Store, k model.ServiceKey, ik model.InstanceKey) *Record {
	recs, _ := s.Records(k, []model.InstanceKey{ik})
	if len(recs) == 0 {
		return nil
	}
	return recs[0]
}

func wantCounts(t *testing.T, s *Store, services, instances int64) {
	t.Helper()
	if gs, gi := s.Counts(); gs != services || gi != instances {
		t.Fatalf("Counts = (%d services, %d instances), want (%d, %d)", gs, gi, services, instances)
	}
}

func TestPutGetCounts(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("a")
	wantCounts(t, s.Store, 0, 0)

	r1 := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	if r1.Origin != "n1" || r1.Kind != KindLive || r1.Stamp == 0 {
		t.Fatalf("record %+v", r1)
	}
	wantCounts(t, s.Store, 1, 1)
	put(t, s.Store, k, inst("10.0.0.2", 80), KindLive)
	put(t, s.Store, svcKey("b"), inst("10.0.0.1", 80), KindLive)
	wantCounts(t, s.Store, 2, 3)

	// A new version of the same instance replaces the old one.
	r2 := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	if r2.Stamp <= r1.Stamp {
		t.Fatalf("new stamp %v not after %v", r2.Stamp, r1.Stamp)
	}
	wantCounts(t, s.Store, 2, 3)
	if got := get(s.Store, k, ikey("10.0.0.1", 80)); got != r2 {
		t.Fatalf("Records returned %+v, want the newest %+v", got, r2)
	}

	// Deleting keeps a tombstone that Tx.Get and Records still return.
	put(t, s.Store, k, inst("10.0.0.1", 80), KindDeleted)
	wantCounts(t, s.Store, 2, 2)
	if got := get(s.Store, k, ikey("10.0.0.1", 80)); got == nil || got.Kind != KindDeleted || got.Alive() {
		t.Fatalf("tombstone = %+v", got)
	}
	_ = s.Update(k, func(tx *Tx) error {
		if r := tx.Get(ikey("10.0.0.1", 80)); r == nil || r.Kind != KindDeleted {
			t.Errorf("Tx.Get tombstone = %+v", r)
		}
		if tx.Get(ikey("9.9.9.9", 1)) != nil {
			t.Error("Tx.Get of an unknown key is not nil")
		}
		if tx.LiveCount() != 1 {
			t.Errorf("LiveCount = %d", tx.LiveCount())
		}
		n := 0
		tx.Range(func(*Record) bool { n++; return true })
		if n != 2 {
			t.Errorf("Range saw %d records, want 2 (tombstone included)", n)
		}
		n = 0
		tx.Range(func(*Record) bool { n++; return false })
		if n != 1 {
			t.Errorf("Range did not stop: %d", n)
		}
		if tx.Key() != k {
			t.Errorf("Tx.Key = %v", tx.Key())
		}
		return nil
	})

	// The last instance going away removes the service from the count.
	put(t, s.Store, k, inst("10.0.0.2", 80), KindDeleted)
	wantCounts(t, s.Store, 1, 1)
	if s.View(k) != nil {
		t.Fatal("View of a service with only tombstones is not nil")
	}
}

func TestUpdateWithoutChanges(t *testing.T) {
	s := newTestStore("n1")
	events := 0
	s.OnChange(func(Event) { events++ })
	k := svcKey("a")
	errBoom := errors.New("boom")
	if err := s.Update(k, func(tx *Tx) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Fatalf("Update error = %v", err)
	}
	if err := s.Update(k, func(tx *Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Fatalf("%d events for no change", events)
	}
	n := 0
	s.RangeKeys(func(model.ServiceKey, uint64) bool { n++; return true })
	if n != 0 || s.View(k) != nil {
		t.Fatal("an Update without changes left a service behind")
	}
	wantCounts(t, s.Store, 0, 0)
}

func TestEvents(t *testing.T) {
	s := newTestStore("n1")
	var got []Event
	s.OnChange(func(ev Event) {
		// Subscribers run without a lock held: reading the store must not deadlock.
		if v := s.View(ev.Key); v != nil && v.Revision != ev.Revision {
			t.Errorf("View revision %d inside event %d", v.Revision, ev.Revision)
		}
		got = append(got, ev)
	})
	k := svcKey("a")
	r := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	_ = s.Update(k, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{ProtectThreshold: 0.5}, false); return nil })
	other := newTestStore("n2")
	r2 := put(t, other.Store, k, inst("10.0.0.2", 80), KindLive)
	s.Merge(k, []*Record{r2}, nil, time.Minute)
	if len(got) != 3 {
		t.Fatalf("%d events, want 3", len(got))
	}
	if len(got[0].Changed) != 1 || got[0].Changed[0] != r || got[0].MetaChanged || got[0].Remote {
		t.Errorf("event 0 = %+v", got[0])
	}
	if len(got[1].Changed) != 0 || !got[1].MetaChanged || got[1].Remote {
		t.Errorf("event 1 = %+v", got[1])
	}
	if len(got[2].Changed) != 1 || got[2].Changed[0] != r2 || !got[2].Remote {
		t.Errorf("event 2 = %+v", got[2])
	}
	// Merging the same record again changes nothing and emits nothing.
	if n := s.Merge(k, []*Record{r2}, nil, time.Minute); n != 0 || len(got) != 3 {
		t.Errorf("duplicate merge changed %d, events %d", n, len(got))
	}
}

func TestRevisionsAndLastRefTime(t *testing.T) {
	s := newTestStore("n1")
	var revs []uint64
	s.OnChange(func(ev Event) { revs = append(revs, ev.Revision) })
	keys := []model.ServiceKey{svcKey("a"), svcKey("b"), svcKey("c")}
	lastRef := map[model.ServiceKey]int64{}
	lastRev := map[model.ServiceKey]uint64{}
	// Many writes inside the same wall millisecond, and the wall clock
	// stepping backwards halfway through.
	for i := 0; i < 3000; i++ {
		if i == 1500 {
			s.advance(-10 * time.Second)
		}
		k := keys[i%len(keys)]
		put(t, s.Store, k, inst("10.0.0.1", 1+i%5), KindLive)
		v := s.View(k)
		if v.LastRefTime <= lastRef[k] {
			t.Fatalf("write %d: lastRefTime %d not after %d", i, v.LastRefTime, lastRef[k])
		}
		if v.Revision <= lastRev[k] {
			t.Fatalf("write %d: revision %d not after %d", i, v.Revision, lastRev[k])
		}
		lastRef[k], lastRev[k] = v.LastRefTime, v.Revision
	}
	for i := 1; i < len(revs); i++ {
		if revs[i] <= revs[i-1] {
			t.Fatalf("store revisions not strictly increasing: %d then %d", revs[i-1], revs[i])
		}
	}
}

func TestRevisionsConcurrent(t *testing.T) {
	s := newTestStore("n1")
	var mu sync.Mutex
	seen := map[uint64]bool{}
	perKey := map[model.ServiceKey]uint64{}
	s.OnChange(func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		if seen[ev.Revision] {
			t.Errorf("revision %d issued twice", ev.Revision)
		}
		seen[ev.Revision] = true
		// Events of one service are emitted outside the lock, so they may be
		// observed out of order; each revision is still unique.
		if ev.Revision > perKey[ev.Key] {
			perKey[ev.Key] = ev.Revision
		}
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := svcKey(fmt.Sprintf("s%d", (w+i)%7))
				ip := fmt.Sprintf("10.0.%d.%d", w, i%50)
				if err := s.Update(k, func(tx *Tx) error { tx.Put(inst(ip, 80), KindLive, "", ""); return nil }); err != nil {
					t.Error(err)
				}
				s.View(k)
			}
		}()
	}
	wg.Wait()
	if len(seen) != 8*500 {
		t.Fatalf("%d events, want %d", len(seen), 8*500)
	}
	total := int64(0)
	for i := range 7 {
		k := svcKey(fmt.Sprintf("s%d", i))
		v := s.View(k)
		total += int64(len(v.Instances))
		if v.Revision != perKey[k] {
			t.Errorf("%v: view revision %d, last event %d", k, v.Revision, perKey[k])
		}
	}
	wantCounts(t, s.Store, 7, total)
}

func TestAnnotate(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("a")
	live := put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	annotate := func(kind Kind) *Record {
		var r *Record
		_ = s.Update(k, func(tx *Tx) error { r = tx.Annotate(ikey("10.0.0.1", 80), kind); return nil })
		return r
	}
	u := annotate(KindUnhealthy)
	if u == nil || u.Kind != KindUnhealthy || u.Stamp != live.Stamp || u.Origin != live.Origin || u.Instance != live.Instance {
		t.Fatalf("unhealthy annotation = %+v, want stamp/origin/instance of %+v", u, live)
	}
	if live.Kind != KindLive {
		t.Fatal("Annotate modified the stored record in place")
	}
	if !u.Alive() || u.Healthy() {
		t.Fatalf("unhealthy record Alive=%v Healthy=%v", u.Alive(), u.Healthy())
	}
	wantCounts(t, s.Store, 1, 1)
	if annotate(KindUnhealthy) != nil || annotate(KindLive) != nil {
		t.Fatal("Annotate to the same or a lower kind changed the record")
	}
	e := annotate(KindExpired)
	if e == nil || e.Kind != KindExpired || e.Stamp != live.Stamp {
		t.Fatalf("expired annotation = %+v", e)
	}
	wantCounts(t, s.Store, 0, 0)
	if s.View(k) != nil {
		t.Fatal("expired instance still visible")
	}
	if annotate(KindDeleted) == nil {
		t.Fatal("Annotate Expired → Deleted refused")
	}
	var r *Record
	_ = s.Update(k, func(tx *Tx) error { r = tx.Annotate(ikey("1.1.1.1", 1), KindExpired); return nil })
	if r != nil {
		t.Fatal("Annotate of an absent instance returned a record")
	}
}

func TestView(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("a")
	if s.View(k) != nil {
		t.Fatal("View of an unknown service is not nil")
	}
	for _, in := range []*model.Instance{
		inst("10.0.0.2", 80), inst("10.0.0.1", 81), inst("10.0.0.1", 80),
		{IP: "10.0.0.1", Port: 80, Cluster: "A", Weight: 1, Healthy: true, Enabled: true},
		{IP: "10.0.0.3", Port: 80, Cluster: "DEFAULT", Weight: 1, Healthy: false, Enabled: true},
	} {
		put(t, s.Store, k, in, KindLive)
	}
	put(t, s.Store, k, inst("10.0.0.9", 1), KindDeleted)
	stored := get(s.Store, k, ikey("10.0.0.2", 80)).Instance
	_ = s.Update(k, func(tx *Tx) error { tx.Annotate(ikey("10.0.0.2", 80), KindUnhealthy); return nil })

	v := s.View(k)
	var got []string
	for _, in := range v.Instances {
		got = append(got, fmt.Sprintf("%s:%d:%s:%v", in.IP, in.Port, in.Cluster, in.Healthy))
	}
	want := []string{"10.0.0.1:80:A:true", "10.0.0.1:80:DEFAULT:true", "10.0.0.1:81:DEFAULT:true", "10.0.0.2:80:DEFAULT:false", "10.0.0.3:80:DEFAULT:false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("View instances\n got %v\nwant %v", got, want)
	}
	if !stored.Healthy {
		t.Fatal("the unhealthy annotation modified the shared stored instance")
	}
	if v.Meta != nil {
		t.Fatal("Meta set without explicit settings")
	}
	if s.View(k) != v {
		t.Fatal("View rebuilt without a change")
	}
	put(t, s.Store, k, inst("10.0.0.4", 80), KindLive)
	v2 := s.View(k)
	if v2 == v || v2.Revision <= v.Revision || len(v2.Instances) != 6 || len(v.Instances) != 5 {
		t.Fatal("View after a change is not a new snapshot, or the old one changed")
	}

	// A service with settings only exists and has a view.
	mk := svcKey("meta-only")
	_ = s.Update(mk, func(tx *Tx) error {
		tx.PutMeta(model.ServiceMeta{ProtectThreshold: 0.3, Selector: model.Selector{Type: "none"}}, false)
		return nil
	})
	mv := s.View(mk)
	if mv == nil || mv.Meta == nil || mv.Meta.ProtectThreshold != 0.3 || len(mv.Instances) != 0 {
		t.Fatalf("meta-only view = %+v", mv)
	}
	_ = s.Update(mk, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{}, true); return nil })
	if s.View(mk) != nil {
		t.Fatal("deleted meta-only service still has a view")
	}
}

func TestRenderedCache(t *testing.T) {
	s := newTestStore("n1")
	k := svcKey("a")
	put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	builds := 0
	build := func(s string) func() []byte {
		return func() []byte { builds++; return []byte(s) }
	}
	v := s.View(k)
	if got := v.Rendered("x", build("one")); string(got) != "one" || builds != 1 {
		t.Fatalf("first Rendered = %q, builds %d", got, builds)
	}
	if got := s.View(k).Rendered("x", build("two")); string(got) != "one" || builds != 1 {
		t.Fatalf("cached Rendered = %q, builds %d", got, builds)
	}
	if got := v.Rendered("y", build("three")); string(got) != "three" || builds != 2 {
		t.Fatalf("second key Rendered = %q, builds %d", got, builds)
	}
	put(t, s.Store, k, inst("10.0.0.2", 80), KindLive)
	if got := s.View(k).Rendered("x", build("four")); string(got) != "four" || builds != 3 {
		t.Fatalf("Rendered after a change = %q, builds %d", got, builds)
	}
	// The cache is bounded; beyond the bound every call builds.
	v = s.View(k)
	for i := range maxCachedRenders + 5 {
		v.Rendered(fmt.Sprint("k", i), build("z"))
	}
	if len(v.cache) > maxCachedRenders {
		t.Fatalf("cache holds %d entries, bound is %d", len(v.cache), maxCachedRenders)
	}
}

func TestDigest(t *testing.T) {
	a := newTestStore("n1")
	k := svcKey("a")
	if a.Digest(k) != 0 {
		t.Fatal("digest of an unknown service is not 0")
	}
	r1 := put(t, a.Store, k, inst("10.0.0.1", 80), KindLive)
	r2 := put(t, a.Store, k, inst("10.0.0.2", 80), KindLive)
	d12 := a.Digest(k)
	if d12 == 0 {
		t.Fatal("digest is 0")
	}

	// Same live versions ⇒ same digest, in any order of arrival.
	b := newTestStore("n2")
	b.Merge(k, []*Record{r2, r1}, nil, time.Minute)
	if b.Digest(k) != d12 {
		t.Fatal("same versions, different digest")
	}

	// A different version of one instance ⇒ different digest.
	r2b := put(t, a.Store, k, inst("10.0.0.2", 80), KindLive)
	if a.Digest(k) == d12 {
		t.Fatal("a new version did not change the digest")
	}
	b.Merge(k, []*Record{r2b}, nil, time.Minute)
	if a.Digest(k) != b.Digest(k) {
		t.Fatal("digests differ after replicating the new version")
	}

	// An annotation is a different visible state.
	before := a.Digest(k)
	_ = a.Update(k, func(tx *Tx) error { tx.Annotate(r1.Key(), KindUnhealthy); return nil })
	if a.Digest(k) == before {
		t.Fatal("unhealthy annotation did not change the digest")
	}

	// Tombstones do not count: deleting an instance gives the digest of a
	// store that only ever held the rest.
	c := newTestStore("n3")
	c.Merge(k, []*Record{r1}, nil, time.Minute)
	d := newTestStore("n4")
	d.Merge(k, []*Record{r1, r2}, nil, time.Minute)
	tomb := &Record{Instance: r2.Instance, Stamp: r2.Stamp + 1, Origin: "n4", Kind: KindDeleted}
	d.Merge(k, []*Record{tomb}, nil, time.Minute)
	if c.Digest(k) != d.Digest(k) {
		t.Fatal("a tombstone contributes to the digest")
	}

	// Settings count.
	before = c.Digest(k)
	_ = c.Update(k, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{ProtectThreshold: 0.1}, false); return nil })
	withMeta := c.Digest(k)
	if withMeta == before {
		t.Fatal("settings did not change the digest")
	}
	_ = c.Update(k, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{}, true); return nil })
	if c.Digest(k) != before {
		t.Fatal("deleted settings still count in the digest")
	}

	// RangeKeys reports the same digests.
	found := false
	c.RangeKeys(func(key model.ServiceKey, dg uint64) bool {
		if key == k {
			found = dg == c.Digest(k)
		}
		return true
	})
	if !found {
		t.Fatal("RangeKeys digest differs from Digest")
	}
}

func TestGC(t *testing.T) {
	s := newTestStore("n1")
	k, gone := svcKey("a"), svcKey("gone")
	put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	put(t, s.Store, k, inst("10.0.0.2", 80), KindLive)
	put(t, s.Store, k, inst("10.0.0.2", 80), KindDeleted)
	put(t, s.Store, gone, inst("10.0.0.1", 80), KindLive)
	put(t, s.Store, gone, inst("10.0.0.1", 80), KindDeleted)
	mk := svcKey("meta")
	_ = s.Update(mk, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{}, false); return nil })
	_ = s.Update(mk, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{}, true); return nil })
	digest := s.Digest(k)

	s.advance(5 * time.Minute)
	if n := s.GC(10 * time.Minute); n != 0 {
		t.Fatalf("GC before retention dropped %d", n)
	}
	if get(s.Store, k, ikey("10.0.0.2", 80)) == nil {
		t.Fatal("tombstone dropped early")
	}
	s.advance(5*time.Minute + time.Millisecond)
	if n := s.GC(10 * time.Minute); n != 2 {
		t.Fatalf("GC dropped %d records, want 2", n)
	}
	if get(s.Store, k, ikey("10.0.0.2", 80)) != nil {
		t.Fatal("old tombstone kept")
	}
	if r := get(s.Store, k, ikey("10.0.0.1", 80)); r == nil || r.Kind != KindLive {
		t.Fatal("GC dropped a live record")
	}
	if s.Digest(k) != digest {
		t.Fatal("GC changed the digest")
	}
	var keys []model.ServiceKey
	s.RangeKeys(func(key model.ServiceKey, _ uint64) bool { keys = append(keys, key); return true })
	if len(keys) != 1 || keys[0] != k {
		t.Fatalf("after GC RangeKeys = %v, want only %v", keys, k)
	}
	wantCounts(t, s.Store, 1, 1)
}

func TestServiceKeys(t *testing.T) {
	s := newTestStore("n1")
	mk := func(ns, g, n string) model.ServiceKey { return model.ServiceKey{Namespace: ns, Group: g, Name: n} }
	for _, k := range []model.ServiceKey{mk("public", "G", "b"), mk("public", "DEFAULT_GROUP", "z"), mk("dev", "G", "a"), mk("public", "G", "a")} {
		put(t, s.Store, k, inst("10.0.0.1", 80), KindLive)
	}
	dead := mk("public", "G", "dead")
	put(t, s.Store, dead, inst("10.0.0.1", 80), KindLive)
	put(t, s.Store, dead, inst("10.0.0.1", 80), KindDeleted)
	metaOnly := mk("public", "G", "m")
	_ = s.Update(metaOnly, func(tx *Tx) error { tx.PutMeta(model.ServiceMeta{}, false); return nil })

	got := fmt.Sprint(s.ServiceKeys("public"))
	want := fmt.Sprint([]model.ServiceKey{mk("public", "DEFAULT_GROUP", "z"), mk("public", "G", "a"), mk("public", "G", "b"), metaOnly})
	if got != want {
		t.Fatalf("ServiceKeys(public)\n got %s\nwant %s", got, want)
	}
	if all := s.ServiceKeys(""); len(all) != 5 || all[0].Namespace != "dev" {
		t.Fatalf("ServiceKeys(\"\") = %v", all)
	}
	if n := len(s.ServiceKeys("nope")); n != 0 {
		t.Fatalf("unknown namespace has %d keys", n)
	}
}

func TestRecordCompareAndKinds(t *testing.T) {
	in := inst("1.1.1.1", 1)
	mk := func(st hlc.Timestamp, o string, k Kind) *Record {
		return &Record{Instance: in, Stamp: st, Origin: o, Kind: k}
	}
	ordered := []*Record{
		mk(1, "a", KindLive), mk(1, "a", KindUnhealthy), mk(1, "a", KindExpired), mk(1, "a", KindDeleted),
		mk(1, "b", KindLive), mk(2, "a", KindLive),
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ordered[i].Compare(ordered[j]); got != want {
				t.Errorf("Compare(%d, %d) = %d, want %d", i, j, got, want)
			}
		}
	}
	for k, name := range map[Kind]string{KindLive: "live", KindUnhealthy: "unhealthy", KindExpired: "expired", KindDeleted: "deleted", 9: "unknown"} {
		if k.String() != name {
			t.Errorf("Kind(%d).String() = %q", k, k.String())
		}
	}
	mm := func(st hlc.Timestamp, o string, del bool) *MetaRecord {
		return &MetaRecord{Stamp: st, Origin: o, Deleted: del}
	}
	metas := []*MetaRecord{mm(1, "a", false), mm(1, "a", true), mm(1, "b", false), mm(2, "a", false)}
	for i := range metas {
		for j := range metas {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := metas[i].Compare(metas[j]); got != want {
				t.Errorf("MetaRecord.Compare(%d, %d) = %d, want %d", i, j, got, want)
			}
		}
	}
	if HashKey(svcKey("a")) == HashKey(svcKey("b")) || HashKey(svcKey("a")) != HashKey(svcKey("a")) {
		t.Error("HashKey is not a stable, discriminating hash")
	}
	// Length prefixes keep field boundaries apart.
	if HashKey(model.ServiceKey{Namespace: "ab", Group: "c", Name: "d"}) == HashKey(model.ServiceKey{Namespace: "a", Group: "bc", Name: "d"}) {
		t.Error("HashKey ignores field boundaries")
	}
}

func TestListViewOfEmptiedServiceKeepsIncreasingLastRefTime(t *testing.T) {
	st := New("n1", hlc.New(nil))
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "emptied"}
	in := &model.Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT"}
	var last int64
	for i := 0; i < 50; i++ { // many writes within one millisecond
		kind := KindLive
		if i%2 == 1 {
			kind = KindDeleted
		}
		_ = st.Update(k, func(tx *Tx) error { tx.Put(in, kind, "", ""); return nil })
		v := st.ListView(k)
		if v == nil {
			t.Fatalf("write %d: ListView is nil for a remembered service", i)
		}
		if v.LastRefTime <= last {
			t.Fatalf("write %d: lastRefTime %d did not increase past %d", i, v.LastRefTime, last)
		}
		last = v.LastRefTime
		if kind == KindDeleted && (len(v.Instances) != 0 || st.View(k) != nil) {
			t.Fatalf("emptied service: ListView has %d instances, View = %v", len(v.Instances), st.View(k))
		}
	}
	if st.ListView(model.ServiceKey{Namespace: "public", Group: "g", Name: "never"}) != nil {
		t.Fatal("ListView of a never-seen service must be nil")
	}
}

// A local write replaces a version merged from a node whose clock runs far
// ahead: its stamp must still order after that version (chaos F12).
func TestPutOrdersAfterFutureVersion(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	st := New("slow", hlc.New(func() time.Time { return now }))
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "skew"}
	in := &model.Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Cluster: "DEFAULT"}
	future := &Record{Instance: in, Stamp: hlc.Make(now.Add(90*time.Minute).UnixMilli(), 0), Origin: "fast", Kind: KindLive}
	st.Merge(k, []*Record{future}, &MetaRecord{Stamp: future.Stamp, Origin: "fast"}, time.Minute)
	var tomb *Record
	_ = st.Update(k, func(tx *Tx) error {
		tomb = tx.Put(in, KindDeleted, "", "")
		tx.PutMeta(model.ServiceMeta{}, true)
		return nil
	})
	if tomb.Compare(future) <= 0 {
		t.Fatalf("local deregistration %v does not order after the version it replaced %v", tomb.Stamp, future.Stamp)
	}
	if _, m := st.Records(k, nil); m == nil || !m.Deleted || m.Stamp <= future.Stamp {
		t.Fatalf("local settings write does not order after the merged one: %+v", m)
	}
}
