package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ReportOptions shapes the generated markdown.
type ReportOptions struct {
	// ImgPath is how the markdown links the charts (relative to the
	// markdown file), e.g. "img".
	ImgPath string
	// ResultsPath is how the markdown refers to the raw JSON directory.
	ResultsPath string
	// Command is the exact command that regenerates the report.
	Command string
	// Extra is markdown inserted before the method section: sections
	// measured by other scripts (the Raft figures of scripts/bench/raft.sh,
	// kept in the results directory as raft.md).
	Extra string
}

// Chart file names written by WriteCharts.
const (
	ChartThroughput  = "bench-throughput.svg"
	ChartCPU         = "bench-cpu.svg"
	ChartLatency     = "bench-latency.svg"
	ChartOpenLatency = "bench-latency-open.svg"
	ChartConvergence = "bench-convergence.svg"
)

// closedScenarios are the throughput scenarios in report order.
var closedScenarios = []string{"query", "register", "reregister", "beat", "deregister", "mixed"}

func (c *Collection) servers(series string, scenarios []string) []string {
	var names []string
	for _, g := range c.Groups() {
		if g.Series == series && slices.Contains(scenarios, g.Scenario) {
			names = append(names, g.Server)
		}
	}
	return ServerOrder(names)
}

func (c *Collection) scenarios(series string) []string {
	var names []string
	for _, g := range c.Groups() {
		if g.Series == series {
			names = append(names, g.Scenario)
		}
	}
	return ScenarioOrder(names)
}

func serverColor(i int, name string) string {
	if name == "ceiling" {
		return "#999999"
	}
	return Palette[i%len(Palette)]
}

// WriteCharts renders the SVG charts of c into dir and returns the files
// written.
func WriteCharts(c *Collection, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	save := func(name string, ch *BarChart) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, ch.SVG(), 0o644); err != nil {
			return err
		}
		written = append(written, p)
		return nil
	}
	scen := intersect(closedScenarios, c.scenarios("closed"))
	servers := c.servers("closed", scen)
	if len(scen) > 0 {
		thr := &BarChart{Title: "Throughput per scenario (closed loop; median, whiskers min–max)", YLabel: "requests / second",
			Categories: scen, Note: "server pinned to one core, load generator on the other"}
		cpu := &BarChart{Title: "Requests per server CPU-second (median, whiskers min–max)", YLabel: "requests / CPU-second",
			Categories: scen, Note: "utime+stime of the server process from /proc/PID/stat over the measured loop"}
		lat := &BarChart{Title: "Closed-loop latency at full load (median of runs)", YLabel: "milliseconds (log)", Categories: scen,
			Log: true, Format: fmtAxisMS}
		for i, srv := range servers {
			var v, lo, hi, cv, clo, chi, p50, p99 []float64
			for _, s := range scen {
				g := c.Find(s, srv, "closed")
				st, cs := g.Stat(FThroughput), g.Stat(FPerCPU)
				v, lo, hi = append(v, nanIfZero(st)), append(lo, st.Min), append(hi, st.Max)
				cv, clo, chi = append(cv, nanIfZero(cs)), append(clo, cs.Min), append(chi, cs.Max)
				p50, p99 = append(p50, nanIfZero(g.Stat(FP50))), append(p99, nanIfZero(g.Stat(FP99)))
			}
			col := serverColor(i, srv)
			thr.Series = append(thr.Series, ChartSeries{Name: srv, Color: col, Values: v, Lo: lo, Hi: hi})
			cpu.Series = append(cpu.Series, ChartSeries{Name: srv, Color: col, Values: cv, Lo: clo, Hi: chi})
			lat.Series = append(lat.Series, ChartSeries{Name: srv + " p50", Color: col, Values: p50},
				ChartSeries{Name: srv + " p99", Color: lighten(col), Values: p99})
		}
		for _, x := range []struct {
			name string
			ch   *BarChart
		}{{ChartThroughput, thr}, {ChartCPU, cpu}, {ChartLatency, lat}} {
			if err := save(x.name, x.ch); err != nil {
				return written, err
			}
		}
	}
	if oscen := intersect(closedScenarios, c.scenarios("open")); len(oscen) > 0 {
		ch := &BarChart{Title: "Open-loop latency at a fixed rate (median of runs)", YLabel: "milliseconds (log)", Categories: oscen,
			Log: true, Format: fmtAxisMS, Note: "latency measured from each request's scheduled start (no coordinated omission)"}
		for i, srv := range c.servers("open", oscen) {
			for j, q := range []struct {
				name string
				f    func(*Result) float64
			}{{"p50", FP50}, {"p99", FP99}, {"p99.9", FP999}} {
				var v []float64
				for _, s := range oscen {
					v = append(v, nanIfZero(c.Find(s, srv, "open").Stat(q.f)))
				}
				col := serverColor(i, srv)
				for range j {
					col = lighten(col)
				}
				ch.Series = append(ch.Series, ChartSeries{Name: srv + " " + q.name, Color: col, Values: v})
			}
		}
		if err := save(ChartOpenLatency, ch); err != nil {
			return written, err
		}
	}
	if err := c.v2Charts(save); err != nil {
		return written, err
	}
	if groups := c.propagationGroups(); len(groups) > 0 {
		ch := &BarChart{Title: "Propagation: time to visible on every node, and register to push", YLabel: "milliseconds (log)",
			Log: true, Format: fmtAxisMS, Refs: []RefLine{{Value: 100, Label: "converge target: p99 ≤ 100 ms"}}}
		qs := []struct {
			name string
			f    func(*Result) float64
		}{{"p50", FMetricP50}, {"p90", FMetricP90}, {"p99", FMetricP99}, {"max", FMetricMax}}
		vals := make([][]float64, len(qs))
		for _, g := range groups {
			ch.Categories = append(ch.Categories, g.Scenario+" ("+g.Server+")")
			for i, q := range qs {
				vals[i] = append(vals[i], nanIfZero(g.Stat(q.f)))
			}
		}
		for i, q := range qs {
			ch.Series = append(ch.Series, ChartSeries{Name: q.name, Color: Palette[i], Values: vals[i]})
		}
		if err := save(ChartConvergence, ch); err != nil {
			return written, err
		}
	}
	return written, nil
}

