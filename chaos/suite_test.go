package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/chaos/history"
)

// scenario is one row of the fault matrix.
type scenario struct {
	ID, Name string
	Nodes    int
	// ClusterConf: nodes read a live-edited member file (F11).
	ClusterConf bool
	NodeExtra   map[string][]string
	// CheckI9: every fault is shorter than the expiry window, or cannot
	// stop heartbeats from reaching owners, so no live instance may drop.
	CheckI9 bool
	// ConvBound is I1's bound after the heal (default 2×TConv).
	ConvBound time.Duration
	// WatchNodes: no live instance may disappear from these nodes at any
	// sample (checkNoDrop).
	WatchNodes []string
	// Workload flags and how long its initial registration may take.
	WorkloadArgs []string
	ReadyTimeout time.Duration
	// Run applies the fault schedule and heals everything at its end.
	Run func(r *run) error
}

// run is one execution of a scenario.
type run struct {
	t     *testing.T
	c     *Cluster
	sc    *scenario
	short bool
	rng   *rand.Rand
	seed  uint64
	extra []string // scenario figures for the result line
}

// d scales a fault duration for the short suite.
func (r *run) d(full time.Duration) time.Duration {
	if r.short {
		return full / 2
	}
	return full
}

func (r *run) sleep(d time.Duration) { time.Sleep(d) }

// wl sends a workload command, failing the run on error.
func (r *run) wl(format string, args ...any) error { return r.c.Workload(fmt.Sprintf(format, args...)) }

func (r *run) figure(format string, args ...any) {
	r.extra = append(r.extra, fmt.Sprintf(format, args...))
}

var (
	suiteOnce     sync.Once
	suiteDir      string
	suiteBins     [2]string
	suiteErr      error
	suiteSeed     uint64
	summaryMu     sync.Mutex
	distrodRepoRt = repoRoot()
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// requireLab skips unless the suite was asked for and can run here.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Getenv("CHAOS") != "1" {
		t.Skip("fault-injection suite: set CHAOS=1 and run as root (make chaos)")
	}
	if os.Geteuid() != 0 {
		t.Skip("fault-injection suite needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "nft", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("fault-injection suite needs %s (apt-get install -y nftables iproute2)", tool)
		}
	}
}

