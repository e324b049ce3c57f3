package authapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
	nsreg "github.com/distro-registry/distro/internal/namespace"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/testutil"
)

const (
	adminPW = "admin-password"
	formCT  = "application/x-www-form-urlencoded"
)

type harness struct {
	a     *auth.Authority
	st    *store.Store
	h     http.Handler
	admin string // an admin token
	ro    string // a token of "ro": read on dev:*:*
	rw    string // a token of "rw": rw on dev:G:naming/orders*
	now   time.Time
	logs  *testutil.SyncBuffer
}

// newHarness composes the Nacos API, the auth API and the middleware the
// way the server does.
func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{now: time.Unix(1_800_000_000, 0), logs: &testutil.SyncBuffer{}}
	clk := clock.NewFake(h.now)
	h.st = store.New("n1", hlc.New(clk.Now))
	log := slog.New(slog.NewTextHandler(h.logs, nil))
	local := registry.NewLocal(h.st, health.DefaultConfig(), clk, log)
	router, node := raftcptest.New(t, h.st, local)
	fs, err := auth.OpenFileStore(t.TempDir() + "/auth.json")
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour, func() time.Time { return h.now })
	h.a, err = auth.New(auth.Config{Store: fs, Tokens: toks, AdminUser: "nacos", AdminPassword: adminPW,
		BcryptCost: bcrypt.MinCost, Now: func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.a.CreateUser(ctx, "ro", "ro-password"))
	must(h.a.CreateUser(ctx, "rw", "rw-password"))
	must(h.a.Apply(ctx, auth.Change{Op: auth.OpAddRole, Role: "readers", Username: "ro"}))
	must(h.a.Apply(ctx, auth.Change{Op: auth.OpAddPermission, Role: "readers", Resource: "dev:*:*", Action: "r"}))
	must(h.a.Apply(ctx, auth.Change{Op: auth.OpAddRole, Role: "writers", Username: "rw"}))
	must(h.a.Apply(ctx, auth.Change{Op: auth.OpAddPermission, Role: "writers", Resource: "dev:G:naming/orders*", Action: "rw"}))
	api := httpapi.New(httpapi.Config{Store: h.st, Writer: router, Limits: model.DefaultLimits(), Logger: log, Identity: IdentityOf,
		Namespaces: &nsreg.Registry{KV: raftcp.KV{Node: node}}})
	mux := http.NewServeMux()
	mux.Handle("/nacos/", api.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics")) })
	mux.HandleFunc("GET /distro/admin/connections", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	mux.HandleFunc("GET /distro/unruled", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("leak")) })
	New(h.a, 1<<20, "test", log).Mount(mux)
	apiMux := api.Handler().(*http.ServeMux)
	resolve := func(r *http.Request) string {
		_, p := mux.Handler(r)
		if p == "/nacos/" {
			_, p = apiMux.Handler(r)
		}
		return p
	}
	h.h = Middleware(MiddlewareConfig{Auth: h.a, Limits: model.DefaultLimits(), Resolve: resolve, Logger: log}, mux)
	for _, u := range []struct {
		dst      *string
		name, pw string
	}{{&h.admin, "nacos", adminPW}, {&h.ro, "ro", "ro-password"}, {&h.rw, "rw", "rw-password"}} {
		s, err := h.a.Login(u.name, u.pw, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		*u.dst = s.Token
	}
	return h
}

func (h *harness) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
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
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	return w
}

func (h *harness) instances() int64 {
	_, n := h.st.Counts()
	return n
}

