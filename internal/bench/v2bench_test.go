package bench

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/nacos/grpcapi"
)

// TestGRPCCeilingReplaysCapturedAnswers: a v2 run with CaptureDir saves
// one answer per request type, and a gRPC ceiling loaded from that
// directory answers each type with those bytes, well enough for the same
// scenario to run against it.
func TestGRPCCeilingReplaysCapturedAnswers(t *testing.T) {
	srv := newV2Server(t)
	dir := t.TempDir()
	cfg := smallConfig("subscribe", srv.httpAddr)
	cfg.Protocol, cfg.GRPCPortOffset, cfg.CaptureDir = "v2", srv.portOffset, dir
	runOK(t, cfg)
	routes, err := LoadGRPCRoutes(dir)
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]string{grpcapi.TypeServerCheckRequest: grpcapi.TypeServerCheckResponse,
		grpcapi.TypeSubscribeServiceRequest: grpcapi.TypeSubscribeServiceResponse, grpcapi.TypeInstanceRequest: grpcapi.TypeInstanceResponse} {
		if r := routes[typ]; r.Type != want || len(r.Body) == 0 {
			t.Errorf("capture of %s: %+v", typ, r)
		}
	}
	if !strings.Contains(string(routes[grpcapi.TypeSubscribeServiceRequest].Body), `"hosts":[{`) {
		t.Errorf("subscribe answer without hosts: %s", routes[grpcapi.TypeSubscribeServiceRequest].Body)
	}

	ce := NewGRPCCeiling(routes)
	gs := ce.NewServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	d := NewGRPCDriver([]string{ln.Addr().String()}, GRPCOptions{Conns: 1, Timeout: 5 * time.Second})
	defer d.Close()
	o := d.Subscribe(t.Context(), 0, "anything")
	if !o.OK() || o.Bytes != int64(len(routes[grpcapi.TypeSubscribeServiceRequest].Body)) {
		t.Fatalf("ceiling subscribe: %+v", o)
	}
	// A type without a captured answer gets an error response.
	if o := d.Query(t.Context(), 0, "anything"); o.OK() || o.Kind != "v2_302" {
		t.Fatalf("uncaptured type: %+v", o)
	}
}

func TestSubscribeScenario(t *testing.T) {
	srv := newV2Server(t)
	cfg := smallConfig("subscribe", srv.httpAddr)
	cfg.Protocol, cfg.GRPCPortOffset = "v2", srv.portOffset
	res := runOK(t, cfg)
	if res.BytesPerResponse < 1000 {
		t.Errorf("bytes/response %v: answers should carry the instances", res.BytesPerResponse)
	}
	if n := srv.instances(); n != 0 {
		t.Fatalf("%d instances left", n)
	}
}

// TestFanoutScenario: every subscriber's push is one sample.
func TestFanoutScenario(t *testing.T) {
	srv := newV2Server(t)
	cfg := smallConfig("fanout", srv.httpAddr)
	cfg.Protocol, cfg.GRPCPortOffset = "v2", srv.portOffset
	cfg.Subscribers, cfg.Rate, cfg.MaxRequests, cfg.Duration, cfg.Warmup, cfg.Concurrency = 20, 20, 5, 10*time.Second, 0, 1
	res := runOK(t, cfg)
	if res.Metric == nil || res.Metric.Latency.Count != 100 {
		t.Fatalf("metric %+v, want 5 samples × 20 subscribers", res.Metric)
	}
	if res.Extra["missed_pushes"].(int64) != 0 || res.Extra["subscribers"].(int) != 20 {
		t.Fatalf("extra %v", res.Extra)
	}
	// The fanout scenario needs a connection per subscriber: v1 refuses it.
	cfg.Protocol = "v1"
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "connection of its own") {
		t.Fatalf("fanout over v1: %v", err)
	}
}

