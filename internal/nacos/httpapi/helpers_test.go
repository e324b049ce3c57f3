package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/namespace"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

const formCT = "application/x-www-form-urlencoded;charset=utf-8"

var demo = model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

type harness struct {
	clk   *clock.Fake
	st    *store.Store
	local *registry.Local
	api   *API
	h     http.Handler
	push  *fakePush
	// router is the write path; ns the namespaces (validation off unless
	// a test sets router.CheckNamespace).
	router *consistency.Router
	ns     *namespace.Registry
}

type subscription struct {
	Key      model.ServiceKey
	Clusters string
	Addr     netip.AddrPort
	Agent    string
}

type fakePush struct {
	mu   sync.Mutex
	subs []subscription
}

func (p *fakePush) Subscribe(key model.ServiceKey, clusters string, addr netip.AddrPort, agent, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs = append(p.subs, subscription{key, clusters, addr, agent})
	return nil
}

func (p *fakePush) SubscriberCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.subs)
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st := store.New("n1", hlc.New(clk.Now))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clk, log)
	push := &fakePush{}
	router, node := raftcptest.New(tb, st, local)
	ns := &namespace.Registry{KV: raftcp.KV{Node: node}}
	api := New(Config{Store: st, Writer: router, Push: push, Limits: model.DefaultLimits(), Logger: log, Namespaces: ns})
	return &harness{clk: clk, st: st, local: local, api: api, h: api.Handler(), push: push, router: router, ns: ns}
}

// do sends a request with a raw (possibly unencoded) target and body.
func (h *harness) do(tb testing.TB, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", formCT)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return h.serve(req)
}

func (h *harness) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	return w
}

func (h *harness) mustDo(tb testing.TB, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	tb.Helper()
	w := h.do(tb, method, target, body, hdr...)
	if w.Code != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", method, target, w.Code, w.Body.String())
	}
	return w
}

// register registers ip:port in the grouped service name via a form body.
func (h *harness) register(tb testing.TB, service, ip string, port int, extra string) {
	tb.Helper()
	body := fmt.Sprintf("serviceName=%s&ip=%s&port=%d", service, ip, port)
	if extra != "" {
		body += "&" + extra
	}
	w := h.mustDo(tb, "POST", "/nacos/v1/ns/instance", body)
	if w.Body.String() != "ok" {
		tb.Fatalf("register answered %q", w.Body.String())
	}
}

// state is a comparable summary of everything the store holds.
func (h *harness) state() string {
	services, instances := h.st.Counts()
	parts := []string{fmt.Sprintf("counts %d/%d", services, instances)}
	h.st.RangeKeys(func(k model.ServiceKey, d uint64) bool {
		recs, meta := h.st.Records(k, nil)
		parts = append(parts, fmt.Sprintf("%s=%x/%d/%v", k, d, len(recs), meta != nil))
		return true
	})
	sort.Strings(parts[1:]) // RangeKeys order within a shard is random
	return strings.Join(parts, " ")
}

func decodeJSON(tb testing.TB, w *httptest.ResponseRecorder, v any) {
	tb.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("Content-Type %q for %s", ct, w.Body.String())
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		tb.Fatalf("decode %s: %v", w.Body.String(), err)
	}
}

func httptestRequest(method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}
