package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// SeriesV2 is the series tag of closed-loop runs over the Nacos 2 gRPC API
// (distrod against the gRPC ceiling).
const SeriesV2 = "v2"

// v2Scenarios are the gRPC throughput scenarios in report order.
var v2Scenarios = []string{"register", "query", "subscribe", "reregister", "deregister"}

// Chart file names of the v2 section.
const (
	ChartV2Throughput = "bench-v2-throughput.svg"
	ChartV2CPU        = "bench-v2-cpu.svg"
)

// Report targets (issue: performance). They are ratios or bounds measured
// in one run.
const (
	targetV1Query     = 0.80
	targetV1Beat      = 0.80
	targetV1Register  = 0.70
	targetV2          = 0.70
	targetFanoutP99MS = 100
	targetConnBytes   = 16 << 10
	targetIdleRSS     = 20 << 20
	targetHeapPerInst = 500
	targetOpenP99x    = 2.0
)

// v2Charts adds the v2 throughput and CPU charts.
func (c *Collection) v2Charts(save func(string, *BarChart) error) error {
	scen := intersect(v2Scenarios, c.scenarios(SeriesV2))
	if len(scen) == 0 {
		return nil
	}
	thr := &BarChart{Title: "Nacos 2 gRPC: throughput per scenario (closed loop; median, whiskers min–max)", YLabel: "requests / second",
		Categories: scen, Note: "server pinned to one core, load generator on the other; the ceiling is a trivial gRPC handler"}
	cpu := &BarChart{Title: "Nacos 2 gRPC: requests per server CPU-second (median, whiskers min–max)", YLabel: "requests / CPU-second",
		Categories: scen, Note: "utime+stime of the server process from /proc/PID/stat over the measured loop"}
	for i, srv := range c.servers(SeriesV2, scen) {
		var v, lo, hi, cv, clo, chi []float64
		for _, s := range scen {
			g := c.Find(s, srv, SeriesV2)
			st, cs := g.Stat(FThroughput), g.Stat(FPerCPU)
			v, lo, hi = append(v, nanIfZero(st)), append(lo, st.Min), append(hi, st.Max)
			cv, clo, chi = append(cv, nanIfZero(cs)), append(clo, cs.Min), append(chi, cs.Max)
		}
		col := serverColor(i, srv)
		thr.Series = append(thr.Series, ChartSeries{Name: srv, Color: col, Values: v, Lo: lo, Hi: hi})
		cpu.Series = append(cpu.Series, ChartSeries{Name: srv, Color: col, Values: cv, Lo: clo, Hi: chi})
	}
	if err := save(ChartV2Throughput, thr); err != nil {
		return err
	}
	return save(ChartV2CPU, cpu)
}

// ratio is a/b of two medians, NaN when either is missing.
func ratio(a, b Stat) float64 {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return math.NaN()
	}
	return a.Median / b.Median
}

type goal struct {
	what, measured, target string
	ok                     bool
	known                  bool
}

func verdict(g goal) string {
	switch {
	case !g.known:
		return "not measured"
	case g.ok:
		return "**met**"
	}
	return "**missed**"
}

// fractionGoal checks both fractions of the ceiling (throughput and per
// CPU-second) of one scenario against target.
func (c *Collection) fractionGoal(label, scenario, series string, target float64) goal {
	d, ce := c.Find(scenario, "distrod", series), c.Find(scenario, "ceiling", series)
	ft, fc := ratio(d.Stat(FThroughput), ce.Stat(FThroughput)), ratio(d.Stat(FPerCPU), ce.Stat(FPerCPU))
	g := goal{what: label, target: fmt.Sprintf("≥ %.2f of the ceiling (req/s and per CPU-s)", target)}
	if math.IsNaN(ft) || math.IsNaN(fc) {
		return g
	}
	g.known = true
	g.measured = fmt.Sprintf("%.2f (req/s), %.2f (per CPU-s)", ft, fc)
	g.ok = ft >= target && fc >= target
	return g
}

