package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStatOf(t *testing.T) {
	if s := StatOf([]float64{3, 1, 2}); s.Median != 2 || s.Min != 1 || s.Max != 3 || s.N != 3 {
		t.Fatalf("%+v", s)
	}
	if s := StatOf([]float64{4, 1, 2, 3}); s.Median != 2.5 {
		t.Fatalf("even median %+v", s)
	}
	if s := StatOf(nil); s.N != 0 {
		t.Fatal("empty")
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP x\n# TYPE go_memstats_heap_alloc_bytes gauge\ngo_memstats_heap_alloc_bytes 1.810432e+06\n" +
		"go_gc_duration_seconds{quantile=\"0.5\"} 0.001\ngo_gc_duration_seconds_count 12\nbad line\nnan_metric abc\n"
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_memstats_heap_alloc_bytes"] != 1810432 || m["go_gc_duration_seconds_count"] != 12 || len(m) != 2 {
		t.Fatalf("%v", m)
	}
}

// fakeMetrics serves go_memstats whose live heap grows with the number of
// instances and whose GC count advances on every scrape.
type fakeMetrics struct {
	rs    *registryServer
	gc    atomic.Int64
	heap0 int64
	// exact serves go_gc_heap_live_bytes too, and a next_gc that also
	// grows with goroutine stacks (500 bytes per instance), as a server
	// with many connections has.
	exact atomic.Bool
}

func (f *fakeMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		f.rs.h.ServeHTTP(w, r)
		return
	}
	live := f.heap0 + 1000*f.rs.instances()
	nextGC := 2 * live
	if f.exact.Load() {
		nextGC += 500 * f.rs.instances()
		fmt.Fprintf(w, "go_gc_heap_live_bytes %d\n", live)
	}
	fmt.Fprintf(w, "go_memstats_heap_alloc_bytes %d\ngo_memstats_heap_inuse_bytes %d\ngo_memstats_next_gc_bytes %d\n"+
		"go_gc_gogc_percent 100\ngo_gc_duration_seconds_count %d\n", live+5000000, live+100, nextGC, f.gc.Add(1))
}

