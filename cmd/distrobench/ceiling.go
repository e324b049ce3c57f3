package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/bench"
)

func (c *cli) ceilingCmd() *cobra.Command {
	var (
		port      int
		bind      string
		bodyFile  string
		capture   string
		routesDir string
		routes    []string
		grpcOff   int
		pprofAddr string
	)
	cmd := &cobra.Command{
		Use:   "ceiling --port P [--body FILE | --capture URL] [--routes DIR] [--route 'METHOD /path=FILE']",
		Short: "Serve fixed bytes from a trivial net/http handler: the practical ceiling for a scenario",
		Long: `ceiling answers every request with fixed bytes and does nothing else. Run it where the
server under test runs (same core, same GOMAXPROCS) and drive it with the same distrobench
scenario: its throughput is the most any Go net/http server can do on that core, and the
server's figures are reported as a fraction of it.

The bytes come from --body FILE, or --capture URL (fetched once at start), default "ok".
--routes DIR loads the bodies a run saved with --capture-dir (one per method and path), and
--route 'METHOD /path=FILE' adds one route; routed requests get their own bytes.

It also serves the Nacos 2 gRPC API on port + --grpc-port-offset (0: off), with the same
transport options as distrod's, answering each request type with the answer a v2 run captured
into --routes DIR (ServerCheck and HealthCheck have built-in answers), so that v2 scenarios
have a ceiling too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			def := []byte("ok")
			var err error
			switch {
			case bodyFile != "" && capture != "":
				return errors.New("give --body or --capture, not both")
			case bodyFile != "":
				if def, err = os.ReadFile(bodyFile); err != nil {
					return err
				}
			case capture != "":
				if def, err = bench.CaptureURL(capture); err != nil {
					return err
				}
			}
			rm := map[string][]byte{}
			if routesDir != "" {
				if rm, err = bench.LoadRoutes(routesDir); err != nil {
					return err
				}
			}
			for _, r := range routes {
				key, file, ok := strings.Cut(r, "=")
				if !ok || !strings.Contains(key, " /") {
					return fmt.Errorf("--route %q: want 'METHOD /path=FILE'", r)
				}
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				rm[key] = b
			}
			if pprofAddr != "" {
				pl, err := net.Listen("tcp", pprofAddr)
				if err != nil {
					return err
				}
				pm := http.NewServeMux()
				pm.HandleFunc("/debug/pprof/", pprof.Index)
				pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
				ps := &http.Server{Handler: pm, ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = ps.Serve(pl) }()
				defer ps.Close()
			}
			h := bench.NewCeiling(def, rm)
			ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "ceiling: serving %d bytes (%d routes) on %s\n", len(def), len(rm), ln.Addr())
			if grpcOff != 0 {
				gr := bench.DefaultGRPCRoutes()
				if routesDir != "" {
					if cap, err := bench.LoadGRPCRoutes(routesDir); err == nil {
						for k, v := range cap {
							gr[k] = v
						}
					}
				}
				gln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(port+grpcOff)))
				if err != nil {
					_ = ln.Close()
					return err
				}
				gs := bench.NewGRPCCeiling(gr).NewServer()
				go func() { _ = gs.Serve(gln) }()
				defer gs.Stop()
				fmt.Fprintf(c.stderr, "ceiling: serving gRPC (%d request types) on %s\n", len(gr), gln.Addr())
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&port, "port", 8848, "HTTP port")
	fs.StringVar(&bind, "bind", "127.0.0.1", "address to listen on")
	fs.StringVar(&bodyFile, "body", "", "file whose bytes answer every request")
	fs.StringVar(&capture, "capture", "", "URL fetched once at start; its body answers every request")
	fs.StringVar(&routesDir, "routes", "", "directory of bodies captured by a run's --capture-dir")
	fs.StringArrayVar(&routes, "route", nil, "'METHOD /path=FILE': bytes for one method and path (repeatable)")
	fs.StringVar(&pprofAddr, "pprof-addr", "", "serve net/http/pprof on this address (to profile the ceiling)")
	fs.IntVar(&grpcOff, "grpc-port-offset", bench.DefaultGRPCPortOffset, "also serve the Nacos 2 gRPC API on port + offset (0: off)")
	return cmd
}

func (c *cli) fillCmd() *cobra.Command {
	var (
		cfg      bench.FillConfig
		jsonOut  string
		tags     []string
		progress string
	)
	cmd := &cobra.Command{
		Use:   "fill --target host:port --instances N [--server-pid PID] [--json FILE]",
		Short: "Memory per instance: register N persistent instances, let the heap settle, compare RSS and heap",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Tags, err = parseTags(tags); err != nil {
				return err
			}
			if cfg.Progress, err = c.progressFor(progress); err != nil {
				return err
			}
			res, err := bench.Fill(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOut != "" {
				if err := bench.WriteJSON(jsonOut, res); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.stdout, "registered %d of %d instances (%d errors) in %.1fs (%.0f/s)%s\n", res.Registered, res.Requested,
				res.Errors, res.FillSeconds, res.FillRateRPS, map[bool]string{true: "", false: " — INCOMPLETE (--max-time)"}[res.Complete])
			fmt.Fprintf(c.stdout, "rss %d → %d bytes: %.0f bytes/instance; live heap %d → %d bytes: %.0f bytes/instance (settled in %.1fs)\n",
				res.Before.RSSBytes, res.After.RSSBytes, res.RSSPerInstance, res.Before.HeapLiveBytes, res.After.HeapLiveBytes,
				res.HeapLivePerInstance, res.SettleSeconds)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Target, "target", "127.0.0.1:8848", "HTTP address of the server")
	fs.Int64Var(&cfg.Instances, "instances", 10000, "instances to register")
	fs.IntVar(&cfg.InstancesPerService, "instances-per-service", 10, "instances per service")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "concurrent registrations")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process id (VmRSS/VmHWM)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "Prometheus metrics with go_memstats (default http://TARGET/metrics; none to skip)")
	fs.DurationVar(&cfg.MaxTime, "max-time", 10*time.Minute, "bound on the registration phase")
	fs.DurationVar(&cfg.Settle, "settle", 30*time.Second, "bound on the wait for GC and RSS to settle")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&cfg.RunID, "run-id", "fill", "part of every service name")
	fs.StringArrayVar(&tags, "tag", nil, "key=value copied into the JSON result (repeatable)")
	fs.StringVar(&jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&progress, "progress", "auto", "progress bar: auto, always, never")
	fs.Lookup("progress").NoOptDefVal = "always"
	return cmd
}

func (c *cli) connsCmd() *cobra.Command {
	var (
		cfg      bench.ConnsConfig
		jsonOut  string
		tags     []string
		progress string
	)
	cmd := &cobra.Command{
		Use:   "conns --target host:port --connections N [--server-pid PID] [--json FILE]",
		Short: "Memory per connected Nacos 2 client: hold N set-up gRPC connections, compare RSS, heap and goroutines",
		Long: `conns opens N Nacos 2 client connections to the server's gRPC API (port + --grpc-port-offset),
each set up as a Nacos 2 client does (ServerCheck, bi-stream, ConnectionSetupRequest) with one
registered instance and one subscription, holds them while the server's heap settles, and
reports the growth of its RSS, live heap, goroutine stacks and goroutine count per connection.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Tags, err = parseTags(tags); err != nil {
				return err
			}
			if cfg.Progress, err = c.progressFor(progress); err != nil {
				return err
			}
			res, err := bench.MeasureConns(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOut != "" {
				if err := bench.WriteJSON(jsonOut, res); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.stdout, "connected %d of %d clients (%d errors) in %.1fs\n", res.Connected, res.Requested, res.Errors, res.SetupSeconds)
			fmt.Fprintf(c.stdout, "per connection: rss %.0f B, live heap %.0f B, stacks %.0f B, %.2f goroutines\n",
				res.RSSPerConn, res.HeapLivePerConn, res.StackPerConn, res.GoroutinesPerConn)
			if res.Connected < res.Requested {
				return fmt.Errorf("only %d of %d connections were set up", res.Connected, res.Requested)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Target, "target", "127.0.0.1:8848", "HTTP address of the server (gRPC is at port + --grpc-port-offset)")
	fs.IntVar(&cfg.GRPCPortOffset, "grpc-port-offset", bench.DefaultGRPCPortOffset, "the gRPC port is the target's port plus this")
	fs.IntVar(&cfg.Connections, "connections", 10000, "client connections to hold")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "connections set up at once")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process id (VmRSS/VmHWM)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "Prometheus metrics with go_memstats (default http://TARGET/metrics; none to skip)")
	fs.DurationVar(&cfg.Settle, "settle", 30*time.Second, "bound on the wait for GC and RSS to settle")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request and connection setup timeout")
	fs.DurationVar(&cfg.Hold, "hold", 0, "keep the connections open this long after measuring (to profile the server)")
	fs.StringVar(&cfg.RunID, "run-id", "conns", "part of every service name")
	fs.StringArrayVar(&tags, "tag", nil, "key=value copied into the JSON result (repeatable)")
	fs.StringVar(&jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&progress, "progress", "auto", "progress bar: auto, always, never")
	fs.Lookup("progress").NoOptDefVal = "always"
	return cmd
}