func TestNamingDecisions(t *testing.T) {
	h := newHarness(t)
	reg := "serviceName=orders&groupName=G&namespaceId=dev&ip=10.0.0.1&port=80"
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	cases := []struct {
		name, method, target, body string
		hdr                        []string
		status                     int
		msg                        string
	}{
		{"no identity", "POST", "/nacos/v1/ns/instance", reg, nil, 403, "user not found!"},
		{"admin registers", "POST", "/nacos/v1/ns/instance", reg + "&accessToken=" + h.admin, nil, 200, ""},
		{"reader cannot register", "POST", "/nacos/v1/ns/instance", reg, bearer(h.ro), 403, "authorization failed!"},
		{"reader lists", "GET", "/nacos/v1/ns/instance/list?serviceName=orders&groupName=G&namespaceId=dev", "", bearer(h.ro), 200, ""},
		{"reader lists the group", "GET", "/nacos/v1/ns/service/list?pageNo=1&pageSize=10&groupName=G&namespaceId=dev", "", bearer(h.ro), 200, ""},
		{"reader, other namespace", "GET", "/nacos/v1/ns/instance/list?serviceName=orders&groupName=G", "", bearer(h.ro), 403, "authorization failed!"},
		{"reader, a namespace that starts with dev:", "GET", "/nacos/v1/ns/instance/list?serviceName=orders&groupName=G&namespaceId=dev:prod", "", bearer(h.ro), 403, "authorization failed!"},
		{"reader, listing of that namespace", "GET", "/nacos/v1/ns/catalog/services?namespaceId=dev:prod", "", bearer(h.ro), 403, "authorization failed!"},
		{"writer registers a matching service", "POST", "/nacos/v1/ns/instance", strings.Replace(reg, "10.0.0.1", "10.0.0.2", 1), bearer(h.rw), 200, ""},
		{"writer, grouped name form", "POST", "/nacos/v1/ns/instance", "serviceName=G@@orders-eu&namespaceId=dev&ip=10.0.0.3&port=80", bearer(h.rw), 200, ""},
		{"writer, other service", "POST", "/nacos/v1/ns/instance", "serviceName=G@@billing&namespaceId=dev&ip=10.0.0.3&port=80", bearer(h.rw), 403, "authorization failed!"},
		{"writer cannot list the group", "GET", "/nacos/v1/ns/service/list?pageNo=1&pageSize=10&groupName=G&namespaceId=dev", "", bearer(h.rw), 403, "authorization failed!"},
		{"writer beats", "PUT", "/nacos/v1/ns/instance/beat?" + reg, "", bearer(h.rw), 200, ""},
		{"npm style username/password", "GET", "/nacos/v1/ns/instance/list?serviceName=orders&groupName=G&namespaceId=dev&username=ro&password=ro-password", "", nil, 200, ""},
		{"basic auth", "GET", "/nacos/v1/ns/instance/list?serviceName=orders&groupName=G&namespaceId=dev", "", []string{"Authorization", "Basic cm86cm8tcGFzc3dvcmQ="}, 200, ""},
		{"health probe is open", "GET", "/healthz", "", nil, 200, ""},
		{"status metrics are open", "GET", "/nacos/v1/ns/operator/metrics", "", nil, 200, ""},
		{"metric counts need a user", "GET", "/nacos/v1/ns/operator/metrics?onlyStatus=false", "", nil, 403, "user not found!"},
		{"metric counts with a user", "GET", "/nacos/v1/ns/ops/metrics?onlyStatus=false", "", bearer(h.ro), 200, ""},
		{"prometheus metrics open by default", "GET", "/metrics", "", nil, 200, ""},
		{"admin endpoint, user", "GET", "/distro/admin/connections", "", bearer(h.ro), 403, "authorization failed!"},
		{"admin endpoint, admin", "GET", "/distro/admin/connections", "", bearer(h.admin), 200, ""},
		{"route without a rule", "GET", "/distro/unruled", "", bearer(h.admin), 403, "no authorization rule"},
		{"unknown route", "GET", "/nacos/v1/ns/nosuch", "", nil, 404, ""},
		{"user list needs admin", "GET", "/nacos/v1/auth/users", "", bearer(h.ro), 403, "authorization failed!"},
		{"own password", "PUT", "/nacos/v1/auth/users", "username=ro&newPassword=ro-password", bearer(h.ro), 200, ""},
		{"someone else's password", "PUT", "/nacos/v1/auth/users", "username=rw&newPassword=x-password", bearer(h.ro), 403, "authorization failed!"},
		{"namespaces need a user", "GET", "/nacos/v1/console/namespaces", "", nil, 403, "user not found!"},
		{"admin creates a namespace", "POST", "/nacos/v1/console/namespaces", "customNamespaceId=team&namespaceName=Team", bearer(h.admin), 200, "true"},
		{"user lists namespaces", "GET", "/nacos/v1/console/namespaces", "", bearer(h.ro), 200, `"namespace":"team"`},
		{"user checks an id", "GET", "/nacos/v1/console/namespaces?checkNamespaceIdExist=true&customNamespaceId=team", "", bearer(h.rw), 200, "true"},
		{"user cannot create", "POST", "/nacos/v1/console/namespaces", "customNamespaceId=mine&namespaceName=Mine", bearer(h.rw), 403, "authorization failed!"},
		{"user cannot rename", "PUT", "/nacos/v1/console/namespaces", "namespace=team&namespaceShowName=Mine", bearer(h.ro), 403, "authorization failed!"},
		{"user cannot delete", "DELETE", "/nacos/v1/console/namespaces?namespaceId=team", "", bearer(h.rw), 403, "authorization failed!"},
		{"admin renames", "PUT", "/nacos/v1/console/namespaces", "namespace=team&namespaceShowName=Team+2", bearer(h.admin), 200, "true"},
		{"admin deletes", "DELETE", "/nacos/v1/console/namespaces?namespaceId=team", "", bearer(h.admin), 200, "true"},
	}
	for _, c := range cases {
		w := h.do(c.method, c.target, c.body, c.hdr...)
		if w.Code != c.status || c.msg != "" && !strings.Contains(w.Body.String(), c.msg) {
			t.Errorf("%s: %d %s, want %d %q", c.name, w.Code, w.Body.String(), c.status, c.msg)
		}
	}
	if n := h.instances(); n != 3 {
		t.Fatalf("%d instances registered, want 3", n)
	}
	// The refusal has Spring's error shape.
	w := h.do("GET", "/nacos/v1/ns/instance/list?serviceName=x", "")
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["status"] != 403.0 || body["error"] != "Forbidden" ||
		body["message"] != "user not found!" || body["path"] != "/nacos/v1/ns/instance/list" {
		t.Fatalf("refusal body %s (%v)", w.Body.String(), err)
	}
}

