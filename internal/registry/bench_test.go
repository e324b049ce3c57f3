package registry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// BenchmarkBeat is the hot write path: a light beat of a live instance at
// its owner (O(1): one store read, one tracker entry moved), over 10 000
// instances.
func BenchmarkBeat(b *testing.B) {
	clk := clock.Real{}
	st := store.New("n1", hlc.New(clk.Now))
	l := registry.NewLocal(st, health.DefaultConfig(), clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const n = 10000
	ops := make([]*registry.Op, n)
	for i := range ops {
		in := model.Instance{IP: fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), Port: 80, Cluster: "DEFAULT", Weight: 1,
			Healthy: true, Enabled: true, Ephemeral: true}
		k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i%100)}
		if _, err := l.Apply(context.Background(), &registry.Op{Kind: registry.OpRegister, Key: k, Instance: in}); err != nil {
			b.Fatal(err)
		}
		ops[i] = &registry.Op{Kind: registry.OpBeat, Key: k, Instance: in, LightBeat: true}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := l.Apply(context.Background(), ops[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}
