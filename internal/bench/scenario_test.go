package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
	"github.com/distro-registry/distro/internal/nacos/udppush"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// registryServer is the real Nacos v1 API of distrod (httpapi over
// registry.Local and a store, with UDP push) assembled as
// internal/server does, behind an httptest server.
type registryServer struct {
	st  *store.Store
	srv *httptest.Server
	h   http.Handler
}

func newRegistryServer(t *testing.T) *registryServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, log)
	push, err := udppush.New(udppush.Config{Listen: "127.0.0.1:0", MergeWindow: 5 * time.Millisecond}, st, clock.Real{}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = push.Run(ctx) })
	api := httpapi.New(httpapi.Config{Store: st, Writer: local, Push: push, Limits: model.DefaultLimits(), Logger: log})
	rs := &registryServer{st: st, h: api.Handler()}
	rs.srv = httptest.NewServer(rs.h)
	t.Cleanup(func() {
		rs.srv.Close()
		cancel()
		wg.Wait()
	})
	return rs
}

func (rs *registryServer) addr() string { return strings.TrimPrefix(rs.srv.URL, "http://") }

func (rs *registryServer) instances() int64 { _, n := rs.st.Counts(); return n }

func smallConfig(scenario string, targets ...string) Config {
	return Config{Targets: targets, Scenario: scenario, Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond,
		Concurrency: 4, Services: 5, InstancesPerService: 4, Cleanup: true, Seed: 1, RunID: "t"}
}

func runOK(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Fatalf("%s: requests %d errors %d %v", cfg.Scenario, res.Requests, res.Errors, res.ErrorKinds)
	}
	if res.CleanupError != "" {
		t.Fatalf("cleanup: %s", res.CleanupError)
	}
	return res
}

func TestScenariosAgainstRegistry(t *testing.T) {
	for _, sc := range []string{"query", "register", "reregister", "beat", "deregister", "mixed"} {
		t.Run(sc, func(t *testing.T) {
			rs := newRegistryServer(t)
			cfg := smallConfig(sc, rs.addr())
			cfg.ServerPIDs = []int{0} // unreadable: reported, not fatal
			if sc == "deregister" {
				cfg.Services = 50 // a pool large enough for the run
			}
			res := runOK(t, cfg)
			if res.ThroughputRPS <= 0 || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 {
				t.Fatalf("figures %+v", res.Latency)
			}
			if n := rs.instances(); n != 0 {
				t.Fatalf("%d instances left after cleanup", n)
			}
			switch sc {
			case "query":
				// 4 instances per list: the body is well over 1 KB.
				if res.BytesPerResponse < 1000 {
					t.Errorf("bytes/response %v", res.BytesPerResponse)
				}
			case "register", "reregister", "deregister":
				if res.BytesPerResponse != 2 { // "ok"
					t.Errorf("bytes/response %v", res.BytesPerResponse)
				}
			case "mixed":
				if len(res.Ops) < 2 {
					t.Errorf("ops %v", res.Ops)
				}
			}
			if res.Server == nil || res.Server.Error == "" {
				t.Errorf("pid 0 should be reported as unreadable: %+v", res.Server)
			}
		})
	}
}

func TestDeregisterStopsWhenPoolIsEmpty(t *testing.T) {
	rs := newRegistryServer(t)
	cfg := smallConfig("deregister", rs.addr())
	cfg.Duration, cfg.Warmup = time.Minute, 0
	res := runOK(t, cfg)
	if !res.Stopped || res.Requests != 20 {
		t.Fatalf("stopped %v requests %d", res.Stopped, res.Requests)
	}
}

func TestRegisterWithoutCleanupKeepsInstances(t *testing.T) {
	rs := newRegistryServer(t)
	cfg := smallConfig("register", rs.addr())
	cfg.Cleanup, cfg.Warmup, cfg.Duration, cfg.MaxRequests = false, 0, time.Minute, 37
	res := runOK(t, cfg)
	if res.Requests != 37 || rs.instances() != 37 {
		t.Fatalf("requests %d instances %d", res.Requests, rs.instances())
	}
}