// TestBadAuthInput is the auth part of the bad-input matrix: forged,
// malformed and oversized credentials get a clear 4xx and change nothing.
func TestBadAuthInput(t *testing.T) {
	h := newHarness(t)
	parts := strings.Split(h.admin, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	reg := "serviceName=demo&ip=10.0.0.9&port=80"
	cases := []struct {
		name, target, body string
		hdr                []string
		status             int
		msg                string
	}{
		{"garbage token", "/nacos/v1/ns/instance?accessToken=garbage", reg, nil, 403, "token invalid!"},
		{"tampered payload", "/nacos/v1/ns/instance?accessToken=" + url.QueryEscape(tampered), reg, nil, 403, ""},
		{"signature of another token", "/nacos/v1/ns/instance?accessToken=" + parts[0] + "." + parts[1] + "." + strings.Split(h.ro, ".")[2], reg, nil, 403, "Invalid signature"},
		{"oversized token", "/nacos/v1/ns/instance", reg + "&accessToken=" + strings.Repeat("a", 8000), nil, 403, "token invalid!"},
		{"empty bearer", "/nacos/v1/ns/instance", reg, []string{"Authorization", "Bearer "}, 403, "user not found!"},
		{"bad basic", "/nacos/v1/ns/instance", reg, []string{"Authorization", "Basic !!!"}, 403, "user not found!"},
		{"wrong password", "/nacos/v1/ns/instance?username=nacos&password=wrong", reg, nil, 403, "user not found!"},
		{"unknown user", "/nacos/v1/ns/instance?username=ghost&password=x", reg, nil, 403, "user not found!"},
		{"password too long", "/nacos/v1/ns/instance?username=nacos&password=" + strings.Repeat("p", 100), reg, nil, 403, "user not found!"},
		{"empty password", "/nacos/v1/ns/instance?username=nacos&password=", reg, nil, 403, "user not found!"},
		{"reader token, admin name in params", "/nacos/v1/ns/instance?username=nacos&accessToken=" + h.ro, reg, nil, 403, "authorization failed!"},
		{"oversized body", "/nacos/v1/ns/instance?accessToken=" + h.admin, reg + "&metadata=" + strings.Repeat("a", 1<<20), nil, 413, "exceeds"},
		{"login without password", "/nacos/v1/auth/login", "username=nacos", nil, 400, "required"},
		{"login wrong password", "/nacos/v1/auth/login", "username=nacos&password=nope", nil, 403, "user not found!"},
		{"create user without password", "/nacos/v1/auth/users?accessToken=" + h.admin, "username=x", nil, 400, "Param 'password' is required."},
		{"create user bad name", "/nacos/v1/auth/users?accessToken=" + h.admin, "username=a%20b&password=p", nil, 400, "may only hold"},
		{"create user long password", "/nacos/v1/auth/users?accessToken=" + h.admin, "username=x&password=" + strings.Repeat("p", 73), nil, 400, "longer than 72"},
		{"grant admin role", "/nacos/v1/auth/roles?accessToken=" + h.admin, "role=ROLE_ADMIN&username=ro", nil, 400, "not permitted"},
		{"permission bad action", "/nacos/v1/auth/permissions?accessToken=" + h.admin, "role=readers&resource=x:*:*&action=all", nil, 400, "not r, w or rw"},
		{"permission unknown role", "/nacos/v1/auth/permissions?accessToken=" + h.admin, "role=ghosts&resource=x:*:*&action=r", nil, 400, "not found"},
	}
	before := h.a.Stored()
	for _, c := range cases {
		w := h.do("POST", c.target, c.body, c.hdr...)
		if w.Code != c.status || c.msg != "" && !strings.Contains(w.Body.String(), c.msg) {
			t.Errorf("%s: %d %s, want %d %q", c.name, w.Code, w.Body.String(), c.status, c.msg)
		}
	}
	if h.instances() != 0 {
		t.Fatal("a refused request registered an instance")
	}
	if after := h.a.Stored(); Digest(after) != Digest(before) {
		t.Fatal("a refused request changed users, roles or permissions")
	}
}

func TestManagementAPI(t *testing.T) {
	h := newHarness(t)
	tok := "?accessToken=" + h.admin
	steps := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/nacos/v1/auth/users", "username=alice&password=pw-alice", 200, `"data":"create user ok!"`},
		{"POST", "/nacos/v1/auth/users", "username=alice&password=pw-alice", 400, "user 'alice' already exist!"},
		{"GET", "/nacos/v1/auth/users", "", 200, `"totalCount":4`},
		{"GET", "/nacos/v1/auth/users&pageNo=2&pageSize=3", "", 200, `"pageItems":[{"username":"rw"}]`},
		{"GET", "/nacos/v1/auth/users&search=blur&username=li", "", 200, `"pageItems":[{"username":"alice"}]`},
		{"GET", "/nacos/v1/auth/users/search&username=r", "", 200, `["ro","rw"]`},
		{"POST", "/nacos/v1/auth/roles", "role=ops&username=alice", 200, "add role ok!"},
		{"GET", "/nacos/v1/auth/roles&username=alice", "", 200, `"pageItems":[{"role":"ops","username":"alice"}]`},
		{"POST", "/nacos/v1/auth/permissions", "role=ops&resource=public:*:*&action=rw", 200, "add permission ok!"},
		{"GET", "/nacos/v1/auth/permissions&role=ops", "", 200, `{"role":"ops","resource":"public:*:*","action":"rw"}`},
		{"DELETE", "/nacos/v1/auth/permissions", "role=ops&resource=public:*:*&action=rw", 200, "delete permission ok!"},
		{"DELETE", "/nacos/v1/auth/roles", "role=ops&username=alice", 200, "delete role of user alice ok!"},
		{"PUT", "/nacos/v1/auth/users", "username=alice&newPassword=new-pw", 200, "update user ok!"},
		{"DELETE", "/nacos/v1/auth/users", "username=nacos", 400, "defined by --auth-admin-password"},
		{"DELETE", "/nacos/v1/auth/users", "username=alice", 200, "delete user ok!"},
		{"GET", "/distro/admin/auth", "", 200, `"users":2`},
	}
	for _, s := range steps {
		target := strings.Replace(s.path, "&", tok+"&", 1)
		if !strings.Contains(target, tok) {
			target += tok
		}
		w := h.do(s.method, target, s.body)
		if w.Code != s.status || !strings.Contains(w.Body.String(), s.want) {
			t.Errorf("%s %s %s: %d %s, want %d %q", s.method, s.path, s.body, w.Code, w.Body.String(), s.status, s.want)
		}
	}
	w := h.do("POST", "/nacos/v1/auth/users/login", "username=nacos&password="+adminPW)
	var sess map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &sess); err != nil || sess["globalAdmin"] != true || sess["tokenTtl"] != 3600.0 ||
		sess["accessToken"] == "" || w.Header().Get("Authorization") == "" {
		t.Fatalf("login: %d %s", w.Code, w.Body.String())
	}
}

