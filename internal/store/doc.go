// Package store is the in-memory registry: every service's instances as
// versioned records, merged as a lattice so that replication can apply them
// in any order, any number of times.
//
// Versioning. Every record carries a hybrid-logical-clock stamp and the node
// that issued it (the origin). Records are ordered by (stamp, origin, kind);
// the greater record wins a merge, so Merge is commutative, associative and
// idempotent. Deletions are tombstone records (KindDeleted) kept for a bounded
// period. Heartbeat timeouts do not issue fresh stamps: marking an instance
// unhealthy (KindUnhealthy) or expiring it (KindExpired) keeps the stamp and
// origin of the record the owner last saw and only raises the kind. Such a
// "weak" write therefore loses to any newer registration or renewal, which is
// what lets a fresher heartbeat on one side of a partition outrank an expiry
// made on the other side (hazard H6). A remote timeout of an instance this
// node holds evidence is alive for (SetVouch) is answered, inside the
// merge, with a renewal instead.
//
// Local-only annotations. A node may apply a timeout to its own listing
// only (AnnotateLocal): peers keep being served the version it annotates
// (the shadow), digests describe that served version, and the annotation
// is later published as a replicated change or reverted. That is how a
// node that cannot reach a majority of the members applies heartbeat
// timeouts without making them evidence against beats it never saw.
//
// Events. Every committed change to a service produces one Event with a new
// service revision. Revisions only grow (they come from one store-wide
// counter) and lastRefTime strictly increases per service. Subscribers
// (push, replication, expiry) register with OnChange before the store is
// used; they run on the writer's goroutine after the write has committed and
// must not block.
//
// Reads. View returns an immutable snapshot of a service, rebuilt lazily on
// the first read after a change, with a small cache that adapters use to keep
// rendered responses per revision.
//
// Concurrency. Services are spread over shards, each with its own RWMutex.
// No lock is held while subscribers run.
package store
