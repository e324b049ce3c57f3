// Package consistency is the seam between the write path and the two
// consistency protocols, as Nacos 1.3 abstracted it: every client write
// goes through one Router, which hands
//
//   - ephemeral data (heartbeat-kept and connection-held instances) to the
//     AP protocol, Distro (internal/distro; registry.Local standalone), and
//   - persistent data (ephemeral=false instances, service settings) to the
//     CP protocol, Raft (internal/raftcp), whose writes are linearizable
//     and durable.
//
// Data that is not per service goes through the CP protocol too:
// namespaces through the KV interface (durable tables, read locally, with
// Sync for a linearizable read), users, roles and permissions as a
// state-machine extension of the Raft log (internal/authcp).
//
// Both protocols share the member lookup (internal/member): Distro's
// owners and Raft's voters come from the same list.
package consistency
