// Package member knows who is in the cluster and which of them are alive,
// as seen from this node. It supplies the Distro engine with a View: the
// member list, each peer's State, and the Eligible list that ownership is
// computed from. See docs/membership.md for the operator's view.
//
// It has four parts:
//
//   - Parsing (ParseMembers, ParseAddress): the Nacos cluster.conf format,
//     normalised so that every node renders an entry as the same "host:port"
//     identity.
//   - Lookups (Standalone, Static, File, AddressServer, DNS): where the
//     configured list comes from; each reports the full list on every change.
//   - Self identity (ResolveSelf): which entry is this node, decided strictly
//     at startup (hazard H13).
//   - Health: probes every peer every second from this node, and only from
//     this node (hazard H14), through a state machine UP / SUSPICIOUS / DOWN
//     with Lifeguard-style pause protection (hazard H8). The state machine
//     (peerHealth) and the pause detector (pauseGuard) are pure and take
//     explicit times; Health is the thin loop around them.
//
// # Goroutines
//
//   - FileLookup.Start leaves one goroutine watching the directory (fsnotify)
//     until its context ends.
//   - AddressServerLookup.Start and DNSLookup.Start each leave one goroutine
//     polling until their context ends.
//   - Health.Run is the health goroutine. Each probe round runs in one extra
//     goroutine that starts one goroutine per peer, at most
//     Config.MaxConcurrentProbes probing at once. Rounds never overlap: a tick
//     that arrives while a round runs is skipped. Run returns only after the
//     round in flight has finished.
//   - ServeAddressServer runs an http.Server until its context ends.
//
// # Concurrency contract
//
//   - A Lookup calls onChange serially: first from Start's caller, then from
//     its own goroutine. Health.SetMembers is a suitable onChange; when the
//     Health can only be built after the first list (to resolve self), use
//     Forwarder.OnChange and Forwarder.Attach.
//   - Health's methods are safe for concurrent use. Run must be called once.
//   - Subscribe callbacks run on the health goroutine, one at a time, in
//     increasing Epoch order, and must not block long. They may call Snapshot
//     and View, but must not wait for anything the health goroutine does.
//   - Prober.Probe is called concurrently for different peers and must honour
//     its context's deadline.
//   - A View is immutable once published; its Members slice must not be
//     modified.
//
// Health takes a clock.Clock; Now must carry a monotonic reading, since pause
// detection compares successive readings.
package member
