package clustergrpc

import (
	"context"
	"testing"

	"github.com/distro-registry/distro/api/clusterpb"
)

// BenchmarkCallRoundTrip measures one signed, verified Call over loopback
// with a small sync batch.
func BenchmarkCallRoundTrip(b *testing.B) {
	n := startNode(b, secretA)
	c, _ := newTestClient(b, secretA, clientName)
	req := &clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: []*clusterpb.KeyRecords{{
		Key: key("bench"),
		Records: []*clusterpb.Record{{Instance: &clusterpb.Instance{InstanceId: "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@bench",
			Ip: "10.0.0.1", Port: 8080, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT"}, Stamp: 1, Origin: n.name}},
	}}}}}
	ctx := context.Background()
	if _, err := c.Call(ctx, n.name, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Call(ctx, n.name, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallRoundTripParallel is the same with concurrent callers
// sharing the one connection.
func BenchmarkCallRoundTripParallel(b *testing.B) {
	n := startNode(b, secretA)
	c, _ := newTestClient(b, secretA, clientName)
	req := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{ViewId: "v"}}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(ctx, n.name, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
