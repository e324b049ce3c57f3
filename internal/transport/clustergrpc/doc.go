// Package clustergrpc carries Distro cluster traffic between members over
// gRPC.
//
// Client implements the engine's Transport (Call and Snapshot) and Server
// serves a Handler. Every message is a clusterpb.Request or
// clusterpb.Response serialized into the body of a clusterpb.Envelope that
// a clusterauth.Signer authenticates (HMAC-SHA256, 30 s skew window, nonce
// replay cache). The server verifies every envelope before anything else
// and never calls the Handler for one that fails; such calls are answered
// with codes.Unauthenticated, logged at a bounded rate and counted.
//
// Members are named by their identity ip:port, where port is the HTTP
// port; the cluster gRPC port is that port plus an offset (1001 by
// default, as in Nacos 2.x), see ClusterAddr. A Client keeps one
// long-lived grpc.ClientConn per peer, created on first use.
//
// Snapshots are streamed in bounded chunks (see clusterpb.Chunker), so the
// registry's size never meets a message-size limit.
//
// See docs/cluster-transport.md for the wire format.
package clustergrpc
