// Package healthcheck runs the server-side health checks of persistent
// instances, as Nacos does: persistent (ephemeral=false) instances send no
// heartbeats, so the node responsible for their service probes them with a
// TCP connect or an HTTP GET, as their cluster's health checker says
// (model.ClusterMeta, set with PUT /v1/ns/cluster), and records the result.
//
// # Who checks
//
// Exactly the Distro owner of the service (registry.Local.Owns): the
// Checker follows ownership changes (registry.Local.OnOwnership), so when a
// key moves, the new owner loads its persistent instances and the old one
// drops them, discarding any check in flight. A node that has not finished
// its startup load owns nothing and checks nothing. While two nodes'
// views differ for a moment both may check a key; their verdicts are the
// same kind of idempotent write, and the merge keeps one.
//
// # Scheduling
//
// One indexed min-heap holds every target by due time; one goroutine pops
// due targets every Tick and hands them to a bounded pool of workers. There
// is no goroutine or timer per instance, and a tick costs O(due · log n).
// A new target's first check is at a random point of its first interval,
// later ones one interval (± Jitter) apart; a target is out of the heap
// while its check is in flight, so checks of one instance never overlap.
// When the pool is saturated, due checks wait for the next tick (counted as
// late).
//
// # Verdicts and writes
//
// Results are counted per instance (judge.go): Threshold consecutive
// failures mark a healthy instance unhealthy, Threshold consecutive
// successes restore it. Nothing is written while the results agree with the
// stored state, so steady state costs no writes and a flapping instance
// causes at most one write per Threshold checks. A change is written as a
// registry.OpSetHealth through the node's Writer, the same write path (and
// replication) every persistent write takes. Workers never write: they
// queue the verdict (the latest per target wins) for one writer goroutine,
// which retries a failed write after a pause that doubles up to
// writeRetryMax, so a Raft without quorum stalls no check. In the Distro store an
// unhealthy verdict is a weak version (the checked version's stamp, kind
// unhealthy) and a restore a renewal just above it, so a client write made
// since the check always wins.
//
// # Safety
//
// A probe only connects to the registered instance address: its ip and
// either its port or the cluster's checkPort. HTTP checks use a path
// validated to be a plain absolute path, no proxy, no redirects followed
// (a 3xx is judged by its code), a dialer that refuses any other address,
// bounded response headers and at most MaxResponseBytes of body. Every
// connection, TCP or HTTP, is also subject to the address policy
// (Config.Addrs, internal/addrpolicy), decided on the address dialled
// before any packet is sent: by default no link-local or cloud metadata
// address, so that registering an instance cannot make the server probe
// internal services. Loopback addresses are allowed by default (tests rely
// on them).
//
// docs/health-checks.md describes the behaviour and its differences from
// Nacos.
package healthcheck