// goals evaluates every target the run measured.
func (c *Collection) goals() []goal {
	gs := []goal{
		c.fractionGoal("v1 query (instance list)", "query", "closed", targetV1Query),
		c.fractionGoal("v1 beat", "beat", "closed", targetV1Beat),
		c.fractionGoal("v1 register (ephemeral)", "register", "closed", targetV1Register),
		c.fractionGoal("v2 register", "register", SeriesV2, targetV2),
		c.fractionGoal("v2 query", "query", SeriesV2, targetV2),
		c.fractionGoal("v2 subscribe", "subscribe", SeriesV2, targetV2),
	}
	v2, v1 := c.Find("register", "distrod", SeriesV2).Stat(FPerCPU), c.Find("register", "distrod", "closed").Stat(FPerCPU)
	g := goal{what: "v2 register per CPU-s vs v1 register per CPU-s", target: "≥ 1"}
	if r := ratio(v2, v1); !math.IsNaN(r) {
		g.known, g.ok = true, r >= 1
		g.measured = fmt.Sprintf("%s vs %s (%.2f)", fmtInt(v2.Median), fmtInt(v1.Median), r)
	}
	gs = append(gs, g)

	g = goal{what: "push fan-out to 1,000 gRPC subscribers, p99", target: fmt.Sprintf("≤ %d ms", targetFanoutP99MS)}
	if f := c.fanoutGroup(); f != nil {
		if p99 := f.Stat(FMetricP99); p99.N > 0 {
			n := f.Stat(func(r *Result) float64 { return ExtraFloat(r, "subscribers") })
			g.what = fmt.Sprintf("push fan-out to %s gRPC subscribers, p99", fmtInt(n.Median))
			g.known, g.ok = true, p99.Median <= targetFanoutP99MS && f.Sum(FErrors) == 0
			g.measured = fmtMS(p99.Median)
		}
	}
	gs = append(gs, g)

	g = goal{what: "memory per connected v2 client (heap + stacks)", target: "≤ 16 KiB"}
	if r := c.largestConns(); r != nil && r.Connected > 0 {
		per := r.HeapLivePerConn + r.StackPerConn
		g.what = fmt.Sprintf("memory per connected v2 client, %s clients (heap + stacks)", groupDigits(int64(r.Connected)))
		g.known, g.ok = true, per <= targetConnBytes && r.Connected == r.Requested
		g.measured = fmt.Sprintf("%s B (RSS: %s B)", fmtInt(per), fmtInt(r.RSSPerConn))
	}
	gs = append(gs, g)

	g = goal{what: "idle RSS of a fresh distrod", target: "≤ 20 MiB"}
	if rss := c.idleRSS(); rss > 0 {
		g.known, g.ok, g.measured = true, rss <= targetIdleRSS, fmtBytes(rss)
	}
	gs = append(gs, g)

	g = goal{what: "live heap per instance at 1M instances", target: fmt.Sprintf("≤ %d B", targetHeapPerInst)}
	if len(c.Memory) > 0 {
		mem := slices.Clone(c.Memory)
		slices.SortFunc(mem, func(a, b *FillResult) int { return int(b.Requested - a.Requested) })
		if r := mem[0]; r.HeapLivePerInstance > 0 {
			if r.Requested != 1_000_000 {
				g.what = fmt.Sprintf("live heap per instance at %s instances (1M only in full mode)", groupDigits(r.Requested))
			}
			g.known, g.ok = true, r.HeapLivePerInstance <= targetHeapPerInst && r.Complete
			g.measured = fmtInt(r.HeapLivePerInstance) + " B"
		}
	}
	gs = append(gs, g)

	g = goal{what: "open-loop register p99 at half the max rate", target: "≤ 2× the ceiling's p99"}
	if d, ce := c.Find("register", "distrod", "open").Stat(FP99), c.Find("register", "ceiling", "open").Stat(FP99); d.N > 0 && ce.N > 0 && ce.Median > 0 {
		g.known, g.ok = true, d.Median <= targetOpenP99x*ce.Median
		g.measured = fmt.Sprintf("%s vs %s (%.1f×)", fmtMS(d.Median), fmtMS(ce.Median), d.Median/ce.Median)
	}
	return append(gs, g)
}

