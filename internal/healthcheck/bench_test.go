package healthcheck

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

type passProber struct{}

func (passProber) Probe(context.Context, *Probe) error { return nil }

// benchNode is a standalone node on a fake clock holding n persistent
// instances, 10 per TCP-checked service, with a checker unless
// withChecker is false. The checker is driven by hand (no Run).
func benchNode(tb testing.TB, n int, withChecker bool, check string) (*Checker, *clock.Fake, *store.Store) {
	tb.Helper()
	clk := clock.NewFake(t0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New("n1", hlc.New(clk.Now))
	local := registry.NewLocal(st, health.DefaultConfig(), clk, log)
	var c *Checker
	if withChecker {
		cfg := DefaultConfig()
		cfg.Workers = 256
		c = New(cfg, st, local, local, passProber{}, clk, log, nil)
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i/10)}
		in := model.Instance{IP: fmt.Sprintf("10.9.%d.%d", i/250%250, i%250+1), Port: 5432 + i/62500, Cluster: model.DefaultCluster,
			Weight: 1, Healthy: true, Enabled: true}
		if _, err := local.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: k, Instance: in}); err != nil {
			tb.Fatal(err)
		}
		if i%10 == 0 && check != model.CheckNone {
			op := &registry.Op{Kind: registry.OpUpdateCluster, Key: k, ClusterName: model.DefaultCluster, Cluster: model.DefaultClusterMeta(check)}
			if _, err := local.Apply(ctx, op); err != nil {
				tb.Fatal(err)
			}
		}
	}
	want := n
	if check == model.CheckNone {
		want = 0
	}
	if c != nil && c.Scheduled() != want {
		tb.Fatalf("%d scheduled, want %d", c.Scheduled(), want)
	}
	return c, clk, st
}

// BenchmarkSteadyStateCheck is the checker's own cost per check of a
// passing instance among 100k (scheduling, ownership, result,
// rescheduling; the probe itself is free): a tick costs this times its
// due checks.
func BenchmarkSteadyStateCheck(b *testing.B) {
	c, clk, _ := benchNode(b, 100_000, true, model.CheckTCP)
	var buf []job
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		clk.Advance(c.cfg.Tick)
		buf = c.dispatch(buf[:0])
		for range buf {
			c.complete(<-c.jobs, nil)
		}
		done += len(buf)
	}
}

// BenchmarkTargetMemory reports the checker's heap per checked instance:
// a node with 100k persistent instances with and without a checker.
func BenchmarkTargetMemory(b *testing.B) {
	// TCP: every instance is a target. NONE (the default): none is, and a
	// persistent instance costs the checker nothing.
	for _, check := range []string{model.CheckTCP, model.CheckNone} {
		b.Run(check, func(b *testing.B) {
			const n = 100_000
			heap := func(withChecker bool) uint64 {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				c, _, st := benchNode(b, n, withChecker, check)
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(c)
				runtime.KeepAlive(st)
				return after.HeapAlloc - before.HeapAlloc
			}
			for i := 0; i < b.N; i++ {
				without, with := heap(false), heap(true)
				b.ReportMetric(float64(int64(with)-int64(without))/n, "checker-bytes/instance")
			}
		})
	}
}