// setupSuite builds the binaries (unless given) and picks the results
// directory and the base seed, once per test process.
func setupSuite(t *testing.T) {
	suiteOnce.Do(func() {
		suiteDir = os.Getenv("CHAOS_RESULTS")
		if suiteDir == "" {
			suiteDir = filepath.Join(distrodRepoRt, "chaos-results", time.Now().Format("20060102-150405"))
		}
		if suiteErr = os.MkdirAll(suiteDir, 0o755); suiteErr != nil {
			return
		}
		suiteCommit = gitCommit()
		if os.Getenv("CHAOS_TIMINGS") == "default" {
			useTimings(Defaults)
		}
		suiteSeed = uint64(time.Now().UnixNano())
		if s := os.Getenv("CHAOS_SEED"); s != "" {
			suiteSeed, suiteErr = strconv.ParseUint(s, 10, 64)
			if suiteErr != nil {
				return
			}
		}
		suiteBins[0], suiteBins[1] = os.Getenv("CHAOS_DISTROD"), os.Getenv("CHAOS_WORKLOAD")
		bin := filepath.Join(suiteDir, "bin")
		for i, pkg := range []string{"./cmd/distrod", "./chaos/workload"} {
			if suiteBins[i] != "" {
				continue
			}
			suiteBins[i] = filepath.Join(bin, filepath.Base(pkg))
			cmd := exec.Command("go", "build", "-o", suiteBins[i], pkg)
			cmd.Dir = distrodRepoRt
			if out, err := cmd.CombinedOutput(); err != nil {
				suiteErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if suiteErr != nil {
		t.Fatal(suiteErr)
	}
}

func short() bool { return os.Getenv("CHAOS_SHORT") == "1" }

// suiteCommit names the tree the binaries were built from: results are
// only meaningful against it.
var suiteCommit string

func gitCommit() string {
	if c := os.Getenv("CHAOS_COMMIT"); c != "" {
		return c
	}
	out, err := exec.Command("git", "-C", distrodRepoRt, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// runScenario executes one scenario end to end and judges it.
func runScenario(t *testing.T, idx int, sc *scenario) {
	requireLab(t)
	setupSuite(t)
	seed := suiteSeed + uint64(idx)*1000003
	dir := filepath.Join(suiteDir, sc.ID)
	t.Logf("%s %s at %s: seed %d (rerun with CHAOS_SEED=%d), evidence in %s", sc.ID, sc.Name, suiteCommit, seed, suiteSeed, dir)
	c, err := NewCluster(Config{Name: sc.ID, Dir: dir, Nodes: sc.Nodes, ClusterConf: sc.ClusterConf, NodeExtra: sc.NodeExtra,
		Distrod: suiteBins[0], Workload: suiteBins[1], Seed: seed, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &run{t: t, c: c, sc: sc, short: short(), seed: seed, rng: rand.New(rand.NewPCG(seed, 42))}
	res, err := execute(r)
	if err != nil {
		c.Close()
		line := fmt.Sprintf("FAIL %s %s harness error: %v (evidence in %s)", sc.ID, sc.Name, err, dir)
		fmt.Println(line)
		appendSummary(line, nil)
		t.Fatal(err)
	}
	res.Extra = strings.Join(r.extra, " ")
	line := res.Line()
	c.Close()
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(res.Report()), 0o644); err != nil {
		t.Log(err)
	}
	if res.Pass() && os.Getenv("CHAOS_KEEP") != "1" {
		_ = os.RemoveAll(dir)
	} else {
		line += " evidence=" + dir
	}
	fmt.Println(line)
	appendSummary(line, res)
	if !res.Pass() {
		t.Errorf("%s: %d invariant violations; report %s", sc.ID, len(res.Violations), filepath.Join(dir, "report.txt"))
		for i, v := range res.Violations {
			if i == 20 {
				t.Logf("... %d more in the report", len(res.Violations)-20)
				break
			}
			t.Log(v)
		}
	}
}

// suiteRows collects every scenario's result for results.md.
var suiteRows []*Result

func appendSummary(line string, res *Result) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if res != nil {
		suiteRows = append(suiteRows, res)
	}
	if f, err := os.OpenFile(filepath.Join(suiteDir, "summary.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
	if res == nil {
		return
	}
	if f, err := os.OpenFile(filepath.Join(suiteDir, "results.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		_ = json.NewEncoder(f).Encode(struct {
			*Result
			Pass bool
			Line string
		}{res, res.Pass(), res.Line()})
		f.Close()
	}
}

// execute is the common skeleton: start, load, fault schedule, heal,
// quiesce, converge, final window, peer-auth probes, judge.
func execute(r *run) (*Result, error) {
	c, sc := r.c, r.sc
	if err := c.StartAll(); err != nil {
		return nil, err
	}
	c.StartPoller(200 * time.Millisecond)
	ready := sc.ReadyTimeout
	if ready == 0 {
		ready = time.Minute
	}
	if err := c.StartWorkload(c.Nodes, ready, sc.WorkloadArgs...); err != nil {
		return nil, err
	}
	r.sleep(3 * time.Second) // warm-up: every instance beating, visible everywhere
	if err := sc.Run(r); err != nil {
		return nil, fmt.Errorf("fault schedule: %w", err)
	}
	if err := c.Heal(); err != nil {
		return nil, err
	}
	healAt := time.Now()
	if err := c.Workload("quiesce"); err != nil {
		return nil, err
	}

	// I1: converge within the bound, then compare every answer byte for byte.
	bound := sc.ConvBound
	if bound == 0 {
		bound = 2 * TConv
	}
	conv := converge(c, healAt, bound)
	listDiffs, metricDiffs, finalLists := compareNodes(c)

	// Final window: writes quiesced, heartbeats going on; I2/I3 are judged here.
	finalFrom := time.Now()
	window := 6 * time.Second
	if r.short {
		window = 4 * time.Second
	}
	r.sleep(window)

	// Nodes whose self-preservation cap deferred expirations (I4).
	throttled := map[string]bool{}
	for _, n := range c.Nodes {
		if r.metric(n.Role, "distro_expiry_throttled_total") > 0 {
			throttled[n.Role] = true
		}
	}
	// I10: forged peer calls to one node, which must change nothing anywhere.
	auth, delta, authChanged := probeAuth(r)
	r.sleep(time.Second)
	stopAt := time.Now()
	if err := c.StopWorkload(); err != nil {
		return nil, err
	}
	c.StopPoller()
	if err := c.SaveEvidence(); err != nil {
		return nil, err
	}
	ops, err := history.ReadFile(c.HistoryPath())
	if err != nil {
		return nil, err
	}
	return Check(sc.ID, sc.Name, CheckInput{Ops: ops, Samples: c.Obs.Samples(), Events: c.Events(), FinalFrom: finalFrom,
		WorkloadStop: stopAt, Conv: conv, ConvBound: bound, ListDiffs: listDiffs, MetricDiffs: metricDiffs,
		Auth: auth, AuthDelta: delta, AuthChanged: authChanged, CheckI9: sc.CheckI9, WriteP99Bound: time.Second, FinalLists: finalLists, WatchNodes: sc.WatchNodes, Throttled: throttled}), nil
}

// converge polls the active nodes until every one lists the same instances
// with the same health, and returns how long after the heal that was; -1
// if it did not happen within bound.
func converge(c *Cluster, healAt time.Time, bound time.Duration) time.Duration {
	ctx, cancel := context.WithDeadline(context.Background(), healAt.Add(bound))
	defer cancel()
	for ctx.Err() == nil {
		ss := c.Obs.Round(ctx, c.Active())
		if equalSamples(ss) {
			return time.Since(healAt)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1
}

func equalSamples(ss []Sample) bool {
	for _, s := range ss {
		if !usable(&s) || !reflect.DeepEqual(s.Inst, ss[0].Inst) {
			return false
		}
	}
	return len(ss) > 0
}

// compareNodes compares the hosts of every service byte for byte, and the
// registry-size metrics, across the active nodes. It retries for a few
// seconds (a health change may be in flight) and reports the last
// differences.
func compareNodes(c *Cluster) (lists, metrics []string, final map[string]map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := c.Active()
	for try := 0; try < 5; try++ {
		lists, metrics, final = nil, nil, map[string]map[string]bool{}
		for _, n := range nodes {
			final[n.Role] = map[string]bool{}
		}
		svcSet := map[string]bool{}
		for _, n := range nodes {
			names, err := c.Obs.Services(ctx, n.Addr, "chaos-")
			if err != nil {
				lists = append(lists, fmt.Sprintf("%s: service list: %v", n.Role, err))
			}
			for _, s := range names {
				svcSet[s] = true
			}
		}
		svcs := make([]string, 0, len(svcSet))
		for s := range svcSet {
			svcs = append(svcs, s)
		}
		slices.Sort(svcs)
		for _, svc := range svcs {
			var ref []byte
			for i, n := range nodes {
				h, err := c.Obs.Hosts(ctx, n.Addr, svc)
				if err != nil {
					lists = append(lists, fmt.Sprintf("%s %s: %v", n.Role, svc, err))
					continue
				}
				var hosts []struct {
					IP   string `json:"ip"`
					Port int    `json:"port"`
				}
				_ = json.Unmarshal(h, &hosts)
				for _, x := range hosts {
					final[n.Role][svc+"/"+x.IP+":"+strconv.Itoa(x.Port)] = true
				}
				if i == 0 {
					ref = h
				} else if string(h) != string(ref) {
					lists = append(lists, fmt.Sprintf("hosts of %s differ between %s (%d bytes) and %s (%d bytes)", svc, nodes[0].Role, len(ref), n.Role, len(h)))
				}
			}
		}
		var refM map[string]float64
		for i, n := range nodes {
			m, err := c.Obs.Metrics(ctx, n.Addr, "distro_instances", "distro_services")
			for k := range m {
				if k != "distro_instances" && k != "distro_services" {
					delete(m, k)
				}
			}
			if err != nil {
				metrics = append(metrics, fmt.Sprintf("%s: metrics: %v", n.Role, err))
				continue
			}
			if i == 0 {
				refM = m
			} else if !reflect.DeepEqual(m, refM) {
				metrics = append(metrics, fmt.Sprintf("registry size differs: %s %v, %s %v", nodes[0].Role, refM, n.Role, m))
			}
		}
		if len(lists) == 0 && len(metrics) == 0 {
			return nil, nil, final
		}
		time.Sleep(time.Second)
	}
	return lists, metrics, final
}

// probeAuth runs the I10 probes against the first active node, claiming to
// be the second, and reports which nodes list the forged instance after.
func probeAuth(r *run) ([]AuthProbe, map[string]float64, []string) {
	c := r.c
	nodes := c.Active()
	target, from, other := nodes[0], nodes[1], nodes[len(nodes)-1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const metric = "distro_cluster_auth_failures_total"
	sum := func() float64 {
		m, _ := c.Obs.Metrics(ctx, target.Addr, metric)
		t := 0.0
		for _, v := range m {
			t += v
		}
		return t
	}
	before := sum()
	lists := func() map[string]map[string]bool {
		out := map[string]map[string]bool{}
		for _, n := range nodes {
			if inst, err := c.Obs.Catalog(ctx, n.Addr); err == nil {
				out[n.Role] = inst
			}
		}
		return out
	}
	pre := lists()
	c.Event(EvMark, target.Role, "I10: forged peer calls to %s", target.Role)
	probes := ProbeAuth(ctx, target.Addr, from.Addr, other.Addr, c.Lab.IP("obs")+":8848", c.Secret)
	time.Sleep(500 * time.Millisecond)
	delta := map[string]float64{target.Role: sum() - before}
	var changed []string
	for role, inst := range lists() {
		if _, ok := inst[ForgedKey]; ok {
			changed = append(changed, role+": "+ForgedKey+" planted")
		}
		for k, h := range inst {
			if old, ok := pre[role][k]; !ok || old != h {
				changed = append(changed, role+": "+k)
			}
		}
		for k := range pre[role] {
			if _, ok := inst[k]; !ok {
				changed = append(changed, role+": "+k)
			}
		}
	}
	return probes, delta, changed
}

// TestChaos runs the fault matrix: one subtest per scenario (-run
// 'TestChaos/F1$'). It is skipped unless CHAOS=1 and running as root.
func TestChaos(t *testing.T) {
	requireLab(t)
	setupSuite(t) // picks the timing profile the scenario table reads
	for i, sc := range scenarios() {
		t.Run(sc.ID, func(t *testing.T) {
			if sc.Run == nil {
				runF13(t)
				return
			}
			runScenario(t, i, sc)
		})
	}
	if suiteDir != "" {
		p := filepath.Join(suiteDir, "results.md")
		if err := os.WriteFile(p, []byte(resultsTable()), 0o644); err == nil {
			t.Logf("results table: %s", p)
		}
	}
}

// resultsTable renders the collected results as the markdown table of
// docs/reliability.md.
func resultsTable() string {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s at commit %s, seed %d, %d CPUs.\n\n", time.Now().Format("2006-01-02 15:04"), suiteCommit, suiteSeed, runtime.NumCPU())
	b.WriteString("| # | scenario | verdict | writes ok/failed | write p99 | lost | stale | resurrected | conv | heal conv p99 (max, n) | vis p50/p99 | expired in bound | max expiry lag | dropouts | heal dropouts | ready gate | unready reads | auth | violated |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range suiteRows {
		verdict, violated := "PASS", "-"
		if !r.Pass() {
			verdict, violated = "**FAIL**", strings.Join(r.Violated(), ", ")
		}
		conv := ms(r.Conv)
		switch {
		case r.Writes == 0:
			conv = "-" // in-memory harness row
		case r.Conv < 0:
			conv = "never"
		}
		expiry, lag := "-", "-"
		if r.Stopped > 0 {
			expiry, lag = fmt.Sprintf("%d/%d", r.ExpiredInTime, r.Stopped), ms(r.ExpiryLagMax)
		}
		gate, unready := "-", "-"
		if r.Restarts > 0 {
			gate, unready = fmt.Sprintf("%d/%d", r.Restarts-r.ReadyIncomplete, r.Restarts), strconv.Itoa(r.UnreadyIncompleteReads)
		}
		healConv := "-"
		if r.HealConvN > 0 {
			healConv = fmt.Sprintf("%s (%s, %d)", ms(r.HealConvP99), ms(r.HealConvMax), r.HealConvN)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d/%d | %s | %d | %d | %d | %s | %s | %s/%s | %s | %s | %d | %d | %s | %s | %d/%d | %s |\n",
			r.ID, r.Name, verdict, r.Writes-r.WritesFailed, r.WritesFailed, ms(r.WriteP99), r.Lost, r.Stale, r.Resurrected, conv, healConv,
			ms(r.VisP50), ms(r.VisP99), expiry, lag, r.Dropouts, r.HealDropouts, gate, unready, r.AuthOK, r.AuthTotal, violated)
	}
	return b.String()
}
