// Package distro implements the Distro protocol: the AP replication of
// ephemeral registry data that Nacos's naming service uses, with Nacos's
// known defects fixed.
//
// # The protocol in one page
//
// Every node stores all data. Each service key (namespace, group, service)
// has exactly one responsible node, computed by Owner from the node's view
// of the eligible (UP and SUSPICIOUS) members with rendezvous hashing.
//
//   - Writes. Engine.Apply hands a client write for a key this node does not
//     own to the owner over the cluster connection and returns the owner's
//     answer. A handed-on write is applied by the receiver, never handed on
//     again. If the owner cannot be reached, the write is applied locally:
//     a write to any reachable node succeeds.
//   - Versions. Records carry hybrid-logical-clock stamps and their origin;
//     merging is a lattice join (see package store), so sync, verification
//     and snapshots can deliver records in any order, duplicated or batched,
//     and an older version never overwrites a newer one.
//   - Incremental sync. Every local change schedules a delayed task per
//     (key, peer). Tasks merge by key and keep their first deadline
//     (SyncDelay, tens of milliseconds). One goroutine per peer sends due
//     tasks in size-bounded batches, reading the records' current versions
//     at send time, and backs off exponentially on failure. DOWN peers get
//     no tasks: they catch up through verification.
//   - Verification. Every VerifyInterval each node sends each eligible peer
//     bucket sums of the digests of the keys it owns; differing buckets are
//     narrowed to keys, and the peer fetches and merges the owner's records
//     for those keys and pushes back what it holds that is newer. A peer
//     that becomes eligible again gets such a round (and a pull) at once.
//   - Startup. A node loads a chunked snapshot from one ready peer, merging
//     it with writes it accepted meanwhile. Until then it owns nothing (so
//     it expires nothing), sends no verification and serves no snapshot.
//   - Liveness. Heartbeat expiry runs on the owner only (registry.Local).
//     A node that gains a key gives each of its instances a full grace
//     period. Before a timeout is replicated, the owner asks every eligible
//     peer (Confirm) whether it handled a real beat of the instance within
//     the timeout (a peer whose view names another owner it reaches asks
//     that owner too); evidence refutes it, and without answers from a
//     majority of the members the timeout stays local to the owner's
//     listing.
//     Timeouts are weak versions that any renewal outranks, and a node
//     holding evidence refutes a peer's timeout inside the merge, so a
//     partition cannot delete instances whose clients kept beating on the
//     other side.
//   - Connection-held instances (Nacos 2 gRPC clients) are owned by the node
//     holding the connection; peers drop them a bounded lease after that
//     node becomes unreachable.
//
// # Goroutines
//
// Run starts: the load loop (until ready), the verify loop, the lease loop,
// and one send loop per peer. Change events from the store arrive on the
// writer's goroutine (onChange only enqueues). Handler methods run on the
// transport's goroutines. Repairs run in a background goroutine, at most one
// per peer at a time.
//
// An engine can instead be driven without goroutines (EnableStepping and the
// Step* entry points in step.go): the deterministic simulator (internal/sim)
// runs many engines on one goroutine that way, on simulated time.
//
// # Locks
//
// Engine.mu guards the peer table and is never held while calling the
// store or the transport. peer.mu guards one task queue. The store's locks
// are never held while engine code runs (store subscribers are called after
// unlock).
//
// docs/protocol.md describes the design decisions and how they differ from
// Nacos.
package distro
