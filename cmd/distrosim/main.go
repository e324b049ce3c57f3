// Command distrosim runs the deterministic cluster simulation (internal/sim):
// real Distro engines over a simulated network and clock. It prints the
// report as JSON on stdout and a summary table on stderr; it exits 1 if an
// invariant was violated. "distrosim chart --out DIR REPORT.json..." renders
// the SVG charts of docs/scale.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/distro-registry/distro/internal/sim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "chart" {
		if err := chartCmd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "distrosim chart:", err)
			os.Exit(1)
		}
		return
	}
	cfg := sim.DefaultConfig()
	flag.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "cluster size N")
	flag.IntVar(&cfg.Services, "services", cfg.Services, "services")
	flag.IntVar(&cfg.PerService, "per-service", cfg.PerService, "instances per service (M = services × per-service)")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same seed and flags give the same report")
	flag.Float64Var(&cfg.ChangeRate, "rate", cfg.ChangeRate, "client writes per simulated second")
	flag.DurationVar(&cfg.Calm, "calm", cfg.Calm, "change phase without faults")
	flag.DurationVar(&cfg.Faults, "faults", cfg.Faults, "change phase with loss, a partition and churn")
	flag.DurationVar(&cfg.Settle, "settle", cfg.Settle, "quiet time after the heal before the invariants are checked")
	flag.Float64Var(&cfg.Loss, "loss", cfg.Loss, "probability that a call is lost during the fault phase")
	flag.DurationVar(&cfg.Partition, "partition", cfg.Partition, "length of a partition into two halves at the start of the fault phase (0: none)")
	flag.IntVar(&cfg.Churn, "churn", cfg.Churn, "nodes that crash and restart empty during the fault phase")
	flag.BoolVar(&cfg.Join, "join", cfg.Join, "add a member at the end and measure its snapshot load")
	flag.DurationVar(&cfg.Latency, "latency", cfg.Latency, "mean one-way network latency")
	flag.BoolVar(&cfg.Timing, "timing", false, "also measure process CPU time of verification rounds and loads (not deterministic)")
	flag.Parse()
	rep, err := sim.Run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "distrosim:", err)
		os.Exit(2)
	}
	os.Stdout.Write(rep.JSON())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprint(os.Stderr, rep.Table())
	fmt.Fprintf(os.Stderr, "heap in use %.0f MiB, total allocated %.0f MiB\n", float64(ms.HeapInuse)/(1<<20), float64(ms.TotalAlloc)/(1<<20))
	if len(rep.Violations) > 0 {
		for _, v := range rep.Violations {
			fmt.Fprintln(os.Stderr, "VIOLATION", v)
		}
		os.Exit(1)
	}
}
