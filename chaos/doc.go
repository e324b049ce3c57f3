// Package chaos is distro's fault-injection suite: real distrod binaries in
// Linux network namespaces, a recorded client workload, and a set-full style
// checker of the invariants I1–I10 of docs/reliability.md.
//
// The pieces:
//
//   - Lab (lab.go) builds namespaces n1..nN and a client namespace on one
//     bridge, with a random name prefix and a free 10.88.X.0/24 subnet, and
//     injects network faults with nftables and tc: symmetric cuts,
//     one-way reachability, isolation, client-only cuts, random loss and
//     tbf rate limits. tc netem is not available on the reference kernel.
//   - Node (node.go) runs one distrod per namespace with compressed
//     timings and supports SIGKILL+restart and SIGSTOP/SIGCONT.
//   - The workload (chaos/workload, a separate binary run in the client
//     namespace) simulates Nacos v1 clients and writes a JSON-lines
//     history (chaos/history).
//   - Observer (observe.go) reads every node from the root namespace through
//     the bridge address, so client-side faults never blind it.
//   - Check (checker.go) judges a scenario from the history, the observer's
//     samples and the nemesis log.
//   - The scenarios F1–F14 are Go tests (scenarios_test.go), skipped unless
//     CHAOS=1 and running as root with ip, nft and tc: the normal
//     "go test ./..." runs only the checker's own unit tests.
//
// Run it with "make chaos" (full matrix) or "make chaos-short" (CI subset),
// both through chaos/run.sh. Every scenario prints one PASS/FAIL line with
// its figures; a failing scenario keeps its history, samples, nemesis log,
// checker report and node logs under chaos-results/<time>/<scenario>/.
//
// Safety: traffic goes only to loopback and to the namespaces a lab creates;
// every load loop is bounded in time; every process the suite starts dies
// with it (Pdeathsig) and is recorded under /run/distro-chaos/<lab>/, so a
// later run (or run.sh's exit trap) removes what a killed run left behind,
// signalling only recorded pids whose command line is distrod or the
// workload.
package chaos