// idleRSS is the median RSS of freshly started servers before a memory or
// connection measurement filled them (0 if none).
func (c *Collection) idleRSS() int64 {
	var v []float64
	for _, r := range c.Memory {
		if r.Before.RSSBytes > 0 {
			v = append(v, float64(r.Before.RSSBytes))
		}
	}
	for _, r := range c.Conns {
		if r.Before.RSSBytes > 0 {
			v = append(v, float64(r.Before.RSSBytes))
		}
	}
	return int64(StatOf(v).Median)
}

func (c *Collection) largestConns() *ConnsResult {
	var best *ConnsResult
	for _, r := range c.Conns {
		if best == nil || r.Requested > best.Requested {
			best = r
		}
	}
	return best
}

func (c *Collection) fanoutGroup() *Group {
	for _, g := range c.Groups() {
		if g.Scenario == "fanout" && strings.HasPrefix(g.Server, "distrod") {
			return g
		}
	}
	return nil
}

// writeGoals writes the table of targets and whether this run met them.
func (c *Collection) writeGoals(p func(string, ...any)) {
	gs := c.goals()
	known := 0
	for _, g := range gs {
		if g.known {
			known++
		}
	}
	if known == 0 {
		return
	}
	p("## Goals\n\n")
	p("The performance targets, each checked against this run's own figures (a ratio to a ceiling measured in the same run, or a bound).\n\n")
	p("| goal | measured | target | verdict |\n|---|---|---|---|\n")
	for _, g := range gs {
		m := g.measured
		if !g.known {
			m = "–"
		}
		p("| %s | %s | %s | %s |\n", g.what, m, g.target, verdict(g))
	}
	p("\n")
}

// writeV2 writes the Nacos 2 gRPC section: distrod against the gRPC ceiling.
func (c *Collection) writeV2(p func(string, ...any), o ReportOptions) {
	scen := intersect(v2Scenarios, c.scenarios(SeriesV2))
	if len(scen) == 0 {
		return
	}
	p("## Nacos 2 gRPC against the gRPC ceiling\n\n")
	p("The same scenarios over the Nacos 2 gRPC API (`--protocol v2`, the API that Nacos 2.x clients use). The **gRPC ceiling** is\n")
	p("`distrobench ceiling`'s gRPC listener: the same proto on the same transport options as distrod's client API\n")
	p("(`grpcapi.TransportOptions`), whose handler answers every request type with the Payload distrod gave for it, captured during the\n")
	p("distrod run, and does nothing else. Each connection is set up as a Nacos 2 client does (ServerCheck, bi-stream,\n")
	p("ConnectionSetupRequest). `register` puts every new instance in a service of its own (a v2 connection holds one instance per service),\n")
	p("`query` is ServiceQueryRequest for a random pooled service, and `subscribe` is SubscribeServiceRequest for a random pooled service\n")
	p("(the first one per connection and service records a subscription, later ones find it) answered with the service's instances.\n\n")
	p("%s", ceilingTableHeader)
	for _, s := range scen {
		ceilingRow(p, s, c.Find(s, "distrod", SeriesV2), c.Find(s, "ceiling", SeriesV2))
	}
	p("\n")
	v2, v1 := c.Find("register", "distrod", SeriesV2).Stat(FPerCPU), c.Find("register", "distrod", "closed").Stat(FPerCPU)
	if r := ratio(v2, v1); !math.IsNaN(r) {
		p("Per server CPU-second, a v2 register costs distrod %.2f× what a v1 HTTP register does (%s vs %s registers per CPU-second).\n\n",
			1/r, fmtInt(v2.Median), fmtInt(v1.Median))
	}
	p("![v2 throughput](%s/%s)\n\n![v2 requests per CPU-second](%s/%s)\n\n", o.ImgPath, ChartV2Throughput, o.ImgPath, ChartV2CPU)
}