func TestFill(t *testing.T) {
	rs := newRegistryServer(t)
	fm := &fakeMetrics{rs: rs, heap0: 4 << 20}
	srv := httptest.NewServer(fm)
	defer srv.Close()
	res, err := Fill(t.Context(), FillConfig{Target: strings.TrimPrefix(srv.URL, "http://"), Instances: 300, InstancesPerService: 10,
		Concurrency: 8, ServerPID: os.Getpid(), Settle: 3 * time.Second, RunID: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Registered != 300 || res.Errors != 0 || rs.instances() != 300 || res.Services != 30 {
		t.Fatalf("%+v", res)
	}
	// The fake's live heap grows by exactly 1000 bytes per instance.
	if res.HeapLivePerInstance != 1000 {
		t.Fatalf("heap per instance %v (before %+v after %+v)", res.HeapLivePerInstance, res.Before, res.After)
	}
	if res.Before.RSSBytes <= 0 || res.After.RSSBytes <= 0 || res.After.GCCycles < res.Before.GCCycles+2 {
		t.Fatalf("snapshots %+v %+v", res.Before, res.After)
	}
	// With go_gc_heap_live_bytes, that is the figure, not next_gc (which
	// here also grows with stacks).
	fm.exact.Store(true)
	res, err = Fill(t.Context(), FillConfig{Target: strings.TrimPrefix(srv.URL, "http://"), Instances: 300, InstancesPerService: 10,
		Concurrency: 8, ServerPID: os.Getpid(), Settle: 3 * time.Second, RunID: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if res.HeapLivePerInstance != 1000 {
		t.Fatalf("heap per instance %v with the live heap series (before %+v after %+v)", res.HeapLivePerInstance, res.Before, res.After)
	}

	// A bound on time stops a fill early and says so.
	res, err = Fill(t.Context(), FillConfig{Target: strings.TrimPrefix(srv.URL, "http://"), Instances: 1 << 30, Concurrency: 2,
		MaxTime: 50 * time.Millisecond, Settle: 100 * time.Millisecond, MetricsURL: "none", RunID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || res.Registered == 0 {
		t.Fatalf("bounded fill %+v", res)
	}
}

func sampleCollection() *Collection {
	c := &Collection{Meta: map[string]string{"date": "2026-11-25", "mode": "quick", "commit": "abc", "reps": "3", "cpu": "AMD EPYC",
		"converge_target": "Target: p99 ≤ 100 ms."}}
	add := func(scenario, server, series string, rps, perCPU, p50, p99 float64, errs int64) {
		r := &Result{Kind: "run", Scenario: scenario, Mode: "closed", Tags: map[string]string{"server": server, "series": series},
			ThroughputRPS: rps, Requests: int64(rps * 10), Errors: errs, Latency: Summary{P50: p50, P90: p50 * 2, P99: p99, P999: p99 * 2, Max: p99 * 3},
			BytesPerResponse: 2, Server: &ServerResult{RequestsPerCPUSecond: perCPU, CPUUtilization: 0.97},
			Client: &CPUResult{CPUUtilization: 0.9}, Host: &HostResult{BusyBeforePct: 4}}
		if errs > 0 {
			r.ErrorKinds = map[string]int64{"http_500": errs}
		}
		if series == "open" {
			r.Mode, r.Rate = "open", rps
		}
		if scenario == "converge" || scenario == "push" {
			r.Metric = &MetricResult{Name: metricName(scenario), Latency: Summary{Count: 100, P50: 20, P90: 25, P99: 40, Max: 60}}
			r.Extra = map[string]any{"background_rate_set": 2000.0, "background_rate_achieved": 1999.0}
		}
		c.Runs = append(c.Runs, r)
	}
	for rep := range 3 {
		d := float64(rep)
		add("query", "distrod", "closed", 30000+1000*d, 32000, 1.2, 4.5, 0)
		add("query", "ceiling", "closed", 40000+1000*d, 45000, 1.0, 3.0, 0)
		add("register", "distrod", "closed", 20000+500*d, 22000, 2, 11, int64(rep))
		add("register", "ceiling", "closed", 41000, 46000, 1, 3, 0)
		add("query", "distrod", "open", 15000, 33000, 0.3, 1.5, 0)
		add("query", "ceiling", "open", 15000, 47000, 0.2, 1.0, 0)
		add("converge", "distrod-3node", "converge", 50, 0, 20, 30, 0)
	}
	add("query", "polaris", "closed", 10000, 11000, 3, 30, 0)
	c.Memory = append(c.Memory, &FillResult{Kind: "memory", Requested: 10000, Registered: 10000, Complete: true, FillSeconds: 1,
		FillRateRPS: 10000, RSSPerInstance: 900, HeapLivePerInstance: 600, Before: MemSnapshot{RSSBytes: 40 << 20},
		After: MemSnapshot{RSSBytes: 49 << 20, HeapLiveBytes: 8 << 20}},
		&FillResult{Kind: "memory", Requested: 1000000, Registered: 400000, Complete: false, FillSeconds: 60})
	return c
}

func TestWriteReport(t *testing.T) {
	var b strings.Builder
	if err := WriteReport(&b, sampleCollection(), ReportOptions{ImgPath: "img", ResultsPath: "docs/bench-results", Command: "make bench-report"}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| query | 31\u202f000 [30\u202f000–32\u202f000] | 41\u202f000 [40\u202f000–42\u202f000] | 0.76 | 32\u202f000 | 45\u202f000 | 0.71 |",
		"| register |", "3 of 615\u202f000 (http_500=3)", "### Peer servers", "| query | polaris | 10\u202f000 | 0.32 |",
		"## Open-loop latency", "| query | distrod | 15\u202f000 |", "## Convergence and push",
		"| converge | distrod-3node | 300 | 2\u202f000 → 1\u202f999 |", "distrod-3node: p99 40.0ms (median of 3 runs; worst 40.0ms), so the run **meets** the target.", "## Memory per instance", "| 10\u202f000 | 1.0 s |",
		"**no**: stopped at 400\u202f000", "![throughput](img/bench-throughput.svg)", "make bench-report", "AMD EPYC",
		"**Reading the table.**", "distrod does 48% (register) to 71% (query) of the work", "at least 90% busy in: query, register",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestWriteChartsAndLoadCollection(t *testing.T) {
	dir := t.TempDir()
	c := sampleCollection()
	for i, r := range c.Runs {
		if err := WriteJSON(filepath.Join(dir, fmt.Sprintf("run-%02d.json", i)), r); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range c.Memory {
		if err := WriteJSON(filepath.Join(dir, fmt.Sprintf("mem-%d.json", i)), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteJSON(filepath.Join(dir, "meta.json"), c.Meta); err != nil {
		t.Fatal(err)
	}
	// A run in which nothing completed is left out, and named.
	if err := WriteJSON(filepath.Join(dir, "zz-empty.json"), &Result{Kind: "run", Scenario: "query", Tags: map[string]string{"server": "distrod"}}); err != nil {
		t.Fatal(err)
	}
	died := &Result{Kind: "run", Scenario: "query", Requests: 5, Server: &ServerResult{Error: "pid 1: gone"}}
	if err := WriteJSON(filepath.Join(dir, "zz-died.json"), died); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Excluded) != 2 || back.Excluded[1] != "zz-empty.json (no request completed)" ||
		back.Excluded[0] != "zz-died.json (the server died during the run)" {
		t.Fatalf("excluded runs %v", back.Excluded)
	}
	var md strings.Builder
	if err := WriteReport(&md, back, ReportOptions{}); err != nil || !strings.Contains(md.String(), "zz-empty.json (no request completed)") {
		t.Fatalf("report does not name the excluded runs (%v)", err)
	}
	if len(back.Runs) != len(c.Runs) || len(back.Memory) != 2 || back.Meta["mode"] != "quick" {
		t.Fatalf("loaded %d runs %d memory meta %v", len(back.Runs), len(back.Memory), back.Meta)
	}
	if g := back.Find("query", "distrod", "closed"); g == nil || g.Stat(FThroughput).Median != 31000 {
		t.Fatalf("group %+v", g)
	}
	// ExtraFloat survives the JSON round trip (numbers become float64).
	if v := ExtraFloat(back.Find("converge", "distrod-3node", "converge").Runs[0], "background_rate_set"); v != 2000 {
		t.Fatalf("extra %v", v)
	}
	files, err := WriteCharts(back, filepath.Join(dir, "img"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("charts %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Well-formed XML with at least one bar.
		dec := xml.NewDecoder(strings.NewReader(string(b)))
		rects := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
				rects++
			}
		}
		if rects < 3 {
			t.Errorf("%s: %d rects", f, rects)
		}
	}
}

func TestChartHelpers(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234: "1.23k", 12345678: "12.3M", 0.5: "0.5", 100: "100", 45000: "45k"} {
		if got := CompactNumber(v); got != want {
			t.Errorf("CompactNumber(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]float64{0.7: 1, 3: 5, 12: 20, 4000: 5000, 0: 1} {
		if got := niceStep(v); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v", v, got)
		}
	}
	if lighten("#000000") != "#7f7f7f" || lighten("red") != "red" {
		t.Error("lighten")
	}
	if ServerOrder([]string{"ceiling", "polaris", "distrod", "ceiling"})[0] != "distrod" {
		t.Error("server order")
	}
	if got := ScenarioOrder([]string{"push", "query", "zzz", "beat"}); strings.Join(got, ",") != "query,beat,push,zzz" {
		t.Errorf("scenario order %v", got)
	}
	// A chart with no data still renders.
	if svg := (&BarChart{Title: "<empty> & co"}).SVG(); !strings.Contains(string(svg), "&lt;empty&gt; &amp; co") {
		t.Errorf("escaping: %s", svg)
	}
}

func TestWriteTable(t *testing.T) {
	c := sampleCollection()
	r := c.Runs[len(c.Runs)-2] // a converge run
	r.Targets, r.Driver = []string{"a:1", "b:2"}, "http-v1"
	r.Backlog, r.Stopped = 3, true
	r.Extra["background_latency"] = Summary{P50: 1}
	var b strings.Builder
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"converge (http-v1) → a:1,b:2", "backlog", "time_to_visible_everywhere", "server cpu", "p50 1.00ms  p90 0µs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
