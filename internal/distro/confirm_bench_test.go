package distro

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clusterauth"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/transport/clustergrpc"
)

// BenchmarkConfirmRoundGRPC measures what confirmed timeouts add to the
// removal of a dead instance in a healthy cluster (docs/protocol.md §8.1):
// one confirmation round from the owner to its two peers over the real
// authenticated gRPC transport on loopback, for one due timeout and for a
// scan with 100 of them (ns/op is one round).
func BenchmarkConfirmRoundGRPC(b *testing.B) {
	secret := []byte("benchmark-secret-9f8e7d6c5b4a39281706f5e4d3c2b1a0")
	var addrs []string
	var lns []net.Listener
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port-1)) // cluster port = member port + 1
	}
	var members []Member
	for _, a := range addrs {
		members = append(members, Member{Addr: a, State: StateUp})
	}
	var owner *Engine
	for i, a := range addrs {
		sign, _ := clusterauth.New(secret, a)
		cl := clustergrpc.NewClient(clustergrpc.ClientConfig{Signer: sign, PortOffset: 1})
		defer cl.Close()
		e, _ := benchNode(a, cl)
		e.markReady("benchmark")
		e.SetView(NewView(a, members))
		srv := clustergrpc.NewServer(clustergrpc.ServerConfig{Signer: sign}, e)
		go func() { _ = srv.Serve(lns[i]) }()
		defer srv.Stop()
		if i == 0 {
			owner = e
		}
	}
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("timeouts=%d", n), func(b *testing.B) {
			sus := make([]registry.Suspect, n)
			for i := range sus {
				sus[i] = registry.Suspect{Ref: health.Ref{
					Service:  model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i%10)},
					Instance: model.InstanceKey{IP: fmt.Sprintf("10.1.0.%d", i+1), Port: 80, Cluster: "DEFAULT"}},
					Kind: store.KindExpired, Window: 15 * time.Second}
			}
			ctx := context.Background()
			if _, since := owner.Confirm(ctx, sus); since.IsZero() { // warm the connections
				b.Fatal("no majority answered")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if ages, since := owner.Confirm(ctx, sus); since.IsZero() || ages[0] >= 0 {
					b.Fatalf("round: ages %v, majority since %v", ages[:1], since)
				}
			}
		})
	}
}
