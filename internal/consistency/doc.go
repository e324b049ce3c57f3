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
// Data that is not per service (namespaces now, users and roles later)
// goes through the KV interface: durable tables replicated by the CP
// protocol, read locally, with Sync for a linearizable read.
//
// Both protocols share the member lookup (internal/member): Distro's
// owners and Raft's voters come from the same list.
package consistency
