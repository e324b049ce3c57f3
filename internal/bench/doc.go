// Package bench is the load-generation core of distrobench: drivers that
// speak a Nacos client protocol (HTTPDriver for the v1 HTTP Open API,
// GRPCDriver for the Nacos 2 gRPC API), the scenarios
// (query, register, reregister, beat, deregister, mixed, converge, push),
// closed- and open-loop load loops, an HDR-like latency histogram, /proc
// readers for server CPU and memory, the ceiling server, the memory fill,
// and the report and SVG chart generators that turn JSON results into
// docs/benchmarks.md.
//
// The open loop schedules request i at start + i/rate and measures its
// latency from that scheduled time, with a bound on outstanding requests;
// a server that stalls therefore shows the stall in every request that
// queued behind it, instead of silently slowing the load down
// (coordinated omission).
package bench
