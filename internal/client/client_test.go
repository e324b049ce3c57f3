package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorded is one request as a test server saw it.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Form   url.Values // body params only (POST/PUT)
	Header http.Header
}

// fakeServer is an httptest server that records requests and answers with
// a handler the test can swap.
type fakeServer struct {
	*httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	reqs    []recorded
	handler http.HandlerFunc
}

func newFake(t *testing.T, h http.HandlerFunc) *fakeServer {
	t.Helper()
	f := &fakeServer{handler: h}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Form: form, Header: r.Header.Clone()})
		h := f.handler
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// addr is the fake's host:port.
func (f *fakeServer) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeServer) last(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("server got no request")
	}
	return f.reqs[len(f.reqs)-1]
}

// deadAddr returns a loopback host:port with nothing listening on it.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

func status(code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, msg)
	}
}

func newClient(t *testing.T, servers []string, seed uint64, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithRand(rand.New(rand.NewPCG(seed, seed))), WithTimeout(2 * time.Second)}, opts...)
	c, err := New(servers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewValidatesServers(t *testing.T) {
	for _, servers := range [][]string{nil, {}, {""}, {"localhost"}, {"127.0.0.1:x"}, {":8848"}, {"127.0.0.1:8848", "127.0.0.1:0"}} {
		if _, err := New(servers); err == nil {
			t.Errorf("New(%q) = nil error, want error", servers)
		}
	}
	c, err := New([]string{" 127.0.0.1:8848", "[::1]:8849"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers(); got[0] != "127.0.0.1:8848" || got[1] != "[::1]:8849" {
		t.Errorf("Servers() = %q", got)
	}
}

// Requests spread over all servers: the first server of each call is random.
func TestRandomServerChoice(t *testing.T) {
	a, b := newFake(t, ok), newFake(t, ok)
	c := newClient(t, []string{a.addr(), b.addr()}, 1)
	for range 40 {
		if err := c.DeregisterInstance(context.Background(), "svc", "", "10.0.0.1", 80, "", true); err != nil {
			t.Fatal(err)
		}
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 || a.hits.Load()+b.hits.Load() != 40 {
		t.Errorf("hits a=%d b=%d, want both > 0 and 40 in all", a.hits.Load(), b.hits.Load())
	}
}

func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(t *testing.T) (addr string, hits func() int64)
	}{
		{"closed listener", func(t *testing.T) (string, func() int64) {
			return deadAddr(t), func() int64 { return 0 }
		}},
		{"503", func(t *testing.T) (string, func() int64) {
			f := newFake(t, status(http.StatusServiceUnavailable, "server is starting"))
			return f.addr(), f.hits.Load
		}},
		{"500", func(t *testing.T) (string, func() int64) {
			f := newFake(t, status(http.StatusInternalServerError, "boom"))
			return f.addr(), f.hits.Load
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := newFake(t, ok)
			down, downHits := tc.down(t)
			// Both orders of the two servers occur across seeds and calls.
			for seed := range uint64(5) {
				c := newClient(t, []string{down, good.addr()}, seed)
				for range 10 {
					if err := c.DeregisterInstance(context.Background(), "svc", "", "10.0.0.1", 80, "", true); err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
				}
			}
			if got := good.hits.Load(); got != 50 {
				t.Errorf("good server hits = %d, want 50 (every call)", got)
			}
			if tc.name != "closed listener" {
				if h := downHits(); h == 0 || h == 50 {
					t.Errorf("down server hits = %d, want some but not all (random first pick)", h)
				}
			}
		})
	}
}

// With every server failing, each is tried exactly once and the error
// reports all of them.
func TestAllServersFail(t *testing.T) {
	a := newFake(t, status(http.StatusServiceUnavailable, "overloaded"))
	b := newFake(t, status(http.StatusBadGateway, ""))
	dead := deadAddr(t)
	c := newClient(t, []string{a.addr(), b.addr(), dead}, 7)
	err := c.RegisterInstance(context.Background(), Instance{ServiceName: "svc", IP: "10.0.0.1", Port: 80, Weight: 1})
	if err == nil {
		t.Fatal("want error")
	}
	if a.hits.Load() != 1 || b.hits.Load() != 1 {
		t.Errorf("hits a=%d b=%d, want 1 each", a.hits.Load(), b.hits.Load())
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("errors.Is(err, ErrUnavailable) = false for %v", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status < 500 {
		t.Errorf("errors.As(*APIError) = %v, %+v", err, ae)
	}
	msg := err.Error()
	for _, want := range []string{"all 3 servers failed", "503 from " + a.addr() + ": overloaded", "502 from " + b.addr() + ": Bad Gateway", dead + ": connect: connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line", msg)
	}
}

func TestSingleServerErrorIsPlain(t *testing.T) {
	dead := deadAddr(t)
	c := newClient(t, []string{dead}, 1)
	_, err := c.ListInstances(context.Background(), "svc", "", nil, false)
	if got, want := err.Error(), dead+": connect: connection refused"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Error("want ErrUnavailable")
	}
}

// A 4xx is the cluster's answer: it is not retried on another server.
func TestClientErrorNotRetried(t *testing.T) {
	var servers []*fakeServer
	var addrs []string
	for range 3 {
		f := newFake(t, status(http.StatusBadRequest, "weight 20000 is out of range 0-10000\n"))
		servers = append(servers, f)
		addrs = append(addrs, f.addr())
	}
	c := newClient(t, addrs, 3)
	err := c.RegisterInstance(context.Background(), Instance{ServiceName: "svc", IP: "10.0.0.1", Port: 80, Weight: 20000})
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if ae.Status != 400 || ae.Message != "weight 20000 is out of range 0-10000" {
		t.Errorf("APIError = %+v", ae)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Error("a 400 must not match ErrUnavailable")
	}
	var total int64
	for _, f := range servers {
		total += f.hits.Load()
		if f.addr() == ae.Server && f.hits.Load() != 1 {
			t.Errorf("answering server hits = %d", f.hits.Load())
		}
	}
	if total != 1 {
		t.Errorf("total hits = %d, want 1", total)
	}
	if got, want := err.Error(), "400 from "+ae.Server+": weight 20000 is out of range 0-10000"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestJSONErrorMessage(t *testing.T) {
	f := newFake(t, status(http.StatusNotFound, `{"code":404,"message":"service not found"}`))
	c := newClient(t, []string{f.addr()}, 1)
	err := c.Readyz(context.Background(), f.addr())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Message != "service not found" || ae.Status != 404 {
		t.Errorf("err = %v", err)
	}
}

// A hanging server costs one per-attempt timeout, then the call moves on.
func TestAttemptTimeoutFailsOver(t *testing.T) {
	release := make(chan struct{})
	slow := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	good := newFake(t, ok)
	for seed := range uint64(4) {
		c := newClient(t, []string{slow.addr(), good.addr()}, seed, WithTimeout(100*time.Millisecond))
		if err := c.DeregisterInstance(context.Background(), "svc", "", "10.0.0.1", 80, "", true); err != nil {
			t.Fatal(err)
		}
	}
	if slow.hits.Load() == 0 {
		t.Error("seeds never picked the slow server first; test proves nothing")
	}
}

func TestContextCancelStopsFailover(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var hits atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	a, b := newFake(t, h), newFake(t, h)
	c := newClient(t, []string{a.addr(), b.addr()}, 1)
	_, err := c.ListServices(ctx, "", 1, 10)
	if err == nil {
		t.Fatal("want error")
	}
	if hits.Load() != 1 {
		t.Errorf("hits = %d, want 1 (no failover after cancel)", hits.Load())
	}
}

func TestUserAgentAndNamespace(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"count":0,"doms":[]}`) })
	c := newClient(t, []string{f.addr()}, 1, WithUserAgent("distroctl/1.2.3"), WithNamespace("dev"))
	if _, err := c.ListServices(context.Background(), "", 0, 0); err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if ua := r.Header.Get("User-Agent"); ua != "distroctl/1.2.3" {
		t.Errorf("User-Agent = %q", ua)
	}
	if ns := r.Query.Get("namespaceId"); ns != "dev" {
		t.Errorf("namespaceId = %q", ns)
	}
}

func TestDefaultUserAgent(t *testing.T) {
	f := newFake(t, ok)
	c := newClient(t, []string{f.addr()}, 1)
	if err := c.Readyz(context.Background(), f.addr()); err != nil {
		t.Fatal(err)
	}
	if ua := f.last(t).Header.Get("User-Agent"); ua != DefaultUserAgent {
		t.Errorf("User-Agent = %q", ua)
	}
	if f.last(t).Query.Has("namespaceId") {
		t.Error("namespaceId sent without WithNamespace")
	}
}

func TestConcurrentUse(t *testing.T) {
	a, b := newFake(t, ok), newFake(t, status(503, "down"))
	c := newClient(t, []string{a.addr(), b.addr()}, 9)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if err := c.DeregisterInstance(context.Background(), "svc", "", "10.0.0.1", 80, "", true); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
