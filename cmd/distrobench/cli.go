package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/bench"
)

// cli is one invocation: its output streams and the root command. Tests
// build one with buffers and call run.
type cli struct {
	stdout, stderr io.Writer
	// isTerminal reports whether stderr is a terminal (for --progress=auto).
	isTerminal func() bool
}

func newCLI(stdout, stderr io.Writer) *cli {
	c := &cli{stdout: stdout, stderr: stderr}
	c.isTerminal = func() bool {
		f, ok := stderr.(*os.File)
		return ok && bench.IsTerminal(f)
	}
	return c
}

// run executes args and returns the exit status; errors go to stderr as
// one line.
func (c *cli) run(ctx context.Context, args []string) int {
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(c.stderr, "distrobench: "+strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
		return 1
	}
	return 0
}

// runFlags are the flags of a load run (the root command).
type runFlags struct {
	targets        []string
	scenario       string
	duration       time.Duration
	warmup         time.Duration
	concurrency    int
	rate           float64
	maxOutstanding int
	maxRequests    int64
	services       int
	perService     int
	ephemeral      bool
	cleanup        bool
	timeout        time.Duration
	serverPIDs     []int
	backgroundRate float64
	pollInterval   time.Duration
	visibleTimeout time.Duration
	mix            string
	subscribers    int
	seed           uint64
	runID          string
	tags           []string
	captureDir     string
	jsonOut        string
	progress       string
	quiet          bool
	netHTTP        bool
	protocol       string
	grpcPortOffset int
}

