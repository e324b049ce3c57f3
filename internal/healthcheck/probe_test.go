package healthcheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/addrpolicy"
	"github.com/distro-registry/distro/internal/model"
)

// hostPort splits a listener address into the probe's host and port.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p := hostPort(t, l.Addr().String())
	l.Close()
	return p
}

func probe(p *Probe) error {
	if p.Timeout == 0 {
		p.Timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	return NewNetProber(addrpolicy.Default()).Probe(ctx, p)
}

// acceptingListener is a loopback listener served by serveAccept until the
// test ends; accepted counts its connections.
func acceptingListener(t *testing.T) (l net.Listener, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int32)
	go serveAccept(l, accepted)
	return l, accepted
}

func TestTCPProbe(t *testing.T) {
	l, accepted := acceptingListener(t)
	host, port := hostPort(t, l.Addr().String())
	tcp := model.HealthChecker{Type: model.CheckTCP}
	if err := probe(&Probe{Host: host, Port: port, Check: tcp}); err != nil {
		t.Fatalf("open port: %v", err)
	}
	if err := probe(&Probe{Host: host, Port: closedPort(t), Check: tcp}); err == nil || !strings.Contains(err.Error(), "tcp") {
		t.Fatalf("closed port: %v, want a tcp error", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("listener accepted %d connections, want 1", n)
	}
	if err := probe(&Probe{Host: "::1", Port: closedPort(t), Check: tcp}); err == nil {
		t.Fatal("closed IPv6 loopback port passed")
	}
}

// TestTCPProbeHonoursContext: the check's deadline bounds the connect (a
// context that is already over fails at once, even on an open port).
func TestTCPProbeHonoursContext(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	host, port := hostPort(t, l.Addr().String())
	err = NewNetProber(addrpolicy.Default()).Probe(ctx, &Probe{Host: host, Port: port, Check: model.HealthChecker{Type: model.CheckTCP}})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("probe with an expired context: %v after %v", err, time.Since(start))
	}
}

func TestHTTPProbe(t *testing.T) {
	var hits, others atomic.Int32
	var gotPath, gotHeader, gotHost, gotUA atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		gotPath.Store(r.URL.RequestURI())
		gotHeader.Store(r.Header.Get("X-Check"))
		gotHost.Store(r.Host)
		gotUA.Store(r.UserAgent())
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/fail":
			w.WriteHeader(500)
		case "/created":
			w.WriteHeader(201)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/redirect":
			http.Redirect(w, r, "http://"+r.Host+"/elsewhere", http.StatusFound)
		case "/huge":
			// An endless body: the probe reads a bounded prefix and hangs up.
			w.WriteHeader(200)
			chunk := []byte(strings.Repeat("x", 64<<10))
			for i := 0; i < 1<<14; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		default:
			others.Add(1)
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.Listener.Addr().String())
	httpCheck := func(path string, code int) model.HealthChecker {
		return model.HealthChecker{Type: model.CheckHTTP, Path: path, ExpectedCode: code}
	}
	for _, tt := range []struct {
		name    string
		check   model.HealthChecker
		timeout time.Duration
		err     string
	}{
		{"200", httpCheck("/ok", 200), 0, ""},
		{"500", httpCheck("/fail", 200), 0, "status 500, want 200"},
		{"wrong code", httpCheck("/created", 200), 0, "status 201"},
		{"expected other code", httpCheck("/created", 201), 0, ""},
		{"timeout", httpCheck("/slow", 200), 200 * time.Millisecond, "deadline"},
		{"redirect is not followed", httpCheck("/redirect", 200), 0, "status 302"},
		{"redirect judged by its code", httpCheck("/redirect", 302), 0, ""},
		{"bounded body", httpCheck("/huge", 200), 5 * time.Second, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := probe(&Probe{Host: host, Port: port, Check: tt.check, Timeout: tt.timeout})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
			if tt.timeout > 0 && time.Since(start) > tt.timeout+2*time.Second {
				t.Fatalf("took %v with a %v timeout", time.Since(start), tt.timeout)
			}
		})
	}
	if n := others.Load(); n != 0 {
		t.Fatalf("%d requests went to a path the check did not name (a followed redirect)", n)
	}
	// Path, query and headers as configured; a Host header only renames the host.
	check := model.HealthChecker{Type: model.CheckHTTP, Path: "/ok?deep=1", Headers: "X-Check: yes|Host:svc.example", ExpectedCode: 200}
	if err := probe(&Probe{Host: host, Port: port, Check: check}); err != nil {
		t.Fatal(err)
	}
	if gotPath.Load() != "/ok?deep=1" || gotHeader.Load() != "yes" || gotHost.Load() != "svc.example" || gotUA.Load() != "distro-health-check" {
		t.Fatalf("request: path %v, X-Check %v, Host %v, UA %v", gotPath.Load(), gotHeader.Load(), gotHost.Load(), gotUA.Load())
	}
	// A closed port fails.
	if err := probe(&Probe{Host: host, Port: closedPort(t), Check: httpCheck("/ok", 200)}); err == nil {
		t.Fatal("closed port passed")
	}
}

