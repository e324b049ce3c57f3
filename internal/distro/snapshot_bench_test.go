package distro

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/clusterauth"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/transport/clustergrpc"
)

// fill registers n instances, 10 per service, with two metadata entries each.
func fill(st *store.Store, n int) {
	for s := 0; s < n/10; s++ {
		k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("bench-svc-%d", s)}
		_ = st.Update(k, func(tx *store.Tx) error {
			for i := 0; i < 10; i++ {
				in := &model.Instance{IP: fmt.Sprintf("10.%d.%d.%d", s>>16&255, s>>8&255, s&255), Port: 8000 + i, Weight: 1,
					Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT",
					Metadata: map[string]string{"version": "1.2.3", "zone": "z1"}}
				tx.Put(in, store.KindLive, "", "")
			}
			return nil
		})
	}
}

func benchNode(self string, tr Transport) (*Engine, *store.Store) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New(self, hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, log)
	return New(DefaultConfig(self), st, local, tr, clock.Real{}, log, nil), st
}

// BenchmarkSnapshotLoadGRPC measures a full startup load over the real
// authenticated gRPC transport on loopback: stream, verify, decode,
// validate and merge. Reports records/s and seconds per load.
func BenchmarkSnapshotLoadGRPC(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			secret := []byte("benchmark-secret-9f8e7d6c5b4a39281706f5e4d3c2b1a0")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			srcAddr := fmt.Sprintf("127.0.0.1:%d", port-1) // cluster port = member port + 1
			signA, _ := clusterauth.New(secret, srcAddr)
			src, srcStore := benchNode(srcAddr, nil)
			fill(srcStore, n)
			src.markReady("benchmark")
			srv := clustergrpc.NewServer(clustergrpc.ServerConfig{Signer: signA}, src)
			go func() { _ = srv.Serve(ln) }()
			defer srv.Stop()
			runtime.GC()
			b.ResetTimer()
			var total, cpu time.Duration
			for i := 0; i < b.N; i++ {
				signB, _ := clusterauth.New(secret, "127.0.0.1:1")
				cl := clustergrpc.NewClient(clustergrpc.ClientConfig{Signer: signB, PortOffset: 1})
				dst, dstStore := benchNode("127.0.0.1:1", cl)
				start, cpu0 := time.Now(), processCPU()
				got, err := dst.loadFrom(context.Background(), srcAddr)
				total += time.Since(start)
				cpu += processCPU() - cpu0
				cl.Close()
				if err != nil || got != n {
					b.Fatalf("loaded %d of %d: %v", got, n, err)
				}
				if _, inst := dstStore.Counts(); int(inst) != n {
					b.Fatalf("store has %d instances", inst)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/load")
			// CPU time (both ends: the source serves the snapshot in this
			// process too) holds up better than wall time on a shared machine.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/load")
			b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "records/s")
		})
	}
}

// BenchmarkVerifyIdle measures one verification round's digest work with
// 100k instances (10k services) and no differences: what an idle cluster
// spends every VerifyInterval per peer.
func BenchmarkVerifyIdle(b *testing.B) {
	e, st := benchNode("10.0.0.1:8848", nil)
	fill(st, 100_000)
	elig := []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// A round: this node's own sums, plus the sums it recomputes for
		// each of two peers' incoming digests.
		for _, owner := range elig {
			e.ownedDigests(owner, elig, nil)
		}
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
