package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/distro-registry/distro/internal/bench"
	"github.com/distro-registry/distro/internal/sim"
)

// chartCmd renders docs/scale.md's SVG charts from report files: the node
// sweep (reports with 10 000 instances, by node count) and the instance
// sweep (3-node reports, by instance count).
func chartCmd(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ExitOnError)
	out := fs.String("out", "docs/img/scale", "directory for the SVG files")
	_ = fs.Parse(args)
	var reps []*sim.Report
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		r := &sim.Report{}
		if err := json.Unmarshal(b, r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		reps = append(reps, r)
	}
	var byN, byM []*sim.Report
	for _, r := range reps {
		if r.Instances == 10000 {
			byN = append(byN, r)
		}
		if r.Nodes == 3 {
			byM = append(byM, r)
		}
	}
	slices.SortFunc(byN, func(a, b *sim.Report) int { return cmp.Compare(a.Nodes, b.Nodes) })
	slices.SortFunc(byM, func(a, b *sim.Report) int { return cmp.Compare(a.Instances, b.Instances) })
	nCat := func() []string {
		var c []string
		for _, r := range byN {
			c = append(c, strconv.Itoa(r.Nodes)+" nodes")
		}
		return c
	}()
	mCat := func() []string {
		var c []string
		for _, r := range byM {
			c = append(c, bench.CompactNumber(float64(r.Instances))+" instances")
		}
		return c
	}()
	vals := func(rs []*sim.Report, f func(*sim.Report) float64) []float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return v
	}
	prop := func(r *sim.Report, ph string, p99 bool) float64 {
		l := r.Propagation[ph]
		if l == nil {
			return math.NaN()
		}
		if p99 {
			return l.P99
		}
		return l.P50
	}
	timing := func(r *sim.Report) float64 {
		if r.Timing == nil {
			return math.NaN()
		}
		return r.Timing.VerifyMillisPerRoundPerNode
	}
	loadMs := func(r *sim.Report) float64 {
		if len(r.Loads) == 0 {
			return math.NaN()
		}
		return r.Loads[len(r.Loads)-1].CPUMillis
	}
	pal := bench.Palette
	charts := map[string]*bench.BarChart{
		"propagation.svg": {Title: "Time until a write is on every node (simulated)", YLabel: "milliseconds (log)", Log: true,
			Categories: nCat, Note: "10 000 instances; faults: 5% loss, an 8 s partition into halves, one node restarted",
			Series: []bench.ChartSeries{
				{Name: "calm p50", Color: pal[0], Values: vals(byN, func(r *sim.Report) float64 { return prop(r, "calm", false) })},
				{Name: "calm p99", Color: pal[4], Values: vals(byN, func(r *sim.Report) float64 { return prop(r, "calm", true) })},
				{Name: "faults p50", Color: pal[1], Values: vals(byN, func(r *sim.Report) float64 { return prop(r, "faults", false) })},
				{Name: "faults p99", Color: pal[5], Values: vals(byN, func(r *sim.Report) float64 { return prop(r, "faults", true) })},
			}},
		"bytes-per-change.svg": {Title: "Bytes on the wire per write (sync + hand-on)", YLabel: "bytes", Categories: nCat,
			Series: []bench.ChartSeries{{Name: "bytes per change", Color: pal[0], Values: vals(byN, func(r *sim.Report) float64 { return r.BytesPerChange })}}},
		"verify-bytes.svg": {Title: "Verification traffic per round per node (steady state)", YLabel: "bytes", Categories: nCat,
			Note:   "digests to every eligible peer plus one pull round, with replies",
			Series: []bench.ChartSeries{{Name: "bytes per round per node", Color: pal[2], Values: vals(byN, func(r *sim.Report) float64 { return r.Verify.BytesPerRoundPerNode })}}},
		"verify-cpu.svg": {Title: "Verification CPU time per round per node", YLabel: "milliseconds (log)", Log: true,
			Categories: append(slices.Clone(nCat), mCat...), Note: "one node's round, with the peers' handling of its digests; node sweep at 10k instances, instance sweep at 3 nodes",
			Series: []bench.ChartSeries{{Name: "ms per round per node", Color: pal[5], Values: append(vals(byN, timing), vals(byM, timing)...)}}},
		"snapshot.svg": {Title: "Startup snapshot of a joining node (3 nodes)", YLabel: "milliseconds / MiB (log)", Log: true, Categories: mCat,
			Series: []bench.ChartSeries{
				{Name: "load CPU ms", Color: pal[3], Values: vals(byM, loadMs)},
				{Name: "snapshot MiB", Color: pal[0], Values: vals(byM, func(r *sim.Report) float64 {
					if len(r.Loads) == 0 {
						return math.NaN()
					}
					return float64(r.Loads[len(r.Loads)-1].Bytes) / (1 << 20)
				})},
			}},
		"moved-share.svg": {Title: "Share of services that change owner when a member joins", YLabel: "share", Categories: nCat,
			Format: func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) },
			Series: []bench.ChartSeries{
				{Name: "measured", Color: pal[0], Values: vals(byN, func(r *sim.Report) float64 { return joinMove(r).Moved })},
				{Name: "1/(N+1)", Color: pal[7], Values: vals(byN, func(r *sim.Report) float64 { return joinMove(r).Expect })},
			}},
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, c := range charts {
		if err := os.WriteFile(filepath.Join(*out, name), c.SVG(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func joinMove(r *sim.Report) sim.Move {
	for i := len(r.Moves) - 1; i >= 0; i-- {
		if r.Moves[i].Phase == "join" {
			return r.Moves[i]
		}
	}
	return sim.Move{Moved: math.NaN(), Expect: math.NaN()}
}
