package consistency_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// BenchmarkBeat measures what the seam adds to the ephemeral hot path: the
// same heartbeat applied straight to registry.Local and through the
// Router (which looks the identity up once to route it).
func BenchmarkBeat(b *testing.B) {
	st := store.New("n1", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	key := model.ServiceKey{Namespace: "public", Group: "G", Name: "s"}
	in := model.Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT"}
	ctx := context.Background()
	if _, err := local.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: key, Instance: in}); err != nil {
		b.Fatal(err)
	}
	beat := &registry.Op{Kind: registry.OpBeat, Key: key, Instance: in, LightBeat: true}
	for _, w := range []struct {
		name string
		w    registry.Writer
	}{{"local", local}, {"router", &consistency.Router{AP: local, CP: nil, Store: st}}} {
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.w.Apply(ctx, beat); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
