// Package health tracks heartbeats of ephemeral, heartbeat-kept instances on
// the node that owns them, and reports which ones have missed their
// deadlines.
//
// There is no goroutine or timer per instance. Tracked instances sit in one
// indexed min-heap ordered by their next deadline; a beat moves one entry
// (O(log n)), and a scan pops only the entries that are due, so the work per
// tick grows with the number of instances that actually time out, not with
// the number tracked.
//
// Time is virtual: the tracker measures on the monotonic clock and, when it
// notices that its own process was paused or starved (a tick arriving far
// later than scheduled), it stops virtual time for the length of the pause.
// A node waking from SIGSTOP or a long GC therefore gives every instance the
// time it lost instead of expiring them all at once (hazard H8).
//
// A cap on expirations per window (Eureka's self-preservation, hazard H7)
// keeps a node that lost contact with its clients from deleting most of what
// it owns in one sweep.
//
// Evidence. Besides deadlines, the tracker keeps the time of the last real
// heartbeat (or registration) this node handled for each instance, owned
// or not: a node that applied a beat without owning the key (the owner was
// unreachable) witnesses it, and a node that loses a key keeps what it saw.
// Owners ask for that evidence before timing an instance out, and a peer's
// timeout is refuted with it (docs/protocol.md §8). Entries that only hold
// evidence are dropped a delete timeout after their beat.
package health