func TestGRPCGuard(t *testing.T) {
	h := newHarness(t)
	g := &GRPC{Auth: h.a, Limits: model.DefaultLimits()}
	body := `{"namespace":"dev","groupName":"G","serviceName":"orders","type":"registerInstance"}`
	cases := []struct {
		name, typ, body string
		headers         map[string]string
		code            int
		who             string
	}{
		{"health check passes", grpcapi.TypeHealthCheckRequest, `{}`, nil, 0, ""},
		{"no token", grpcapi.TypeInstanceRequest, body, nil, 403, ""},
		{"bad token", grpcapi.TypeInstanceRequest, body, map[string]string{"accessToken": "x.y.z"}, 403, ""},
		{"reader cannot register", grpcapi.TypeInstanceRequest, body, map[string]string{"accessToken": h.ro}, 403, ""},
		{"writer registers", grpcapi.TypeInstanceRequest, body, map[string]string{"accessToken": h.rw}, 0, "rw"},
		{"reader subscribes", grpcapi.TypeSubscribeServiceRequest, body, map[string]string{"accessToken": h.ro}, 0, "ro"},
		{"writer batch", grpcapi.TypeBatchInstanceRequest, body, map[string]string{"Authorization": "Bearer " + h.rw}, 0, "rw"},
		{"reader lists", grpcapi.TypeServiceListRequest, `{"namespace":"dev","groupName":"G"}`, map[string]string{"accessToken": h.ro}, 0, "ro"},
		{"writer cannot list", grpcapi.TypeServiceListRequest, `{"namespace":"dev","groupName":"G"}`, map[string]string{"accessToken": h.rw}, 403, ""},
		{"password headers", grpcapi.TypeServiceQueryRequest, body, map[string]string{"username": "ro", "password": "ro-password"}, 0, "ro"},
		{"other namespace", grpcapi.TypeServiceQueryRequest, `{"namespace":"prod","groupName":"G","serviceName":"orders"}`, map[string]string{"accessToken": h.ro}, 403, ""},
		{"not JSON", grpcapi.TypeServiceQueryRequest, `{`, map[string]string{"accessToken": h.ro}, 400, ""},
	}
	for _, c := range cases {
		who, code, msg := g.Authorize(c.typ, []byte(c.body), c.headers, "127.0.0.1")
		if code != c.code || who != c.who || (code != 0) != (msg != "") {
			t.Errorf("%s: (%q, %d, %q), want (%q, %d)", c.name, who, code, msg, c.who, c.code)
		}
	}
	key := model.ServiceKey{Namespace: "dev", Group: "G", Name: "orders"}
	ep := g.Epoch()
	if !g.MayRead("ro", key) || g.MayRead("rw", model.ServiceKey{Namespace: "dev", Group: "G", Name: "billing"}) {
		t.Fatal("MayRead")
	}
	if err := h.a.Apply(context.Background(), auth.Change{Op: auth.OpDeleteRole, Role: "readers", Username: "ro"}); err != nil {
		t.Fatal(err)
	}
	if g.Epoch() == ep || g.MayRead("ro", key) {
		t.Fatal("a revoked reader may still read, or the epoch did not move")
	}
}

