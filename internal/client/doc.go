// Package client is a small Go client for the Nacos naming HTTP v1 API
// (/nacos/v1/ns/...) as served by distro, plus the few operator endpoints
// (/nacos/v1/core/cluster/nodes, /readyz) that distroctl needs.
//
// It exists so that distroctl is built on a public SDK, the way the serf CLI
// is built on serf's client package: every CLI command is one method call
// here, and anything the CLI can do a Go program can do the same way.
//
// # Servers and failover
//
// A Client is given several servers as host:port (the HTTP port; the Nacos
// context path /nacos is added). It behaves like a Nacos client over a
// server list:
//
//   - each call starts at a random server (the order is a fresh random
//     permutation per call, so load spreads and no server is special);
//   - a transport error or an HTTP 5xx answer makes the call move on to the
//     next server of the permutation, so each server is tried at most once
//     per call;
//   - a 4xx answer is definitive: the call stops and returns an *APIError
//     with the status, the server's message text and the server's address.
//
// Retrying writes on another server is safe because every write this package
// sends is idempotent in Nacos (register is an upsert, deregister of an
// unknown instance succeeds, a beat refreshes a timestamp).
//
// When no server answered usably, the error matches ErrUnavailable with
// errors.Is, names every server tried and why it failed (on one line), and
// errors.As still finds a server's *APIError if one answered 5xx.
//
// # Timeouts
//
// WithTimeout bounds each attempt on one server (default 5 s), not the whole
// call: a server that hangs costs one timeout and the call moves on. The
// context passed to a method bounds the whole call and stops failover as
// soon as it is done.
//
// # Concurrency
//
// A Client is safe for concurrent use by multiple goroutines.
package client
