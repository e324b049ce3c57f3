// Package sim is a deterministic simulation of a distro cluster: N real
// Distro engines (internal/distro, with their real stores and write paths)
// on one goroutine, over a simulated network and clock, driven by a seeded
// event loop. It measures how the protocol's costs grow with the number of
// nodes and instances, and checks the chaos invariants at scale. See
// docs/scale.md for the results and cmd/distrosim for the command.
//
// # What is real and what is modelled
//
// Real: the engine (sync task queues and batching, hand-on of writes to the
// owner, verification rounds with bucket and key digests, repairs, pull
// rounds, the chunked startup snapshot), the store and its merge, the write
// path (registry.Local), rendezvous ownership, and the protobuf messages,
// which are marshalled and unmarshalled on every hop so that byte counts are
// the wire's.
//
// Modelled:
//   - Time: one simulated clock. Engines are driven through their stepped
//     entry points (distro.Engine.EnableStepping), so nothing runs unless
//     the event loop runs it, and a run depends only on its Config.
//   - Network: each call is delivered after the pair's one-way latency
//     (the send is executed at its arrival time) and answered at once. A
//     call is lost with probability Config.Loss while faults are on, and
//     fails across a partition; the sender then sees the failure after the
//     call timeout, as a gRPC call into a black hole would.
//   - Membership: an oracle instead of probes. A peer that becomes
//     unreachable is SUSPICIOUS after 1 s and DOWN after 3 s (the defaults:
//     three 1 s probe rounds); a reachable one is UP again after 1 s. The
//     engine's own probe call still runs on every change, so peers learn
//     each other's readiness as in production.
//   - Clients: a compact model. Instance j of service i is a pure function
//     of (i, j); there is no client state besides one bit per instance for
//     the expected final state. Clients do not send heartbeats (heartbeat
//     expiry and connection leases are not simulated), so an instance
//     changes only when the workload writes it.
//
// # Determinism
//
// One seeded PCG source feeds every random choice, events are ordered by
// (time, sequence number), and the engine sorts the key lists whose map
// order would otherwise decide message contents. Two runs of one Config
// produce byte-identical reports (Report.Timing and the loads' CPU times,
// measured as process CPU time, are left out unless Config.Timing is set).
package sim
