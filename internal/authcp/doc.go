// Package authcp keeps the auth data (users, roles, permissions: the
// auth.State) on the CP consistency protocol, so that every node of a
// cluster takes changes and they are durable and linearizable, as Nacos
// keeps its users in its CP store.
//
// Store is both halves: an auth.Store for the Authority (State, Apply,
// Watch) and, through Extension, a state-machine extension of the Raft FSM
// (internal/raftcp): a change is proposed as a log entry (auth.EncodeChange
// behind a one-byte tag), every node applies it with the deterministic
// auth.State.Apply, and snapshots carry the whole State (auth.EncodeState,
// validated by auth.DecodeState before a restore changes anything).
//
// Seed installs a whole State in one entry, but only into an empty store:
// a node upgraded from the interim file store (auth.json) seeds it once,
// and when several nodes seed at the same moment the first to commit wins
// and the others change nothing.
package authcp
