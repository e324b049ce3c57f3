package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/distro-registry/distro/internal/bench"
)

func (c *cli) reportCmd() *cobra.Command {
	var (
		in, out, imgDir string
		opts            bench.ReportOptions
	)
	cmd := &cobra.Command{
		Use:   "report --in DIR --out FILE [--img-dir DIR]",
		Short: "Write the benchmark report (markdown) and its SVG charts from a directory of JSON results",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			col, err := bench.LoadCollection(in)
			if err != nil {
				return err
			}
			if len(col.Runs) == 0 && len(col.Memory) == 0 {
				return fmt.Errorf("no results in %s", in)
			}
			if imgDir != "" {
				if _, err := bench.WriteCharts(col, imgDir); err != nil {
					return err
				}
			}
			// Sections measured by other scripts (scripts/bench/raft.sh).
			if extra, err := os.ReadFile(filepath.Join(in, "raft.md")); err == nil {
				opts.Extra = string(extra)
			}
			var b bytes.Buffer
			if err := bench.WriteReport(&b, col, opts); err != nil {
				return err
			}
			if out == "-" {
				_, err = c.stdout.Write(b.Bytes())
				return err
			}
			return os.WriteFile(out, b.Bytes(), 0o644)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&in, "in", "docs/bench-results", "directory of JSON results (and meta.json)")
	fs.StringVar(&out, "out", "docs/benchmarks.md", "markdown file to write (- for stdout)")
	fs.StringVar(&imgDir, "img-dir", "docs/img", "directory for the SVG charts (empty: none)")
	fs.StringVar(&opts.ImgPath, "img-link", "img", "path of the charts as linked from the markdown")
	fs.StringVar(&opts.ResultsPath, "results-link", "docs/bench-results", "path of the JSON results as named in the markdown")
	fs.StringVar(&opts.Command, "command", "make bench-report", "the command that regenerates the report")
	return cmd
}

func (c *cli) chartCmd() *cobra.Command {
	var in, out string
	cmd := &cobra.Command{
		Use:   "chart --in DIR --out DIR",
		Short: "Render SVG charts (throughput, CPU efficiency, latency percentiles, convergence) from JSON results",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			col, err := bench.LoadCollection(in)
			if err != nil {
				return err
			}
			files, err := bench.WriteCharts(col, out)
			for _, f := range files {
				fmt.Fprintln(c.stdout, f)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&in, "in", "docs/bench-results", "directory of JSON results")
	cmd.Flags().StringVar(&out, "out", "docs/img", "directory for the SVG files")
	return cmd
}

func (c *cli) summaryCmd() *cobra.Command {
	var in, scenario, server, series, field string
	cmd := &cobra.Command{
		Use:   "summary --in DIR --scenario S [--server NAME] [--series closed] [--field throughput]",
		Short: "Print the median of one figure over a group of results (for scripts)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			col, err := bench.LoadCollection(in)
			if err != nil {
				return err
			}
			fields := map[string]func(*bench.Result) float64{
				"throughput": bench.FThroughput, "p50": bench.FP50, "p99": bench.FP99, "per-cpu": bench.FPerCPU,
			}
			f, ok := fields[field]
			if !ok {
				return fmt.Errorf("--field %q: want throughput, p50, p99 or per-cpu", field)
			}
			g := col.Find(scenario, server, series)
			if g == nil {
				return errors.New("no results for " + strings.Join([]string{scenario, server, series}, "/"))
			}
			fmt.Fprintf(c.stdout, "%.0f\n", g.Stat(f).Median)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&in, "in", "docs/bench-results", "directory of JSON results")
	fs.StringVar(&scenario, "scenario", "query", "scenario")
	fs.StringVar(&server, "server", "distrod", "server tag")
	fs.StringVar(&series, "series", "closed", "series tag (or loop mode)")
	fs.StringVar(&field, "field", "throughput", "throughput, p50, p99 or per-cpu")
	return cmd
}
