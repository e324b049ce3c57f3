package store

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
)

var mergeSeed = flag.Uint64("merge.seed", 0, "seed for the Merge property test (0: random)")

// genRecords returns a random history of versions for a few instances.
// Versions issued by one origin with one stamp carry the same data, as they
// do in a real cluster (a weak annotation keeps the data it annotates).
func genRecords(rng *rand.Rand, n int) []*Record {
	ips := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}
	origins := []string{"n1", "n2", "n3"}
	out := make([]*Record, 0, n)
	for range n {
		ip := ips[rng.IntN(len(ips))]
		stamp := hlc.Make(1_700_000_000_000+int64(rng.IntN(6)), uint16(rng.IntN(3)))
		origin := origins[rng.IntN(len(origins))]
		in := &model.Instance{IP: ip, Port: 80, Cluster: "DEFAULT", Healthy: true, Enabled: true, Ephemeral: true,
			Weight: float64(uint64(stamp)%97) + float64(len(origin))}
		out = append(out, &Record{Instance: in, Stamp: stamp, Origin: origin, Kind: Kind(rng.IntN(4))})
	}
	return out
}

func genMetas(rng *rand.Rand, n int) []*MetaRecord {
	out := make([]*MetaRecord, 0, n)
	for range n {
		st := hlc.Make(1_700_000_000_000+int64(rng.IntN(4)), 0)
		o := []string{"n1", "n2"}[rng.IntN(2)]
		out = append(out, &MetaRecord{Stamp: st, Origin: o, Deleted: rng.IntN(3) == 0,
			Meta: model.ServiceMeta{ProtectThreshold: float64(uint64(st)%10) / 10}})
	}
	return out
}

// snapshot is a comparable rendering of everything a store holds for k.
func snapshot(s *Store, k model.ServiceKey) string {
	recs, meta := s.Records(k, nil)
	var lines []string
	for _, r := range recs {
		lines = append(lines, fmt.Sprintf("%s %v %s %s w=%v", r.Key(), r.Stamp, r.Origin, r.Kind, r.Instance.Weight))
	}
	sort.Strings(lines)
	if meta != nil {
		lines = append(lines, fmt.Sprintf("meta %v %s del=%v pt=%v", meta.Stamp, meta.Origin, meta.Deleted, meta.Meta.ProtectThreshold))
	}
	services, instances := s.Counts()
	lines = append(lines, fmt.Sprintf("digest %x counts %d/%d", s.Digest(k), services, instances))
	return fmt.Sprint(lines)
}

func TestMergeProperties(t *testing.T) {
	seed := *mergeSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -merge.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	k := svcKey("svc")
	const rounds, replicas = 200, 5
	for round := range rounds {
		recs := genRecords(rng, 1+rng.IntN(30))
		metas := genMetas(rng, rng.IntN(4))

		// The expected outcome: the greatest version of every instance.
		best := map[model.InstanceKey]*Record{}
		for _, r := range recs {
			if b := best[r.Key()]; b == nil || r.Compare(b) > 0 {
				best[r.Key()] = r
			}
		}
		var bestMeta *MetaRecord
		for _, m := range metas {
			if bestMeta == nil || m.Compare(bestMeta) > 0 {
				bestMeta = m
			}
		}

		var want string
		for rep := range replicas {
			s := newTestStore(fmt.Sprintf("r%d", rep))
			// Random order with duplicates, in random batches.
			var stream []*Record
			for _, r := range recs {
				for range 1 + rng.IntN(3) {
					stream = append(stream, r)
				}
			}
			rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
			var metaStream []*MetaRecord
			for _, m := range metas {
				metaStream = append(metaStream, m, m)
			}
			rng.Shuffle(len(metaStream), func(i, j int) { metaStream[i], metaStream[j] = metaStream[j], metaStream[i] })

			for len(stream) > 0 || len(metaStream) > 0 {
				n := min(len(stream), 1+rng.IntN(6))
				batch := stream[:n]
				stream = stream[n:]
				var m *MetaRecord
				if len(metaStream) > 0 && rng.IntN(2) == 0 {
					m, metaStream = metaStream[0], metaStream[1:]
				}
				// Monotonicity: no merge ever replaces a version by an older one.
				before := map[model.InstanceKey]*Record{}
				for _, r := range batch {
					before[r.Key()] = get(s.Store, k, r.Key())
				}
				s.Merge(k, batch, m, time.Hour)
				for ik, b := range before {
					if b != nil && get(s.Store, k, ik).Compare(b) < 0 {
						t.Fatalf("seed %d round %d: %v went back from %v/%s/%s", seed, round, ik, b.Stamp, b.Origin, b.Kind)
					}
				}
			}
			for ik, b := range best {
				if got := get(s.Store, k, ik); got == nil || got.Compare(b) != 0 {
					t.Fatalf("seed %d round %d replica %d: %v ended at %+v, want %+v", seed, round, rep, ik, got, b)
				}
			}
			if _, m := s.Records(k, nil); (m == nil) != (bestMeta == nil) || (m != nil && m.Compare(bestMeta) != 0) {
				t.Fatalf("seed %d round %d replica %d: meta %+v, want %+v", seed, round, rep, m, bestMeta)
			}
			got := snapshot(s.Store, k)
			if rep == 0 {
				want = got
			} else if got != want {
				t.Fatalf("seed %d round %d: replicas diverged\nreplica 0: %s\nreplica %d: %s", seed, round, want, rep, got)
			}

			// Idempotence: merging everything again changes nothing.
			if n := s.Merge(k, recs, nil, time.Hour); n != 0 {
				t.Fatalf("seed %d round %d: re-merge changed %d records", seed, round, n)
			}
			if snapshot(s.Store, k) != want {
				t.Fatalf("seed %d round %d: re-merge changed the store", seed, round)
			}
		}
	}
}