// TestUnruled: the check the server runs over its registered routes (its
// own test, internal/server TestEveryRouteHasARule, walks a real node's
// muxes) names exactly the patterns without a rule.
func TestUnruled(t *testing.T) {
	got := Unruled([]string{"GET /metrics", "POST /nacos/v1/ns/instance", "GET /nacos/v1/console/namespaces", "GET /distro/unruled", "/nacos/"})
	if !slices.Equal(got, []string{"GET /distro/unruled", "/nacos/"}) {
		t.Fatalf("Unruled = %v", got)
	}
}

// TestSelfAuthenticatedRoutes: routes whose handlers check their own
// sessions (the web console) pass the middleware without credentials;
// other routes without a rule are still refused.
func TestSelfAuthenticatedRoutes(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range []string{"GET /ui/{$}", "GET /distro/unruled"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("served")) })
	}
	resolve := func(r *http.Request) string { _, p := mux.Handler(r); return p }
	h := Middleware(MiddlewareConfig{Resolve: resolve, SelfAuthenticated: func(p string) bool { return p == "GET /ui/{$}" }}, mux)
	for target, want := range map[string]int{"/ui/": http.StatusOK, "/distro/unruled": http.StatusForbidden} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.Code != want || (want == http.StatusOK) != (w.Body.String() == "served") {
			t.Errorf("GET %s = %d %q, want %d", target, w.Code, w.Body.String(), want)
		}
	}
}