func TestOpenLoopAgainstRegistry(t *testing.T) {
	rs := newRegistryServer(t)
	cfg := smallConfig("query", rs.addr())
	cfg.Rate, cfg.MaxRequests, cfg.Duration = 500, 40, 10*time.Second
	res := runOK(t, cfg)
	if res.Mode != "open" || res.Requests != 40 || res.StartLag == nil || res.Backlog != 0 {
		t.Fatalf("mode %s requests %d lag %v backlog %d", res.Mode, res.Requests, res.StartLag, res.Backlog)
	}
	// 40 requests at 500/s span about 80 ms.
	if res.ElapsedS < 0.07 || res.ElapsedS > 2 {
		t.Fatalf("elapsed %v", res.ElapsedS)
	}
}

// delayedNode serves h but hides, from list calls, instances registered
// (through any node) less than delay ago: a node that learns of writes late.
type delayedNode struct {
	h     http.Handler
	delay time.Duration
	mu    *sync.Mutex
	seen  map[string]time.Time // ip:port → registration time
}

func (d *delayedNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathList {
		rec := httptest.NewRecorder()
		d.h.ServeHTTP(rec, r)
		body := rec.Body.String()
		d.mu.Lock()
		hidden := false
		for ep, at := range d.seen {
			ip, _, _ := strings.Cut(ep, ":")
			if time.Since(at) < d.delay && strings.Contains(body, `"ip":"`+ip+`"`) {
				hidden = true
			}
		}
		d.mu.Unlock()
		if hidden {
			body = `{"name":"x","hosts":[]}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
		return
	}
	d.h.ServeHTTP(w, r)
}

// recorder notes registration times and passes everything to h.
type recorder struct {
	h    http.Handler
	mu   *sync.Mutex
	seen map[string]time.Time
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == PathInstance {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f, _ := url.ParseQuery(string(body))
		rc.mu.Lock()
		rc.seen[f.Get("ip")+":"+f.Get("port")] = time.Now()
		rc.mu.Unlock()
	}
	rc.h.ServeHTTP(w, r)
}

func TestConvergeMeasuresVisibilityDelay(t *testing.T) {
	rs := newRegistryServer(t)
	mu := &sync.Mutex{}
	seen := map[string]time.Time{}
	// Node 0 and node 1 share one registry; node 1 shows new instances
	// only 40 ms after their registration. Writes go through node 0's
	// recorder; the scenario registers on a random node, so both nodes
	// record.
	rec := &recorder{h: rs.h, mu: mu, seen: seen}
	n0 := httptest.NewServer(&delayedNode{h: rec, delay: 0, mu: mu, seen: seen})
	n1 := httptest.NewServer(&delayedNode{h: rec, delay: 40 * time.Millisecond, mu: mu, seen: seen})
	t.Cleanup(n0.Close)
	t.Cleanup(n1.Close)
	cfg := smallConfig("converge", strings.TrimPrefix(n0.URL, "http://"), strings.TrimPrefix(n1.URL, "http://"))
	cfg.Rate, cfg.MaxRequests, cfg.Duration, cfg.Warmup = 100, 20, 10*time.Second, 0
	cfg.BackgroundRate = 200
	cfg.PollInterval = 2 * time.Millisecond
	res := runOK(t, cfg)
	if res.Metric == nil || res.Metric.Latency.Count != 20 {
		t.Fatalf("metric %+v", res.Metric)
	}
	// Samples registered on node 1 are visible on node 0 at once (a few
	// ms); samples registered on node 0 appear on node 1 after 40 ms.
	if res.Metric.Latency.Max < 40 || res.Metric.Latency.Max > 200 {
		t.Fatalf("max time to visible %v ms", res.Metric.Latency.Max)
	}
	if res.Extra["background_requests"].(int64) == 0 {
		t.Fatalf("no background load: %v", res.Extra)
	}
	if n := rs.instances(); n != 0 {
		t.Fatalf("%d instances left", n)
	}
}

func TestConvergeTimesOut(t *testing.T) {
	rs := newRegistryServer(t)
	mu := &sync.Mutex{}
	seen := map[string]time.Time{}
	rec := &recorder{h: rs.h, mu: mu, seen: seen}
	n0 := httptest.NewServer(&delayedNode{h: rec, mu: mu, seen: seen, delay: time.Hour})
	t.Cleanup(n0.Close)
	cfg := smallConfig("converge", strings.TrimPrefix(n0.URL, "http://"), strings.TrimPrefix(n0.URL, "http://"))
	cfg.Rate, cfg.MaxRequests, cfg.Duration, cfg.Warmup = 100, 3, 10*time.Second, 0
	cfg.VisibleTimeout = 30 * time.Millisecond
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || res.ErrorKinds["not_visible"] != 3 {
		t.Fatalf("errors %v", res.ErrorKinds)
	}
}

func TestPushAgainstRegistry(t *testing.T) {
	rs := newRegistryServer(t)
	cfg := smallConfig("push", rs.addr())
	cfg.Rate, cfg.MaxRequests, cfg.Duration, cfg.Warmup = 100, 15, 10*time.Second, 0
	res := runOK(t, cfg)
	if res.Metric == nil || res.Metric.Latency.Count != 15 {
		t.Fatalf("metric %+v", res.Metric)
	}
	// The merge window is 5 ms: a push cannot come sooner.
	if res.Metric.Latency.Min < 5 || res.Metric.Latency.P50 > 1000 {
		t.Fatalf("push latency %+v", res.Metric.Latency)
	}
	if res.Extra["udp_acked"].(int64) < 15 {
		t.Fatalf("acks %v", res.Extra)
	}
}

func TestValidateConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no target":     {Scenario: "query", Duration: time.Second},
		"bad scenario":  {Targets: []string{"x:1"}, Scenario: "nope", Duration: time.Second},
		"unbounded":     {Targets: []string{"x:1"}, Scenario: "query"},
		"converge 1":    {Targets: []string{"x:1"}, Scenario: "converge", Duration: time.Second},
		"negative rate": {Targets: []string{"x:1"}, Scenario: "query", Duration: time.Second, Rate: -1},
		"huge pool":     {Targets: []string{"x:1"}, Scenario: "query", Duration: time.Second, Services: 1 << 20, InstancesPerService: 100},
	} {
		cfg.Defaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if _, err := ParseMix("query=1,bogus=2"); err == nil {
		t.Error("bad mix accepted")
	}
	if _, err := ParseMix("query=0"); err == nil {
		t.Error("all-zero mix accepted")
	}
	if m, err := ParseMix(""); err != nil || m.Query != 80 || m.Deregister != 5 {
		t.Errorf("default mix %+v %v", m, err)
	}
}

func TestUnreachableServerCountsTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	d := NewHTTPDriver([]string{addr}, HTTPOptions{Timeout: time.Second})
	defer d.Close()
	o := d.Query(t.Context(), 0, "x")
	if o.Kind != "conn_refused" {
		t.Fatalf("kind %q", o.Kind)
	}
}

func TestDeregisterWarmupLeavesMostOfThePool(t *testing.T) {
	rs := newRegistryServer(t)
	cfg := smallConfig("deregister", rs.addr())
	cfg.Duration, cfg.Warmup = time.Minute, time.Minute // pool of 20: the warmup may take 4
	res := runOK(t, cfg)
	if !res.Stopped || res.Requests != 16 {
		t.Fatalf("stopped %v requests %d", res.Stopped, res.Requests)
	}
}
