// Package v2 tests github.com/nacos-group/nacos-sdk-go/v2 v2.3.5 (Nacos 2
// gRPC for ephemeral instances, pushes on the bi-stream) against real
// distrod processes: one standalone node, and three-node clusters in which
// clients are pinned to different nodes.
package v2