func (c *Collection) propagationGroups() []*Group {
	var out []*Group
	for _, g := range c.Groups() {
		if g.Scenario == "converge" || g.Scenario == "push" {
			out = append(out, g)
		}
	}
	slices.SortStableFunc(out, func(a, b *Group) int {
		return strings.Compare(a.Scenario+a.Server+a.Series, b.Scenario+b.Server+b.Series)
	})
	return out
}

func intersect(order, have []string) []string {
	var out []string
	for _, s := range order {
		if slices.Contains(have, s) {
			out = append(out, s)
		}
	}
	return out
}

func nanIfZero(s Stat) float64 {
	if s.N == 0 {
		return math.NaN()
	}
	return s.Median
}

func fmtAxisMS(v float64) string {
	if v >= 1000 {
		return trimFloat(v/1000, 3) + " s"
	}
	if v < 1 {
		return trimFloat(v*1000, 3) + " µs"
	}
	return trimFloat(v, 3) + " ms"
}

// lighten mixes a #rrggbb colour halfway to white.
func lighten(c string) string {
	if len(c) != 7 || c[0] != '#' {
		return c
	}
	var r, g, b int
	if _, err := fmt.Sscanf(c, "#%02x%02x%02x", &r, &g, &b); err != nil {
		return c
	}
	return fmt.Sprintf("#%02x%02x%02x", (r+255)/2, (g+255)/2, (b+255)/2)
}

