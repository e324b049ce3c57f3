package bench

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// v2Server is distrod's client-facing side in process: the v1 HTTP API
// and the v2 gRPC API over one store and write path, as internal/server
// wires them, on loopback listeners.
type v2Server struct {
	st         *store.Store
	httpAddr   string
	grpcAddr   string
	portOffset int
}

func newV2Server(t *testing.T) *v2Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, log)
	g, err := grpcapi.New(grpcapi.Config{Store: st, Writer: local, Conns: local, Limits: model.DefaultLimits(),
		MergeWindow: 5 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.Serve(ctx, ln) })
	api := httpapi.New(httpapi.Config{Store: st, Writer: local, Limits: model.DefaultLimits(), Logger: log})
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		wg.Wait()
	})
	s := &v2Server{st: st, httpAddr: strings.TrimPrefix(hs.URL, "http://"), grpcAddr: ln.Addr().String()}
	s.portOffset = port(t, s.grpcAddr) - port(t, s.httpAddr)
	return s
}

func port(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *v2Server) instances() int64 { _, n := s.st.Counts(); return n }

func TestScenariosOverGRPC(t *testing.T) {
	for _, sc := range []string{"register", "query", "push", "reregister", "deregister", "converge"} {
		t.Run(sc, func(t *testing.T) {
			srv := newV2Server(t)
			targets := []string{srv.httpAddr}
			if sc == "converge" {
				targets = append(targets, srv.httpAddr) // two "nodes" sharing one registry
			}
			cfg := smallConfig(sc, targets...)
			cfg.Protocol, cfg.GRPCPortOffset = "v2", srv.portOffset
			switch sc {
			case "deregister":
				cfg.Services = 50
			case "push", "converge":
				cfg.Rate, cfg.MaxRequests, cfg.Duration, cfg.Warmup = 100, 15, 10*time.Second, 0
			}
			res := runOK(t, cfg)
			if res.Driver != "grpc-v2" {
				t.Fatalf("driver %q", res.Driver)
			}
			switch sc {
			case "query":
				if res.BytesPerResponse < 1000 { // 4 hosts per ServiceInfo
					t.Errorf("bytes/response %v", res.BytesPerResponse)
				}
			case "push":
				if res.Metric == nil || res.Metric.Latency.Count != 15 {
					t.Fatalf("metric %+v", res.Metric)
				}
				if res.Metric.Latency.Min < 5 || res.Metric.Latency.P50 > 1000 {
					t.Fatalf("push latency %+v", res.Metric.Latency)
				}
				if res.Extra["grpc_acked"].(int64) < 15 || res.Extra["grpc_bad"].(int64) != 0 {
					t.Fatalf("push counters %v", res.Extra)
				}
			}
			if n := srv.instances(); n != 0 {
				t.Fatalf("%d instances left", n)
			}
		})
	}
}

// TestGRPCDriverSlots: a v2 connection holds one instance per service, so
// instances of one service go to distinct connections, and each is
// deregistered on its own.
func TestGRPCDriverSlots(t *testing.T) {
	srv := newV2Server(t)
	d := NewGRPCDriver([]string{srv.grpcAddr}, GRPCOptions{Conns: 1, Timeout: 5 * time.Second})
	defer d.Close()
	ctx := t.Context()
	ins := []Instance{{Service: "s", IP: "10.0.0.1", Port: 1}, {Service: "s", IP: "10.0.0.2", Port: 1}, {Service: "s", IP: "10.0.0.3", Port: 1}}
	for i := range ins {
		if o := d.Register(ctx, 0, &ins[i]); !o.OK() {
			t.Fatalf("register: %+v", o)
		}
	}
	if o := d.Register(ctx, 0, &ins[0]); !o.OK() { // same slot again
		t.Fatalf("reregister: %+v", o)
	}
	if n := len(d.nodes[0].conns); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	o, hosts := d.Lookup(ctx, 0, "s")
	if !o.OK() || len(hosts) != 3 {
		t.Fatalf("lookup %+v %v", o, hosts)
	}
	if o := d.Deregister(ctx, 0, &ins[1]); !o.OK() {
		t.Fatalf("deregister: %+v", o)
	}
	_, hosts = d.Lookup(ctx, 0, "s")
	if len(hosts) != 2 || containsEndpoint(hosts, ins[1].Endpoint()) {
		t.Fatalf("after deregister %v", hosts)
	}
	if o := d.Beat(ctx, 0, &ins[0]); o.Kind != "unsupported" {
		t.Fatalf("beat %+v", o)
	}
}

func TestGRPCRejectsBeat(t *testing.T) {
	for _, sc := range []string{"beat", "mixed"} {
		cfg := Config{Targets: []string{"127.0.0.1:8848"}, Scenario: sc, Duration: time.Second, Protocol: "v2"}
		cfg.Defaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--protocol v2") {
			t.Errorf("%s over v2: %v", sc, err)
		}
	}
	cfg := Config{Targets: []string{"127.0.0.1:8848"}, Scenario: "query", Duration: time.Second, Protocol: "v3"}
	cfg.Defaults()
	if err := cfg.Validate(); err == nil {
		t.Error("protocol v3 accepted")
	}
	if gt, err := GRPCTargets([]string{"127.0.0.1:8848", "[::1]:8849"}, 1000); err != nil || gt[0] != "127.0.0.1:9848" || gt[1] != "[::1]:9849" {
		t.Errorf("targets %v %v", gt, err)
	}
}
