package console

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func key(name string) model.ServiceKey {
	return model.ServiceKey{Namespace: model.DefaultNamespace, Group: model.DefaultGroup, Name: name}
}

// recordingWriter passes writes to the registry and remembers them, so
// tests can check that every console change went through the write path.
type recordingWriter struct {
	inner registry.Writer
	mu    sync.Mutex
	ops   []registry.Op
}

func (w *recordingWriter) Apply(ctx context.Context, op *registry.Op) (registry.Result, error) {
	w.mu.Lock()
	w.ops = append(w.ops, *op)
	w.mu.Unlock()
	return w.inner.Apply(ctx, op)
}

func (w *recordingWriter) kinds() []registry.OpKind {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []registry.OpKind
	for _, op := range w.ops {
		out = append(out, op.Kind)
	}
	return out
}

// fakeCluster is a fixed cluster view; it counts Owner calls.
type fakeCluster struct {
	members []member.MemberStatus
	peers   []distro.PeerStatus
	owner   func(model.ServiceKey) string
	view    atomic.Pointer[string]
	owners  atomic.Int64
}

func (f *fakeCluster) Members() []member.MemberStatus { return f.members }
func (f *fakeCluster) Peers() []distro.PeerStatus     { return f.peers }
func (f *fakeCluster) Owner(k model.ServiceKey) string {
	f.owners.Add(1)
	return f.owner(k)
}

func (f *fakeCluster) ViewID() string {
	if v := f.view.Load(); v != nil {
		return *v
	}
	return "v1"
}

// fakeAuth has one user per name with a password equal to the name;
// "reader" may read only services whose name starts with "pub", "writer"
// may read and write everything.
type fakeAuth struct {
	mu     sync.Mutex
	tokens map[string]Principal
	logins []string
}

func newFakeAuth() *fakeAuth { return &fakeAuth{tokens: map[string]Principal{}} }

func (a *fakeAuth) Enabled() bool { return true }

func (a *fakeAuth) Login(_ context.Context, user, pass, remote string) (string, time.Duration, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logins = append(a.logins, user+"@"+remote)
	if user == "blocked" {
		return "", 0, errors.New("too many attempts; try again in 30 s")
	}
	if (user != "reader" && user != "writer") || pass != user {
		return "", 0, ErrBadCredentials
	}
	tok := "tok-" + user
	a.tokens[tok] = Principal{Name: user, Admin: user == "writer"}
	return tok, time.Hour, nil
}

func (a *fakeAuth) Verify(token string) (Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.tokens[token]
	if !ok {
		return Principal{}, errors.New("invalid token")
	}
	return p, nil
}

func (a *fakeAuth) CanRead(p Principal, k model.ServiceKey) bool {
	return p.Name == "writer" || (p.Name == "reader" && strings.HasPrefix(k.Name, "pub"))
}

func (a *fakeAuth) CanWrite(p Principal, k model.ServiceKey) bool { return p.Name == "writer" }

// env is a console over a real store and write path: the consistency
// router of a standalone node (ephemeral writes to the local registry,
// persistent ones and service settings to a single-voter Raft node).
type env struct {
	t     testing.TB
	st    *store.Store
	local *registry.Local
	w     *recordingWriter
	c     *Console
	mux   *http.ServeMux
	clk   *clock.Fake
	subs  map[model.ServiceKey][]Subscriber
}

func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	clk := clock.NewFake(t0)
	local := registry.NewLocal(st, health.DefaultConfig(), clk, log)
	e := &env{t: t, st: st, local: local, w: &recordingWriter{inner: raftcptest.Router(t, st, local)}, clk: clk,
		subs: map[model.ServiceKey][]Subscriber{}}
	cfg := Config{Store: st, Writer: e.w, Limits: model.DefaultLimits(), Auth: Open{AllowEdit: true}, Clock: clk, Logger: log,
		LastBeat: func(k model.ServiceKey, ik model.InstanceKey) (time.Time, bool) {
			return local.Tracker().LastBeat(health.Ref{Service: k, Instance: ik})
		},
		Subscribers: func(k model.ServiceKey) []Subscriber { return e.subs[k] },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	e.mux = http.NewServeMux()
	// Stand-in for the Nacos API, to check the console does not take its paths.
	e.mux.HandleFunc("/nacos/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "nacos api") })
	c.Mount(e.mux)
	return e
}

// register adds an ephemeral instance through the write path (as a client
// would).
func (e *env) register(svc model.ServiceKey, in model.Instance) { e.add(svc, in, true) }

// registerPersistent adds a persistent (ephemeral=false) instance through
// the write path, which hands it to Raft.
func (e *env) registerPersistent(svc model.ServiceKey, in model.Instance) { e.add(svc, in, false) }

func (e *env) add(svc model.ServiceKey, in model.Instance, ephemeral bool) {
	e.t.Helper()
	if in.Cluster == "" {
		in.Cluster = model.DefaultCluster
	}
	if in.Weight == 0 {
		in.Weight = 1
	}
	in.Healthy, in.Enabled, in.Ephemeral = true, true, ephemeral
	if _, err := e.w.inner.Apply(context.Background(), &registry.Op{Kind: registry.OpRegister, Key: svc, Instance: in}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) instance(svc model.ServiceKey, ip string, port int) *model.Instance {
	v := e.st.View(svc)
	if v == nil {
		return nil
	}
	for _, in := range v.Instances {
		if in.IP == ip && in.Port == port {
			return in
		}
	}
	return nil
}

type response struct {
	*httptest.ResponseRecorder
	body string
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return response{rec, rec.Body.String()}
}

func (e *env) get(path string, hdr ...string) response {
	e.t.Helper()
	path, _, _ = strings.Cut(path, "#") // a browser does not send the fragment
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

// post sends a form the way a browser does from the console's own page.
func (e *env) post(path string, form url.Values, hdr ...string) response {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", "http://example.com")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

func instanceForm(svc model.ServiceKey, ip, port string, extra ...string) url.Values {
	f := url.Values{"ns": {svc.Namespace}, "group": {svc.Group}, "name": {svc.Name}, "ip": {ip}, "port": {port}, "cluster": {model.DefaultCluster}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func mustContain(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Fatalf("page lacks %q:\n%s", s, body)
		}
	}
}

func mustNotContain(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Fatalf("page contains %q:\n%s", s, body)
		}
	}
}