func TestMeasureConns(t *testing.T) {
	srv := newV2Server(t)
	type out struct {
		res *ConnsResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := MeasureConns(t.Context(), ConnsConfig{Target: srv.httpAddr, GRPCPortOffset: srv.portOffset, Connections: 20,
			Concurrency: 4, MetricsURL: "none", Settle: time.Second, Hold: 2 * time.Second})
		done <- out{res, err}
	}()
	// While held, every connection holds its instance.
	deadline := time.Now().Add(10 * time.Second)
	for srv.instances() != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d instances while connected, want 20", srv.instances())
		}
		time.Sleep(10 * time.Millisecond)
	}
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.res.Connected != 20 || o.res.Errors != 0 || o.res.Kind != "connections" {
		t.Fatalf("result %+v", o.res)
	}
	// Closing the connections removes their instances.
	for srv.instances() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d instances after the connections closed", srv.instances())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWriteReportV2Sections: the gRPC table, the fan-out and connection
// sections, and the goals table with verdicts computed from the runs.
func TestWriteReportV2Sections(t *testing.T) {
	c := sampleCollection()
	add := func(scenario, server, series string, rps, perCPU float64) {
		c.Runs = append(c.Runs, &Result{Kind: "run", Scenario: scenario, Mode: "closed", Tags: map[string]string{"server": server, "series": series},
			ThroughputRPS: rps, Requests: int64(rps * 10), Latency: Summary{P50: 1, P99: 5}, BytesPerResponse: 100,
			Server: &ServerResult{RequestsPerCPUSecond: perCPU, CPUUtilization: 0.9}, Client: &CPUResult{CPUUtilization: 0.8}})
	}
	add("register", "distrod", SeriesV2, 15000, 24000)
	add("register", "ceiling", SeriesV2, 20000, 30000)
	add("subscribe", "distrod", SeriesV2, 10000, 10000)
	add("subscribe", "ceiling", SeriesV2, 20000, 30000)
	add("register", "distrod", SeriesPersistent, 5000, 6000)
	add("register", "ceiling", SeriesPersistent, 40000, 48000)
	c.Runs = append(c.Runs, &Result{Kind: "run", Scenario: "fanout", Mode: "open", Tags: map[string]string{"server": "distrod", "series": "fanout"},
		Requests: 10, Metric: &MetricResult{Latency: Summary{Count: 10000, P50: 20, P90: 40, P99: 80, Max: 90}},
		Extra: map[string]any{"subscribers": 1000.0, "missed_pushes": 0.0}})
	c.Conns = append(c.Conns, &ConnsResult{Kind: "connections", Requested: 10000, Connected: 10000, SetupSeconds: 12,
		Before: MemSnapshot{RSSBytes: 15 << 20}, After: MemSnapshot{RSSBytes: 200 << 20}, RSSPerConn: 19000, HeapLivePerConn: 9000,
		StackPerConn: 8000, GoroutinesPerConn: 4})
	var b strings.Builder
	if err := WriteReport(&b, c, ReportOptions{ImgPath: "img"}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Goals",
		"| v2 register | 0.75 (req/s), 0.80 (per CPU-s) | ≥ 0.70 of the ceiling (req/s and per CPU-s) | **met** |",
		"| v2 subscribe | 0.50 (req/s), 0.33 (per CPU-s) |", "| v2 query | – |",
		"| v2 register per CPU-s vs v1 register per CPU-s | 24\u202f000 vs 22\u202f000 (1.09) | ≥ 1 | **met** |",
		"| push fan-out to 1\u202f000 gRPC subscribers, p99 | 80.0ms | ≤ 100 ms | **met** |",
		"| memory per connected v2 client, 10\u202f000 clients (heap + stacks) | 17\u202f000 B (RSS: 19\u202f000 B) | ≤ 16 KiB | **missed** |",
		"## Nacos 2 gRPC against the gRPC ceiling", "| register | 15\u202f000 | 20\u202f000 | 0.75 | 24\u202f000 | 30\u202f000 | 0.80 |",
		"![v2 throughput](img/bench-v2-throughput.svg)", "## Push fan-out", "| distrod | 10 | 10\u202f000 | 20.0ms |",
		"## Connected Nacos 2 clients", "| 10\u202f000 | 12.0 s |", "| 17\u202f000 B | 4.00 | 0 |",
		"## Persistent writes on one node (Raft)", "| register (persistent) | 5\u202f000 | 40\u202f000 | 0.12 | 6\u202f000 | 48\u202f000 | 0.12 | 1.00ms / 5.00ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
	files, err := WriteCharts(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Join(files, " ")
	if !strings.Contains(names, ChartV2Throughput) || !strings.Contains(names, ChartV2CPU) {
		t.Fatalf("charts %v", files)
	}
}