// writeFanout writes the push fan-out section.
func (c *Collection) writeFanout(p func(string, ...any)) {
	g := c.fanoutGroup()
	if g == nil {
		return
	}
	n := g.Stat(func(r *Result) float64 { return ExtraFloat(r, "subscribers") })
	p("## Push fan-out\n\n")
	p("**fanout** subscribes %s gRPC clients, each on a connection of its own, to one service. Each sample registers a new instance of it\n", fmtInt(n.Median))
	p("(then deregisters it) and records, for **every** subscriber, the time from sending the registration until the NotifySubscriberRequest\n")
	p("listing the instance arrived (acked as a Nacos 2 client acks it). The subscribers and the load generator share one core, so the\n")
	p("figures include the client's own time to take %s pushes off the wire.\n\n", fmtInt(n.Median))
	p("| setup | samples | deliveries | p50 ms | p90 ms | p99 ms | max ms | missed pushes | failed samples |\n|---|---|---|---|---|---|---|---|---|\n")
	p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", g.Server, fmtInt(g.Sum(FRequests)), fmtInt(g.Sum(FMetricN)),
		fmtStat(g.Stat(FMetricP50), fmtMS), fmtStat(g.Stat(FMetricP90), fmtMS), fmtStat(g.Stat(FMetricP99), fmtMS),
		fmtStat(g.Stat(FMetricMax), fmtMS), fmtInt(g.Sum(func(r *Result) float64 { return ExtraFloat(r, "missed_pushes") })), errorsCell(g))
	p("\nTarget: p99 ≤ %d ms on one node.\n\n", targetFanoutP99MS)
}

// writeConns writes the connected-clients section.
func (c *Collection) writeConns(p func(string, ...any)) {
	if len(c.Conns) == 0 {
		return
	}
	p("## Connected Nacos 2 clients\n\n")
	p("`distrobench conns` opens N gRPC client connections to a fresh distrod, each set up as a Nacos 2 client does, with one registered\n")
	p("instance and one subscription, holds them while the server's heap settles (as for the memory table), and divides the growth of the\n")
	p("server's memory by N. **heap** is the live heap, **stacks** the goroutine stacks (`go_memstats_stack_inuse_bytes`); RSS also holds\n")
	p("the GC headroom.\n\n")
	p("| clients | setup time | RSS before → after | RSS / client | heap / client | stacks / client | heap + stacks / client | goroutines / client | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	rs := slices.Clone(c.Conns)
	slices.SortFunc(rs, func(a, b *ConnsResult) int { return a.Requested - b.Requested })
	for _, r := range rs {
		errs := "0"
		if r.Errors > 0 || r.Connected < r.Requested {
			errs = fmt.Sprintf("%d (%d of %d connected; %s)", r.Errors, r.Connected, r.Requested, kindsString(r.ErrorKinds))
		}
		p("| %s | %.1f s | %s → %s | %s B | %s B | %s B | %s B | %.2f | %s |\n", groupDigits(int64(r.Requested)), r.SetupSeconds,
			fmtBytes(r.Before.RSSBytes), fmtBytes(r.After.RSSBytes), fmtInt(r.RSSPerConn), fmtInt(r.HeapLivePerConn),
			fmtInt(r.StackPerConn), fmtInt(r.HeapLivePerConn+r.StackPerConn), r.GoroutinesPerConn, errs)
	}
	p("\nTarget: at most 16 KiB (heap + stacks) per connected client.\n\n")
}