// TestHTTPProbeOnlyDialsTheInstance: the transport refuses any address but
// the probe's own, and ignores proxy settings from the environment.
func TestHTTPProbeOnlyDialsTheInstance(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	host, port := hostPort(t, srv.Listener.Addr().String())
	if err := probe(&Probe{Host: host, Port: port, Check: model.HealthChecker{Type: model.CheckHTTP, Path: "/", ExpectedCode: 200}}); err != nil {
		t.Fatal(err)
	}
	if proxied.Load() != 0 {
		t.Fatal("the check went through the environment's proxy")
	}
	n := NewNetProber(addrpolicy.Default())
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if resp, err := n.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the transport dialed an address no probe named")
	}
}

// TestProbeAddressPolicy: a probe never connects to an address the policy
// refuses, whatever the check type, and the decision is made on the
// address dialled, so a host name does not route around it. The default
// policy refuses the cloud metadata service and allows loopback.
func TestProbeAddressPolicy(t *testing.T) {
	l, accepted := acceptingListener(t)
	_, port := hostPort(t, l.Addr().String())
	tcp := model.HealthChecker{Type: model.CheckTCP}
	get := model.HealthChecker{Type: model.CheckHTTP, Path: "/", ExpectedCode: 200}
	run := func(p addrpolicy.Policy, host string, port int, c model.HealthChecker) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return NewNetProber(p).Probe(ctx, &Probe{Host: host, Port: port, Check: c})
	}
	def := addrpolicy.Default()
	for _, c := range []model.HealthChecker{tcp, get} {
		if err := run(def, "127.0.0.1", port, c); err != nil {
			t.Fatalf("%s of loopback under the default policy: %v", c.Type, err)
		}
		// Refused before a packet is sent (the dialer's control hook runs
		// before connect), so this touches no network.
		if err := run(def, "169.254.169.254", 80, c); err == nil || !strings.Contains(err.Error(), "denied range 169.254.0.0/16") {
			t.Fatalf("%s of the metadata address: %v", c.Type, err)
		}
	}
	noLoopback, err := addrpolicy.Parse("127.0.0.0/8,::1", "")
	if err != nil {
		t.Fatal(err)
	}
	onlyTen, _ := addrpolicy.Parse("", "10.0.0.0/8")
	before := accepted.Load()
	for _, host := range []string{"127.0.0.1", "localhost", "0.0.0.0"} {
		for _, c := range []model.HealthChecker{tcp, get} {
			if err := run(noLoopback, host, port, c); err == nil || !strings.Contains(err.Error(), "denied range") {
				t.Errorf("%s of %s with loopback denied: %v", c.Type, host, err)
			}
			if err := run(onlyTen, host, port, c); err == nil || !strings.Contains(err.Error(), "no allowed range") {
				t.Errorf("%s of %s with only 10/8 allowed: %v", c.Type, host, err)
			}
		}
	}
	if n := accepted.Load() - before; n != 0 {
		t.Fatalf("the listener accepted %d connections the policy refuses", n)
	}
}
