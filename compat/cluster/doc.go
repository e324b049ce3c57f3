// Package cluster holds multi-process cluster tests: three (then four)
// distrod processes on loopback sharing one cluster.conf, driven by
// nacos-sdk-go v1.1.6 clients that are each given every server.
package cluster
