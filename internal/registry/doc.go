// Package registry is the write path: it turns client operations (register,
// deregister, update, patch, beat, service and cluster settings) and
// server-side health check verdicts into store transactions, with the Nacos
// semantics for each, and runs heartbeat expiry for the instances this node
// owns. Local also publishes ownership changes (OnOwnership) to components
// that, like the health checker, act only for owned keys.
//
// Every entry point (HTTP v1, gRPC v2, a write handed on by a peer) builds an
// Op and calls a Writer. Local applies it here; the cluster layer wraps Local
// in a Writer that hands the Op to the key's owner first. Op is a plain value
// so that it can cross the cluster connection unchanged.
//
// Heartbeat timeouts are confirmed before they become replicated versions
// (confirm.go): the owner asks the members (a Confirmer, the Distro engine)
// whether any of them handled a real beat of the instance within the
// timeout. Evidence refutes the timeout; without answers from a majority
// the timeout is applied to this node's listing only until a majority
// answers (docs/protocol.md §8).
package registry
