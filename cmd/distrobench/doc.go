// Distrobench is the load generator and benchmark-report tool of distro.
// It drives any Nacos-compatible naming server (distrod, Java Nacos,
// Polaris, r-nacos, ...) over the Nacos v1 HTTP Open API, shaped like the
// Nacos Go SDK: form-encoded requests over keep-alive connections. The
// load-generation core is internal/bench; this command is a thin CLI over
// it. --protocol v2 drives the Nacos 2 gRPC API instead (bench.GRPCDriver,
// on each target's port + --grpc-port-offset, default 1000): register,
// reregister, deregister, query, push and converge run over it (instances
// are connection-held, so always ephemeral; the register scenario puts
// each new instance in a service of its own); beat and mixed are refused.
//
// Usage:
//
//	distrobench --target host:port[,...] --scenario NAME [flags]
//	distrobench ceiling --port P [--body FILE | --capture URL] [--routes DIR]
//	distrobench fill --target host:port --instances N [--server-pid PID]
//	distrobench report --in DIR --out FILE [--img-dir DIR]
//	distrobench chart --in DIR --out DIR
//	distrobench summary --in DIR --scenario S [--server NAME]
//
// Scenarios: query, register, reregister, beat, deregister, mixed (80%
// query, 10% beat, 5% register, 5% deregister), converge (time from a
// write to its visibility on every node; two targets or more), and push
// (register to UDP push notification).
//
// The default is a closed loop of --concurrency workers. --rate N runs an
// open loop: requests are scheduled at fixed intervals, at most
// --max-outstanding are in flight, and latency is measured from each
// request's scheduled start, so a stalled server cannot hide its stall by
// slowing the load down (coordinated omission). Every loop is bounded by
// --duration and, optionally, --max-requests.
//
// With --server-pid, the server's CPU time (utime+stime from
// /proc/PID/stat) over the measured loop and its VmRSS/VmHWM
// (/proc/PID/status) are reported, and so requests per server
// CPU-second. --json writes the machine-readable result; the table goes to
// standard output; --progress draws a progress bar on standard error (by
// default only when it is a terminal).
//
// scripts/bench/run.sh runs the whole benchmark (servers pinned with
// taskset, A/B repetitions against the ceiling server, memory, a 3-node
// convergence run) and regenerates docs/benchmarks.md with the report
// subcommand. Errors go to standard error as one line ("distrobench: ...")
// and make the exit status 1.
package main