func (c *cli) rootCmd() *cobra.Command {
	var f runFlags
	root := &cobra.Command{
		Use:   "distrobench --target host:port[,...] --scenario NAME [flags]",
		Short: "Load generator for Nacos-compatible naming servers (distro, Nacos, Polaris, ...)",
		Long: `distrobench drives a Nacos-compatible naming server over the Nacos v1 HTTP API (or, with
--protocol v2, the Nacos 2 gRPC API) and reports
throughput, latency percentiles, errors by kind and, with --server-pid, the server's CPU time
and memory (so a run yields requests per server CPU-second).

Scenarios: ` + strings.Join(bench.Scenarios, ", ") + `.
Closed loop by default (--concurrency workers); --rate N switches to an open loop that schedules
requests at fixed intervals and measures latency from the scheduled time (no coordinated omission).

Subcommands: ceiling (the trivial reference servers, HTTP and gRPC), fill (bytes per instance),
conns (bytes per connected v2 client), report and chart
(docs/benchmarks.md from JSON results), summary (a median for scripts).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runBench(cmd, &f)
		},
	}
	fs := root.Flags()
	fs.StringSliceVar(&f.targets, "target", nil, "HTTP address host:port of each server (comma-separated or repeated)")
	fs.StringVar(&f.scenario, "scenario", "query", "one of "+strings.Join(bench.Scenarios, ", "))
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured duration (every loop is also bounded by --max-requests)")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "unrecorded warmup before the measured loop")
	fs.IntVar(&f.concurrency, "concurrency", 50, "closed-loop workers (connections)")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: requests per second, scheduled at fixed intervals (0: closed loop)")
	fs.IntVar(&f.maxOutstanding, "max-outstanding", 0, "open loop: bound on requests in flight (default --concurrency)")
	fs.Int64Var(&f.maxRequests, "max-requests", 0, "stop after this many measured requests (0: --duration only)")
	fs.IntVar(&f.services, "services", 1000, "services in the pre-registered pools (and spread of new registrations)")
	fs.IntVar(&f.perService, "instances-per-service", 10, "pre-registered instances per service")
	fs.BoolVar(&f.ephemeral, "ephemeral", false, "register, deregister and mixed: write ephemeral instead of persistent instances (distrod commits persistent ones through Raft)")
	fs.BoolVar(&f.cleanup, "cleanup", true, "deregister everything the run registered (set false when the server is discarded anyway)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.IntSliceVar(&f.serverPIDs, "server-pid", nil, "server process id(s): report CPU seconds (/proc/PID/stat) and RSS (/proc/PID/status)")
	fs.Float64Var(&f.backgroundRate, "background-rate", 0, "converge: background writes per second (re-registrations with changing metadata)")
	fs.DurationVar(&f.pollInterval, "poll-interval", 5*time.Millisecond, "converge: how often every other node is polled")
	fs.DurationVar(&f.visibleTimeout, "visible-timeout", 10*time.Second, "converge/push: give up on a sample after this long")
	fs.StringVar(&f.mix, "mix", bench.DefaultMix, "mixed: operation weights")
	fs.IntVar(&f.subscribers, "subscribers", bench.DefaultFanoutSubscribers, "fanout: subscribers of the service, each on a connection of its own")
	fs.Uint64Var(&f.seed, "seed", 0, "random seed (0: time-based)")
	fs.StringVar(&f.runID, "run-id", "", "part of every service name (default random), so runs never collide")
	fs.StringArrayVar(&f.tags, "tag", nil, "key=value copied into the JSON result (repeatable)")
	fs.StringVar(&f.captureDir, "capture-dir", "", "save the first response body of each request kind here (for ceiling --routes)")
	fs.StringVar(&f.jsonOut, "json", "", "write the result as JSON to this file (- for stdout)")
	fs.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (if a terminal), always, never")
	fs.Lookup("progress").NoOptDefVal = "always"
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "do not print the table")
	fs.BoolVar(&f.netHTTP, "net-http", false, "send requests through net/http's http.Transport instead of the lean keep-alive client (about twice the client CPU per request)")
	fs.StringVar(&f.protocol, "protocol", "v1", "client protocol: v1 (HTTP Open API) or v2 (Nacos 2 gRPC on each target's port + --grpc-port-offset; no beat or mixed)")
	fs.IntVar(&f.grpcPortOffset, "grpc-port-offset", bench.DefaultGRPCPortOffset, "v2: the gRPC port is each --target's HTTP port plus this")
	root.AddCommand(c.ceilingCmd(), c.fillCmd(), c.connsCmd(), c.reportCmd(), c.chartCmd(), c.summaryCmd())
	return root
}

// parseTags turns key=value strings into a map.
func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--tag %q: want key=value", t)
		}
		m[k] = v
	}
	return m, nil
}

func (c *cli) progressFor(mode string) (*bench.Progress, error) {
	switch mode {
	case "auto":
		return bench.NewProgress(c.stderr, c.isTerminal()), nil
	case "always":
		return bench.NewProgress(c.stderr, true), nil
	case "never":
		return nil, nil
	}
	return nil, fmt.Errorf("--progress %q: want auto, always or never", mode)
}

func (c *cli) runBench(cmd *cobra.Command, f *runFlags) error {
	fs := cmd.Flags()
	tags, err := parseTags(f.tags)
	if err != nil {
		return err
	}
	prog, err := c.progressFor(f.progress)
	if err != nil {
		return err
	}
	cfg := bench.Config{
		Targets: f.targets, Scenario: f.scenario, Duration: f.duration, Warmup: f.warmup, Concurrency: f.concurrency,
		Rate: f.rate, MaxOutstanding: f.maxOutstanding, MaxRequests: f.maxRequests, Services: f.services,
		InstancesPerService: f.perService, Ephemeral: f.ephemeral, Cleanup: f.cleanup, Timeout: f.timeout,
		ServerPIDs: f.serverPIDs, BackgroundRate: f.backgroundRate, PollInterval: f.pollInterval,
		VisibleTimeout: f.visibleTimeout, Mix: f.mix, Subscribers: f.subscribers, Seed: f.seed, RunID: f.runID, Tags: tags,
		CaptureDir: f.captureDir, Progress: prog, StdTransport: f.netHTTP, Protocol: f.protocol,
		GRPCPortOffset: f.grpcPortOffset,
	}
	if f.grpcPortOffset == 0 {
		return errors.New("--grpc-port-offset: must not be 0 (the gRPC listener cannot share the HTTP port)")
	}
	// converge and push measure propagation, not overload: unless told
	// otherwise they take a bounded number of samples at a modest rate.
	if f.scenario == "converge" || f.scenario == "push" {
		if !fs.Changed("rate") {
			cfg.Rate = 50
		}
		if !fs.Changed("max-requests") {
			cfg.MaxRequests = 1000
		}
		if !fs.Changed("duration") {
			cfg.Duration = time.Duration(float64(cfg.MaxRequests)/cfg.Rate*float64(time.Second)) + time.Second
		}
		if !fs.Changed("warmup") {
			cfg.Warmup = time.Second
		}
		if f.scenario == "converge" && !fs.Changed("services") {
			cfg.Services = 100 // background pool: 100 services × --instances-per-service
		}
	}
	// fanout: a few samples, one at a time; each one is a push to every
	// subscriber.
	if f.scenario == "fanout" {
		if !fs.Changed("rate") {
			cfg.Rate = 2
		}
		if !fs.Changed("max-requests") {
			cfg.MaxRequests = 20
		}
		if !fs.Changed("duration") {
			cfg.Duration = time.Duration(float64(cfg.MaxRequests)/cfg.Rate*float64(time.Second)) + 5*time.Second
		}
		if !fs.Changed("warmup") {
			cfg.Warmup = 0
		}
		if !fs.Changed("concurrency") {
			cfg.Concurrency = 1
		}
	}
	if f.jsonOut != "" && f.jsonOut != "-" {
		// Fail before the run, not after it.
		fh, err := os.OpenFile(f.jsonOut, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		fh.Close()
	}
	res, err := bench.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if f.jsonOut != "" {
		if err := bench.WriteJSON(f.jsonOut, res); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if !f.quiet && f.jsonOut != "-" {
		if err := bench.WriteTable(c.stdout, res); err != nil {
			return err
		}
	}
	if res.Requests == 0 {
		return errors.New("no request completed")
	}
	return nil
}
