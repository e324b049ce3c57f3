// Package raftcp is the CP consistency protocol: persistent instances,
// service settings, durable tables (namespaces) and state-machine
// extensions (users, roles and permissions: internal/authcp) replicated
// with hashicorp/raft, behind the consistency seam (internal/consistency)
// that Distro shares.
//
// Pieces:
//
//   - FSM (fsm.go) applies log entries (command.go: a registry write, a
//     KV write or an extension's command, protobuf, validated like client
//     input) to the store's persistent part, to the KV tables and to the
//     registered Extensions (extension.go: named state machines with opaque
//     commands and state, fixed before Raft starts); snapshots stream
//     length-delimited items and are validated whole, extensions included,
//     before a restore changes anything.
//   - Node (node.go) owns the raft instance over raft-boltdb/v2 and a file
//     snapshot store in the data directory; its network transport runs over
//     the authenticated stream of internal/transport/raftstream (a
//     standalone node uses an in-memory transport: one voter, same code).
//     It bootstraps a whole-cluster first start, joins a running cluster
//     (non-voter first, promoted once caught up), and proposes writes
//     (forwarding to the leader over the cluster channel on a follower) and
//     read indexes. Its server id is the data dir's incarnation, not an
//     address.
//   - Membership (membership.go) maps server ids to members: every node
//     asks each listed member for its id over the cluster channel, the
//     transport resolves ids through that table (ServerAddr), and the
//     leader rewrites moved addresses and removes servers no member holds,
//     one change at a time; it also serves joins.
//   - Writer (writer.go) is the CP registry.Writer: prechecks that depend
//     on ephemeral data, then a proposal. KV implements consistency.KV.
//
// Goroutines: Raft's own; Node.Run (bootstrap/join, leader duties,
// catch-up tracking) and its identification loop. FSM methods run on Raft's FSM goroutine; the tables
// are guarded by FSM.mu for concurrent readers.
//
// docs/protocol.md §13 describes the design.
package raftcp