// fmtStat formats "median [min–max]" with f.
func fmtStat(s Stat, f func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 || s.Min == s.Max {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func fmtInt(v float64) string { return groupDigits(int64(math.Round(v))) }

// groupDigits writes 1234567 as 1 234 567 (thin spaces keep tables narrow
// and unambiguous).
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtRatio(a, b Stat) string {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a.Median/b.Median)
}

func fmtPct(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

// ceilingTableHeader heads a table of distrod against a ceiling (rows by
// ceilingRow).
const ceilingTableHeader = "| scenario | distrod req/s | ceiling req/s | fraction (req/s) | distrod req per CPU-s | ceiling req per CPU-s | fraction (CPU) | distrod p50 / p99 ms | ceiling p50 / p99 ms | distrod CPU | client CPU | bytes/resp | errors |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

// ceilingRow writes the row of one scenario: distrod's runs d against the
// ceiling's ce.
func ceilingRow(p func(string, ...any), label string, d, ce *Group) {
	p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label,
		fmtStat(d.Stat(FThroughput), fmtInt), fmtStat(ce.Stat(FThroughput), fmtInt),
		fmtRatio(d.Stat(FThroughput), ce.Stat(FThroughput)),
		fmtStat(d.Stat(FPerCPU), fmtInt), fmtStat(ce.Stat(FPerCPU), fmtInt), fmtRatio(d.Stat(FPerCPU), ce.Stat(FPerCPU)),
		p50p99(d), p50p99(ce), fmtMedian(d.Stat(FServerUtil), fmtPct), fmtMedian(d.Stat(FClientUtil), fmtPct),
		fmtMedian(d.Stat(FBytes), fmtInt), errorsCell(d, ce))
}

// WriteReport writes docs/benchmarks.md for c.
func WriteReport(w io.Writer, c *Collection, o ReportOptions) error {
	m := c.Meta
	meta := func(k, def string) string {
		if v := m[k]; v != "" {
			return v
		}
		return def
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("<!-- Generated by %s. Do not edit by hand: rerun the command. -->\n\n", "`"+meta("command", o.Command)+"`")
	p("These figures were measured on %s, in **%s** mode (%s), at commit `%s`.\n", meta("date", "?"), meta("mode", "?"),
		meta("mode_note", ""), meta("commit", "?"))
	p("The [method](#method) section lists the machine and the settings. The raw JSON of every run is in `%s/`.\n\n", o.ResultsPath)
	if n := m["notes"]; n != "" {
		p("> %s\n\n", n)
	}
	if len(c.Excluded) > 0 {
		p("> **Runs left out of every figure:** %s. Each was repeated once on a fresh server.\n\n", strings.Join(c.Excluded, "; "))
	}

	c.writeGoals(p)

	scen := intersect(closedScenarios, c.scenarios("closed"))
	servers := c.servers("closed", scen)
	var peers []string
	for _, s := range servers {
		if s != "distrod" && s != "ceiling" {
			peers = append(peers, s)
		}
	}
	if len(scen) > 0 {
		p("## Headline: every scenario against the ceiling\n\n")
		p("The **ceiling** is a trivial net/http handler (`distrobench ceiling`). It answers every request with the bytes distrod gave for that\n")
		p("request, captured during the distrod run, and does no work of its own. It runs on the same core, with the same GOMAXPROCS and the same load.\n")
		p("The **fraction of ceiling** is distrod's median divided by the ceiling's median. It is given for throughput and for requests per server\n")
		p("CPU-second. When the load generator rather than the server is the bottleneck (see the `client CPU` column), the throughput fraction\n")
		p("tends to 1 and the CPU fraction is the meaningful one.\n\n")
		p("Each cell is the median over repetitions, with [min–max] in brackets. Latency is in ms, from closed-loop runs at full load.\n\n")
		p("%s", ceilingTableHeader)
		for _, s := range scen {
			ceilingRow(p, s, c.Find(s, "distrod", "closed"), c.Find(s, "ceiling", "closed"))
		}
		p("\n")
		c.writeObservations(p, scen)
		if len(peers) > 0 {
			p("### Peer servers\n\nThe same scenarios were run against servers started outside the script (`--peer`).\n\n")
			p("| scenario | server | req/s | fraction of distrod | req per CPU-s | p50 / p99 ms | bytes/resp | errors |\n|---|---|---|---|---|---|---|---|\n")
			for _, s := range scen {
				d := c.Find(s, "distrod", "closed")
				for _, pr := range peers {
					g := c.Find(s, pr, "closed")
					if g == nil {
						continue
					}
					p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", s, pr, fmtStat(g.Stat(FThroughput), fmtInt),
						fmtRatio(g.Stat(FThroughput), d.Stat(FThroughput)), fmtStat(g.Stat(FPerCPU), fmtInt), p50p99(g),
						fmtMedian(g.Stat(FBytes), fmtInt), errorsCell(g))
				}
			}
			p("\n")
		}
		p("![throughput](%s/%s)\n\n![requests per CPU-second](%s/%s)\n\n![latency](%s/%s)\n\n", o.ImgPath, ChartThroughput,
			o.ImgPath, ChartCPU, o.ImgPath, ChartLatency)
		if mixed := c.Find("mixed", "distrod", "closed"); mixed != nil && len(mixed.Runs) > 0 && len(mixed.Runs[0].Ops) > 0 {
			p("The mixed scenario's operations on distrod (median of runs):\n\n| operation | req/s | p50 ms | p99 ms | bytes/resp |\n|---|---|---|---|---|\n")
			for _, op := range []string{"query", "beat", "register", "deregister"} {
				f := func(fn func(OpResult) float64) Stat {
					return mixed.Stat(func(r *Result) float64 {
						if o, ok := r.Ops[op]; ok {
							return fn(o)
						}
						return math.NaN()
					})
				}
				thr := f(func(o OpResult) float64 { return o.ThroughputRPS })
				if thr.N == 0 {
					continue
				}
				p("| %s | %s | %s | %s | %s |\n", op, fmtInt(thr.Median), fmtMS(f(func(o OpResult) float64 { return o.Latency.P50 }).Median),
					fmtMS(f(func(o OpResult) float64 { return o.Latency.P99 }).Median), fmtInt(f(func(o OpResult) float64 { return o.BytesPerResponse }).Median))
			}
			p("\n")
		}
	}

	c.writePersistent(p)
	c.writeV2(p, o)

	if oscen := intersect(closedScenarios, c.scenarios("open")); len(oscen) > 0 {
		p("## Open-loop latency\n\n")
		p("Requests are scheduled at a fixed rate: half of distrod's median closed-loop throughput for that scenario, the same rate for every server.\n")
		p("Latency runs from each request's **scheduled** start, so queueing behind a stall is counted and not hidden (no coordinated omission).\n")
		p("The number of outstanding requests is bounded. `backlog` counts requests that were never sent because the bound stayed full.\n\n")
		p("| scenario | server | rate req/s | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | backlog |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range oscen {
			for _, srv := range c.servers("open", oscen) {
				g := c.Find(s, srv, "open")
				if g == nil {
					continue
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, srv, fmtInt(g.Stat(FRate).Median),
					fmtStat(g.Stat(FThroughput), fmtInt), fmtStat(g.Stat(FP50), fmtMS), fmtStat(g.Stat(FP90), fmtMS),
					fmtStat(g.Stat(FP99), fmtMS), fmtStat(g.Stat(FP999), fmtMS),
					fmtStat(g.Stat(func(r *Result) float64 { return r.Latency.Max }), fmtMS), errorsCell(g),
					fmtInt(g.Sum(func(r *Result) float64 { return float64(r.Backlog) })))
			}
		}
		p("\n![open-loop latency](%s/%s)\n\n", o.ImgPath, ChartOpenLatency)
		for _, s := range oscen {
			d, ce := c.Find(s, "distrod", "open").Stat(FP99), c.Find(s, "ceiling", "open").Stat(FP99)
			if d.N > 0 && ce.N > 0 && ce.Median > 0 {
				p("* %s: distrod's p99 is %.1f× the ceiling's (%s vs %s).\n", s, d.Median/ce.Median, fmtMS(d.Median), fmtMS(ce.Median))
			}
		}
		p("\nTarget for register: distrod's p99 at most %.0f× the ceiling's.\n\n", targetOpenP99x)
	}

	if groups := c.propagationGroups(); len(groups) > 0 {
		p("## Convergence and push\n\n")
		p("* **converge** registers a new instance on a random node and takes the time the registration was acknowledged. It then polls every other\n")
		p("  node's instance list every %s until the instance is listed there. The sample is the time from the ack until the instance is visible\n", meta("poll_interval", "5 ms"))
		p("  on **every** node. Samples are taken at a modest fixed rate, so that the test measures propagation and not overload, while a background\n")
		p("  load re-registers a pool of other instances with changing metadata, so that every background write is a real change to replicate.\n")
		p("  The polling interval bounds the resolution.\n")
		p("* **push** subscribes to a new service over the v1 UDP push protocol (a list call with `udpPort`, as the Go SDK does). It then registers an\n")
		p("  instance of that service, on the next node in a cluster, and measures the time from sending the registration until the UDP push that\n")
		p("  lists the instance arrives. The push is acked as the Go SDK acks it.\n\n")
		p("| scenario | setup | samples | background writes/s (set → achieved) | p50 ms | p90 ms | p99 ms | max ms | failed samples |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, g := range groups {
			bg := "–"
			if set := g.Stat(func(r *Result) float64 { return ExtraFloat(r, "background_rate_set") }); set.N > 0 && set.Median > 0 {
				bg = fmt.Sprintf("%s → %s", fmtInt(set.Median), fmtStat(g.Stat(func(r *Result) float64 { return ExtraFloat(r, "background_rate_achieved") }), fmtInt))
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", g.Scenario, g.Server, fmtInt(g.Sum(FMetricN)), bg,
				fmtStat(g.Stat(FMetricP50), fmtMS), fmtStat(g.Stat(FMetricP90), fmtMS), fmtStat(g.Stat(FMetricP99), fmtMS),
				fmtStat(g.Stat(FMetricMax), fmtMS), errorsCell(g))
		}
		p("\n![convergence](%s/%s)\n\n", o.ImgPath, ChartConvergence)
		if t := meta("converge_target", ""); t != "" {
			p("%s", t)
			for _, g := range groups {
				if g.Scenario != "converge" {
					continue
				}
				p99 := g.Stat(FMetricP99)
				verdict := "meets"
				if p99.Max > 100 {
					verdict = "does not always meet"
				}
				if p99.Median > 100 {
					verdict = "misses"
				}
				p(" %s: p99 %s (median of %d runs; worst %s), so the run **%s** the target.", g.Server, fmtMS(p99.Median), p99.N, fmtMS(p99.Max), verdict)
			}
			p("\n\n")
		}
	}

	c.writeFanout(p)

	if len(c.Memory) > 0 {
		p("## Memory per instance\n\n")
		p("A fresh distrod is filled with N persistent instances (through Raft), 10 per service, by concurrent v1 POSTs. Then `service/list` calls are sent until the\n")
		p("server has completed two GC cycles after the fill. These calls allocate in proportion to the number of services and retain nothing.\n")
		p("VmRSS is read once it has been stable for a second. The **live heap** is `go_gc_heap_live_bytes` from distrod's `/metrics`\n")
		p("(runtime/metrics `/gc/heap/live:bytes`), the heap the last GC marked live.\n")
		p("**ΔRSS** includes the GC headroom: with GOGC=100, RSS can hold up to twice the live heap.\n\n")
		p("| instances | fill time | fill rate req/s | RSS before → after | ΔRSS / instance | live heap after | live heap / instance | complete |\n|---|---|---|---|---|---|---|---|\n")
		mem := slices.Clone(c.Memory)
		slices.SortFunc(mem, func(a, b *FillResult) int { return int(a.Requested - b.Requested) })
		for _, r := range mem {
			done := "yes"
			if !r.Complete {
				done = fmt.Sprintf("**no**: stopped at %s after %.0f s", groupDigits(r.Registered), r.FillSeconds)
			}
			p("| %s | %.1f s | %s | %s → %s | %s B | %s | %s B | %s |\n", groupDigits(r.Requested), r.FillSeconds, fmtInt(r.FillRateRPS),
				fmtBytes(r.Before.RSSBytes), fmtBytes(r.After.RSSBytes), fmtInt(r.RSSPerInstance), fmtBytes(r.After.HeapLiveBytes),
				fmtInt(r.HeapLivePerInstance), done)
		}
		p("\n")
		if n := meta("memory_note", ""); n != "" {
			p("%s\n\n", n)
		}
	}
	if rss := c.idleRSS(); rss > 0 {
		p("Idle RSS of a freshly started distrod (median over the memory and connection measurements, before they filled it): %s (target ≤ 20 MiB).\n\n", fmtBytes(rss))
	}
	c.writeConns(p)

	if o.Extra != "" {
		p("%s\n", strings.TrimRight(o.Extra, "\n")+"\n")
	}
	p("## Method\n\n")
	p("* **Machine:** %s; %s cores; %s RAM; Linux %s; %s.\n", meta("cpu", "?"), meta("cores", "?"), meta("mem", "?"), meta("kernel", "?"), meta("go", "?"))
	p("* **Build:** distrod as it ships (`make build`, the Dockerfile): `CGO_ENABLED=0`, `-trimpath -ldflags \"-s -w\"`.\n")
	p("* **Pinning** follows `performance.md` §5. Each server is started already pinned: `taskset -c 1` with `GOMAXPROCS=1` and log level warn.\n")
	p("  The load generator runs under `taskset -c 0` with `GOMAXPROCS=1`. GOGC and GOMEMLIMIT are left at their defaults for every server.\n")
	p("* **Repetitions:** %s per server and scenario. Servers alternate A/B (distrod, ceiling%s, then again), never run concurrently, and\n", meta("reps", "?"), peerList(peers))
	p("  each run gets a freshly started server with an empty store. Each cell reports the median, with min and max.\n")
	p("* **Runs:** %s warmup (unrecorded), then %s measured. Closed loop with %s concurrent keep-alive connections. Requests are form-encoded\n", meta("warmup", "?"), meta("duration", "?"), meta("concurrency", "?"))
	p("  and shaped like the Nacos Go SDK's. They are sent by distrobench's lean HTTP/1.1 client, which costs about half the CPU per request of\n")
	p("  net/http's Transport (`--net-http` selects the latter), so one load core can keep one server core busy. Pools: %s.\n", meta("pools", "?"))
	p("* **Workloads:** `query` lists a random service from a pool of persistent instances. `register` posts new unique ephemeral instances,\n")
	p("  spread over the services. `reregister` re-posts a fixed pool of ephemeral instances unchanged, like Nacos 2.0's 重复注册. `beat` sends v1\n")
	p("  heartbeats with the beat JSON for a pre-registered pool. `deregister` deletes a pre-registered pool of ephemeral instances, and its run\n")
	p("  ends early if the pool runs out. `mixed` is 80%% query, 10%% beat, 5%% register and 5%% deregister of ephemeral instances. Registered\n")
	p("  ephemeral instances get no beats: each run ends before their 15 s heartbeat timeout. The persistent register is measured on its own (see\n")
	p("  above).\n")
	p("* **CPU:** server CPU-seconds are the utime+stime delta in `/proc/PID/stat` over the measured loop. Requests per CPU-second is the\n")
	p("  metric that holds up best on a shared 2-core machine. `client CPU` is the load generator's own utilisation; near 100%% means it was the bottleneck.\n")
	p("* **Noise:** the machine was %s busy (median; max %s) in the 300 ms before the runs started. Other processes used a median of %s CPU-s per run.\n",
		fmtMedian(c.allStat(FHostBusy), func(v float64) string { return fmt.Sprintf("%.0f%%", v) }),
		fmtMax(c.allStat(FHostBusy), func(v float64) string { return fmt.Sprintf("%.0f%%", v) }),
		fmtMedian(c.allStat(FOtherCPU), func(v float64) string { return fmt.Sprintf("%.2f", v) }))
	p("  Those processes were other work sharing the machine, and they widen the min–max ranges.")
	if q := meta("quiet_note", ""); q != "" {
		p(" %s", q)
	}
	p("\n")
	if d := meta("elapsed", ""); d != "" {
		p("* **Session length:** %s.\n", d)
	}
	p("\n## Reference points (not measured here)\n\n")
	p("From `performance.md`, for orientation only. Those setups differ in hardware, topology, protocol and client, so the ratios are rough.\n\n")
	p("| system | operation | figure | note |\n|---|---|---|---|\n")
	p("| Polaris 1.19 (Go), same 2-vCPU machine, server on 1 core, wrk on the other | v1 query, 1 service × 10 hosts, c=50 | 9.6–11.6k req/s | pretty-printed JSON, about 3.6 KB per response |\n")
	p("| same | v1 register of new instances, c=50 | 0.8–1.9k req/s | bounded by boltdb and a 32 ms batch window |\n")
	p("| Nacos 2.0, 3 × 8C16G | register / query over gRPC | 26.8k TPS / 30.7k QPS | about 1.2k / 2.6k per busy core |\n")
	p("| r-nacos, single node | register / query over HTTP | 48k / 54k | hardware not published |\n\n")
	p("## Regenerate\n\n```sh\n%s\n```\n\n", o.Command)
	p("* `scripts/bench/run.sh --quick` is a smoke run of under 3 minutes: 1 repetition, short runs, memory at 10k and 100k only.\n")
	p("* `scripts/bench/run.sh --peer host:port` also runs every scenario against a Nacos-compatible server that you started yourself. Start\n")
	p("  it pinned with `taskset -c 1` and pass `--peer-pid PID` to get its CPU figures.\n")
	p("* A single run, for example: `distrobench --target 127.0.0.1:8848 --scenario query --duration 10s --server-pid $(pidof distrod) --json out.json`.\n")
	p("* **v2 gRPC:** `--protocol v2` drives the Nacos 2 gRPC API instead of v1 HTTP, on each target's port + `--grpc-port-offset` (default\n")
	p("  1000). Each connection is set up as a Nacos 2 client does (ServerCheck, bi-stream, ConnectionSetupRequest), and pushes are acked on\n")
	p("  the stream. A v2 connection holds one instance per service, so each registered instance gets a connection slot of its own, and\n")
	p("  `register` puts every new instance in a service of its own. Instances are connection-held (ephemeral). The `register`,\n")
	p("  `reregister`, `deregister`, `query`, `subscribe`, `push`, `fanout` and `converge` scenarios run over v2; `beat` and `mixed` are\n")
	p("  refused. For example: `distrobench --protocol v2 --target 127.0.0.1:8848 --scenario register --duration 5s`.\n")
	p("* `distrobench ceiling --routes DIR` serves both ceilings: HTTP on `--port`, gRPC on `--port` + `--grpc-port-offset`.\n")
	p("  `distrobench conns --target host:port --connections N --server-pid PID` measures memory per connected v2 client.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeObservations states what the headline table shows, computed from
// it, so that the prose stays true when the figures change.
func (c *Collection) writeObservations(p func(string, ...any), scen []string) {
	type frac struct {
		s string
		v float64
	}
	var cpu []frac
	var clientBound, serverBound []string
	for _, s := range scen {
		d, ce := c.Find(s, "distrod", "closed"), c.Find(s, "ceiling", "closed")
		if dc, cc := d.Stat(FPerCPU), ce.Stat(FPerCPU); dc.N > 0 && cc.N > 0 && cc.Median > 0 {
			cpu = append(cpu, frac{s, dc.Median / cc.Median})
		}
		cu, su := d.Stat(FClientUtil), d.Stat(FServerUtil)
		switch {
		case cu.N > 0 && su.N > 0 && cu.Median >= 0.9 && su.Median < 0.9:
			clientBound = append(clientBound, s)
		case su.N > 0 && su.Median >= 0.9:
			serverBound = append(serverBound, s)
		}
	}
	if len(cpu) == 0 {
		return
	}
	slices.SortFunc(cpu, func(a, b frac) int { return cmpFloat(a.v, b.v) })
	p("**Reading the table.**\n\n")
	lo, hi := cpu[0], cpu[len(cpu)-1]
	p("* Per server CPU-second, distrod does %.0f%% (%s) to %.0f%% (%s) of the work of the do-nothing ceiling. The rest is the cost of\n",
		100*lo.v, lo.s, 100*hi.v, hi.s)
	p("  parsing, validating, storing and rendering, on top of the HTTP handling that both servers share.\n")
	if len(serverBound) > 0 {
		p("* distrod kept its core at least 90%% busy in: %s. There, the throughput is the server's limit on one core.\n", strings.Join(serverBound, ", "))
	}
	if len(clientBound) > 0 {
		p("* The load generator's core was the bottleneck in: %s, with the client at 90%% or more and distrod below 90%%. There, compare requests per CPU-second rather than req/s.\n", strings.Join(clientBound, ", "))
	}
	if b := c.allStat(FHostBusy); b.N > 0 && b.Median > 25 {
		p("* Other work kept this machine %.0f%% busy (median) just before the runs. Throughput and tail latency are therefore noisy, as the\n", b.Median)
		p("  min–max ranges show. Requests per CPU-second is much less affected.\n")
	}
	p("\n")
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func peerList(peers []string) string {
	if len(peers) == 0 {
		return ""
	}
	return ", " + strings.Join(peers, ", ")
}

func (c *Collection) allStat(f func(*Result) float64) Stat {
	g := &Group{Runs: c.Runs}
	return g.Stat(f)
}

func fmtMedian(s Stat, f func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	return f(s.Median)
}

func fmtMax(s Stat, f func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	return f(s.Max)
}

func p50p99(g *Group) string {
	if g == nil || len(g.Runs) == 0 {
		return "–"
	}
	return fmtMS(g.Stat(FP50).Median) + " / " + fmtMS(g.Stat(FP99).Median)
}

func errorsCell(gs ...*Group) string {
	var parts []string
	for _, g := range gs {
		if g == nil {
			continue
		}
		kinds := map[string]int64{}
		var total, reqs int64
		for _, r := range g.Runs {
			total += r.Errors
			reqs += r.Requests
			for k, n := range r.ErrorKinds {
				kinds[k] += n
			}
		}
		if total == 0 {
			parts = append(parts, "0")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s of %s (%s)", groupDigits(total), groupDigits(reqs), kindsString(kinds)))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, " / ")
}
