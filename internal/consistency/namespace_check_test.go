package consistency_test

import (
	"context"
	"errors"
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

// TestNamespaceCheckSparesRemovalsAndVerdicts: with namespace validation
// on, writes into a namespace that does not exist (or no longer does) are
// refused, but removals and the server's own health check verdicts pass:
// a verdict about an instance of a deleted namespace must not fail every
// check interval.
func TestNamespaceCheckSparesRemovalsAndVerdicts(t *testing.T) {
	st := store.New("n1", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	gone := errors.New("Namespace 'old' does not exist")
	r := &consistency.Router{AP: local, Store: st, CheckNamespace: func(string) error { return gone }}
	key := model.ServiceKey{Namespace: "old", Group: "G", Name: "s"}
	in := model.Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT"}
	ctx := context.Background()
	if _, err := r.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: key, Instance: in}); !errors.Is(err, gone) {
		t.Fatalf("register into a missing namespace: %v", err)
	}
	verdict := in
	verdict.Healthy = false
	for _, op := range []*registry.Op{
		{Kind: registry.OpSetHealth, Key: key, Instance: verdict},
		{Kind: registry.OpDeregister, Key: key, Instance: in},
	} {
		if _, err := r.Apply(ctx, op); err != nil {
			t.Errorf("%s in a missing namespace: %v", op.Kind, err)
		}
	}
}
