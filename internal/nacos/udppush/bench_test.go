package udppush

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// BenchmarkPush measures one push round to 1000 subscribers of one clusters
// string: a store change, rendering, packing (gzip for the larger service)
// and 1000 sends on loopback.
func BenchmarkPush(b *testing.B) {
	for _, instances := range []int{3, 50} {
		b.Run(fmt.Sprintf("subscribers=1000/instances=%d", instances), func(b *testing.B) {
			st := store.New("n1", hlc.New(nil))
			clk := clock.NewFake(t0)
			p, err := New(Config{Listen: "127.0.0.1:0", SubscriberTTL: 1000 * time.Hour}, st, clk, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = p.Close() })
			sink := newClient(b)
			port := sink.addr().Port()
			for i := range 1000 {
				// Distinct loopback addresses at the sink's port; only
				// 127.0.0.1 is listened on, the rest are dropped by the kernel.
				addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)}), port)
				if err := p.Subscribe(demoKey, "", addr, javaAgent, ""); err != nil {
					b.Fatal(err)
				}
			}
			put := func(i int, weight float64) {
				_ = st.Update(demoKey, func(tx *store.Tx) error {
					tx.Put(&model.Instance{IP: fmt.Sprintf("10.0.0.%d", i), Port: 8080, Weight: weight, Healthy: true,
						Enabled: true, Ephemeral: true, Cluster: "DEFAULT",
						Metadata: map[string]string{"version": "1.2.3", "zone": "z1"}}, store.KindLive, "", "")
					return nil
				})
			}
			for i := range instances {
				put(i+1, 1)
			}
			clk.Advance(time.Second)
			p.step(clk.Now())
			before := p.Stats().Pushes

			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				put(1, float64(1+i%2))
				clk.Advance(p.cfg.MergeWindow)
				p.step(clk.Now())
			}
			b.StopTimer()
			if got := p.Stats().Pushes - before; got != uint64(b.N)*1000 {
				b.Fatalf("pushes = %d, want %d", got, b.N*1000)
			}
		})
	}
}
