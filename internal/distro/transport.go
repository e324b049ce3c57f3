package distro

import (
	"context"

	"github.com/distro-registry/distro/api/clusterpb"
)

// Transport carries cluster traffic to peers. Implementations must be safe
// for concurrent use. The production implementation is gRPC
// (internal/transport/clustergrpc); tests use distrotest's in-memory network.
type Transport interface {
	// Call sends one request to peer and waits for its response (or ctx done).
	Call(ctx context.Context, peer string, req *clusterpb.Request) (*clusterpb.Response, error)
	// Snapshot asks peer for a full snapshot and calls fn for every chunk,
	// in order, until the last chunk or an error.
	Snapshot(ctx context.Context, peer string, req *clusterpb.SnapshotRequest, fn func(*clusterpb.SnapshotChunk) error) error
}

// Handler serves cluster traffic on the receiving side; Engine implements it.
type Handler interface {
	HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error)
	HandleSnapshot(ctx context.Context, from string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error
}