// TestMergeWeakAnnotations pins the H6 rule: an annotation keeps the stamp of
// the version it annotates, so any newer version outranks it in both orders.
func TestMergeWeakAnnotations(t *testing.T) {
	k := svcKey("a")
	owner := newTestStore("owner")
	live := put(t, owner.Store, k, inst("10.0.0.1", 80), KindLive)
	var expired *Record
	_ = owner.Update(k, func(tx *Tx) error { expired = tx.Annotate(live.Key(), KindExpired); return nil })
	var unhealthy *Record
	{
		o2 := newTestStore("owner")
		o2.Merge(k, []*Record{live}, nil, time.Hour)
		_ = o2.Update(k, func(tx *Tx) error { unhealthy = tx.Annotate(live.Key(), KindUnhealthy); return nil })
	}

	// Another node renews the instance with a newer stamp.
	other := newTestStore("other")
	other.Merge(k, []*Record{live}, nil, time.Hour)
	other.advance(time.Millisecond)
	renewed := put(t, other.Store, k, inst("10.0.0.1", 80), KindLive)
	if renewed.Stamp <= live.Stamp {
		t.Fatal("renewal not newer")
	}

	for _, weak := range []*Record{expired, unhealthy} {
		for _, order := range [][]*Record{{weak, renewed}, {renewed, weak}} {
			s := newTestStore("x")
			for _, r := range order {
				s.Merge(k, []*Record{r}, nil, time.Hour)
			}
			if got := get(s.Store, k, live.Key()); got.Kind != KindLive || got.Stamp != renewed.Stamp {
				t.Errorf("%s then %s: ended with %s %v, want the renewal", order[0].Kind, order[1].Kind, got.Kind, got.Stamp)
			}
			if v := s.View(k); v == nil || len(v.Instances) != 1 || !v.Instances[0].Healthy {
				t.Errorf("%s vs renewal: instance not visible and healthy", weak.Kind)
			}
		}
		// Against the version it annotates, the annotation wins.
		s := newTestStore("y")
		s.Merge(k, []*Record{weak}, nil, time.Hour)
		s.Merge(k, []*Record{live}, nil, time.Hour)
		if got := get(s.Store, k, live.Key()); got.Kind != weak.Kind {
			t.Errorf("the annotated version overrode its %s annotation", weak.Kind)
		}
	}

	// A deregistration is a fresh version and beats the older live one.
	del := newTestStore("del")
	del.Merge(k, []*Record{live}, nil, time.Hour)
	del.advance(time.Millisecond)
	tomb := put(t, del.Store, k, inst("10.0.0.1", 80), KindDeleted)
	s := newTestStore("z")
	s.Merge(k, []*Record{tomb, live}, nil, time.Hour)
	if got := get(s.Store, k, live.Key()); got.Kind != KindDeleted {
		t.Errorf("an older live version resurrected a deleted instance: %s", got.Kind)
	}
}

func TestMergeObservesStamps(t *testing.T) {
	k := svcKey("a")
	s := newTestStore("n1")
	future := &Record{Instance: inst("10.0.0.1", 80), Stamp: hlc.Make(s.ms.Load()+5_000, 7), Origin: "n2", Kind: KindLive}
	s.Merge(k, []*Record{future}, nil, time.Minute)
	// A local write after merging orders after what was merged.
	r := put(t, s.Store, k, inst("10.0.0.1", 80), KindDeleted)
	if r.Stamp <= future.Stamp {
		t.Fatalf("local stamp %v not after merged %v", r.Stamp, future.Stamp)
	}
}
