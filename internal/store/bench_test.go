package store

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
)

// BenchmarkStoreUpdate measures one registration-sized write: a new version
// of one instance in one of 1000 services of 10 instances each.
func BenchmarkStoreUpdate(b *testing.B) {
	s := New("n1", hlc.New(nil))
	keys := make([]model.ServiceKey, 1000)
	for i := range keys {
		keys[i] = svcKey("svc-" + strconv.Itoa(i))
	}
	insts := make([]*model.Instance, 10)
	for i := range insts {
		insts[i] = inst("10.0.0."+strconv.Itoa(i+1), 8080)
	}
	for _, k := range keys {
		for _, in := range insts {
			_ = s.Update(k, func(tx *Tx) error { tx.Put(in, KindLive, "", ""); return nil })
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k, in := keys[i%len(keys)], insts[(i/len(keys))%len(insts)]
		_ = s.Update(k, func(tx *Tx) error { tx.Put(in, KindLive, "", ""); return nil })
		i++
	}
}

// BenchmarkMemoryPerInstance reports the heap held per registered instance
// with 100k instances in 1k services, each instance with typical metadata
// decoded from its own request (so nothing is shared between instances
// except what the registry itself shares).
func BenchmarkMemoryPerInstance(b *testing.B) {
	const services, perService = 1000, 100
	const total = services * perService
	l := model.DefaultLimits()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		s := New("10.0.0.1:8848", hlc.New(nil))
		for si := range services {
			k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("com.example.service%04d", si)}
			for ii := range perService {
				md, err := l.ParseMetadata(fmt.Sprintf(`{"version":"1.4.%d","env":"prod","zone":"az-%d","preserved.register.source":"SPRING_CLOUD","app":"svc%d"}`, ii%7, ii%3, si))
				if err != nil {
					b.Fatal(err)
				}
				in := &model.Instance{
					IP: fmt.Sprintf("10.%d.%d.%d", si/256, si%256, ii+1), Port: 8080, Weight: 1, Healthy: true,
					Enabled: true, Ephemeral: true, Cluster: model.DefaultCluster, Metadata: md,
				}
				in.Own() // as the registry does before it stores an instance
				_ = s.Update(k, func(tx *Tx) error { tx.Put(in, KindLive, "", ""); return nil })
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		storeOnly := float64(after.HeapAlloc-before.HeapAlloc) / total

		for _, k := range s.ServiceKeys("") {
			s.View(k)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		withViews := float64(after.HeapAlloc-before.HeapAlloc) / total
		if _, n := s.Counts(); n != total {
			b.Fatalf("%d instances stored", n)
		}
		runtime.KeepAlive(s)
		b.ReportMetric(storeOnly, "B/instance")
		b.ReportMetric(withViews, "B/instance-with-views")
	}
}