// TestGuardsAnswerBadServiceKeys: a request whose service key does not
// parse gives the guard no resource to decide on; it answers 400 (HTTP)
// or INVALID_PARAM (gRPC) itself instead of passing the request on.
func TestGuardsAnswerBadServiceKeys(t *testing.T) {
	h := newHarness(t)
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached++ })
	mw := Middleware(MiddlewareConfig{Auth: h.a, Limits: model.DefaultLimits(), Resolve: func(*http.Request) string { return "POST /nacos/v1/ns/instance" }}, next)
	for _, body := range []string{"serviceName=a%20b&ip=10.0.0.1&port=80", "serviceName=@@x&ip=10.0.0.1&port=80", "ip=10.0.0.1&port=80",
		"serviceName=G@@a@@b&ip=10.0.0.1&port=80", "serviceName=x&namespaceId=" + strings.Repeat("n", 300)} {
		req := httptest.NewRequest(http.MethodPost, "/nacos/v1/ns/instance", strings.NewReader(body))
		req.Header.Set("Content-Type", formCT)
		req.Header.Set("Authorization", "Bearer "+h.admin)
		w := httptest.NewRecorder()
		mw.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid parameter") {
			t.Errorf("%s: %d %q, want 400", body, w.Code, w.Body.String())
		}
	}
	if reached != 0 {
		t.Fatalf("%d requests without a valid service key reached the handler", reached)
	}
	g := &GRPC{Auth: h.a, Limits: model.DefaultLimits()}
	for _, body := range []string{`{"serviceName":"a b"}`, `{"serviceName":""}`, `{"serviceName":"@@x","groupName":"G"}`} {
		who, code, msg := g.Authorize(grpcapi.TypeInstanceRequest, []byte(body), map[string]string{"accessToken": h.admin}, "127.0.0.1")
		if who != "" || code != grpcapi.CodeInvalidParam || !strings.Contains(msg, "invalid parameter") {
			t.Errorf("gRPC %s: (%q, %d, %q), want INVALID_PARAM", body, who, code, msg)
		}
	}
}

// TestLoginLogsNoTypedSecrets: a failed login is logged with the source
// address, and with the user name only when it names a user: a name that
// is none may be a password typed into the wrong field.
func TestLoginLogsNoTypedSecrets(t *testing.T) {
	h := newHarness(t)
	for _, body := range []string{"username=ro&password=wrong-password", "username=Tr0ub4dor-3&password=x"} {
		if w := h.do("POST", "/nacos/v1/auth/login", body); w.Code != 403 {
			t.Fatalf("%s: %d", body, w.Code)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `msg="login failed" remote=192.0.2.1 user=ro`) {
		t.Fatalf("the failed login of a user is not logged with its name:\n%s", logs)
	}
	if strings.Contains(logs, "Tr0ub4dor") || strings.Contains(logs, "wrong-password") {
		t.Fatalf("the log holds what was typed:\n%s", logs)
	}
	if strings.Count(logs, `msg="login failed"`) != 2 {
		t.Fatalf("want two failed logins logged:\n%s", logs)
	}
}
