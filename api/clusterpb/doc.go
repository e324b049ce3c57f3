// Package clusterpb holds the wire types and the gRPC service of the
// cluster (peer-to-peer) protocol, generated from cluster.proto.
//
// Every message travels inside an Envelope whose body is a serialized
// Request or Response and whose mac authenticates it (see package
// internal/clusterauth and docs/cluster-transport.md). Field numbers are
// part of the protocol: only append fields, never renumber.
//
// Regenerate with `go generate ./api/clusterpb` (protoc 3.21,
// protoc-gen-go v1.36.12, protoc-gen-go-grpc v1.5.1).
package clusterpb
