// Package wire converts between the registry's types (model, registry.Op)
// and their cluster protocol messages (api/clusterpb). Everything decoded
// is validated with the same rules as client input: an authenticated peer,
// or a Raft log entry written by an older release, can still be wrong.
//
// Both consistency protocols use it: Distro for records and handed-on
// writes, Raft (internal/raftcp) for the commands of its log.
package wire
