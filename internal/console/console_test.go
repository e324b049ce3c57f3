package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/testutil"
)

func TestRoutesAndHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, base := range Bases {
		for _, p := range []string{"", "services", "cluster", "service?name=x"} {
			r := e.get(base + p)
			if r.Code != http.StatusOK {
				t.Fatalf("GET %s%s = %d", base, p, r.Code)
			}
			if ct := r.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("GET %s%s Content-Type %q", base, p, ct)
			}
			for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
				if r.Header().Get(h) == "" {
					t.Fatalf("GET %s%s lacks %s", base, p, h)
				}
			}
			if csp := r.Header().Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Fatalf("CSP allows inline code: %s", csp)
			}
			// Links stay under the base the page was opened at.
			mustContain(t, r.body, `href="`+base+`services"`, `src="`+base+`static/htmx-2.0.11.min.js?v=`+e.c.assets+`"`)
		}
		if r := e.get(strings.TrimSuffix(base, "/")); r.Code != http.StatusMovedPermanently || r.Header().Get("Location") != base {
			t.Fatalf("GET %s without slash = %d → %q", base, r.Code, r.Header().Get("Location"))
		}
		if r := e.get(base + "index.html"); r.Code != http.StatusFound || r.Header().Get("Location") != base {
			t.Fatalf("GET %sindex.html = %d → %q", base, r.Code, r.Header().Get("Location"))
		}
		for file, ctype := range map[string]string{"htmx-2.0.11.min.js": "javascript", "console.css": "text/css", "favicon.svg": "image/svg+xml", "htmx-LICENSE.txt": "text/plain"} {
			r := e.get(base + "static/" + file)
			if r.Code != http.StatusOK || !strings.Contains(r.Header().Get("Content-Type"), ctype) || r.Body.Len() == 0 {
				t.Fatalf("GET %sstatic/%s = %d %q (%d bytes)", base, file, r.Code, r.Header().Get("Content-Type"), r.Body.Len())
			}
		}
	}
	// Every route is the console's own (a server-wide auth guard lets them
	// through); the API's are not.
	for _, p := range []string{"GET /ui/{$}", "GET /nacos/{$}", "POST /nacos/instance/enabled", "GET /ui/static/", "GET /nacos", "POST /ui/login"} {
		if !e.c.Owns(p) {
			t.Errorf("Owns(%q) = false", p)
		}
	}
	for _, p := range []string{"/nacos/", "GET /nacos/v1/ns/instance/list", "POST /nacos/v1/auth/login"} {
		if e.c.Owns(p) {
			t.Errorf("Owns(%q) = true", p)
		}
	}
	// The Nacos API keeps its paths.
	for _, p := range []string{"/nacos/v1/ns/instance/list", "/nacos/v2/ns/instance", "/nacos/services/x", "/nacos/ns/service"} {
		if r := e.get(p); r.body != "nacos api" {
			t.Fatalf("GET %s was taken by the console: %d %.80s", p, r.Code, r.body)
		}
	}
	if r := e.get("/ui/static/../console.go"); r.Code == http.StatusOK && strings.Contains(r.body, "package console") {
		t.Fatal("static handler serves source files")
	}
}

func TestServiceListSearchAndPaging(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 25 {
		e.register(key(fmt.Sprintf("svc-%02d", i)), model.Instance{IP: "10.0.0.1", Port: 1000 + i})
	}
	e.register(model.ServiceKey{Namespace: "prod", Group: "shop", Name: "orders"}, model.Instance{IP: "10.0.1.1", Port: 80})
	e.register(model.ServiceKey{Namespace: "prod", Group: "shop", Name: "orders"}, model.Instance{IP: "10.0.1.2", Port: 80})
	if err := e.st.Update(key("empty"), func(tx *store.Tx) error { tx.PutMeta(model.ServiceMeta{ProtectThreshold: 0.5}, false); return nil }); err != nil {
		t.Fatal(err)
	}
	rows := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`data-label="Service"><a href="[^"]*">([^<]+)</a>`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	r := e.get("/ui/services?size=10")
	if got := rows(r.body); len(got) != 10 || got[0] != "orders" || got[1] != "empty" || got[2] != "svc-00" {
		t.Fatalf("first page rows = %v", got)
	}
	mustContain(t, r.body, "Services 1–10 of 27", "Page 1 of 3", `rel="next"`)
	r = e.get("/ui/services?size=10&page=3")
	if got := rows(r.body); len(got) != 7 || got[6] != "svc-24" {
		t.Fatalf("last page rows = %v", got)
	}
	mustContain(t, r.body, "Services 21–27 of 27", `rel="prev"`)
	mustNotContain(t, r.body, `rel="next"`)
	// Past the end: the last page.
	if got := rows(e.get("/ui/services?size=10&page=99").body); len(got) != 7 {
		t.Fatalf("page 99 rows = %v", got)
	}
	// A page size that is not offered falls back to 20.
	if got := rows(e.get("/ui/services?size=1000000").body); len(got) != 20 {
		t.Fatalf("size=1000000 gave %d rows", len(got))
	}
	if got := rows(e.get("/ui/services?q=SVC-1").body); !slices.Equal(got, []string{"svc-10", "svc-11", "svc-12", "svc-13", "svc-14", "svc-15", "svc-16", "svc-17", "svc-18", "svc-19"}) {
		t.Fatalf("q=SVC-1 rows = %v", got)
	}
	r = e.get("/ui/services?ns=prod&group=sho")
	if got := rows(r.body); !slices.Equal(got, []string{"orders"}) {
		t.Fatalf("ns=prod group=sho rows = %v", got)
	}
	mustContain(t, r.body, `data-label="Instances">2`, `data-label="Healthy">2`, `<option value="prod" selected>prod</option>`)
	if got := rows(e.get("/ui/services?hideEmpty=on&q=e").body); slices.Contains(got, "empty") || !slices.Contains(got, "orders") {
		t.Fatalf("hideEmpty rows = %v", got)
	}
	mustContain(t, e.get("/ui/services?q=nothing-like-this").body, "No service matches.")
}

func TestServiceDetailEscapesEverything(t *testing.T) {
	e := newEnv(t, nil)
	svc := key("demo")
	evil := `<script>alert("x")</script>`
	e.register(svc, model.Instance{IP: "10.0.0.1", Port: 8080, Metadata: map[string]string{"k": evil, `"><img src=x onerror=alert(1)>`: "v"}})
	e.register(svc, model.Instance{IP: "10.0.0.2", Port: 8080, Cluster: "east"})
	e.subs[svc] = []Subscriber{{Protocol: "UDP push (v1)", Client: "10.9.9.9:5353", Clusters: evil, LastSeen: t0, Pending: true}}
	r := e.get("/ui/service?ns=public&group=DEFAULT_GROUP&name=demo")
	if r.Code != http.StatusOK {
		t.Fatalf("GET service = %d", r.Code)
	}
	mustNotContain(t, r.body, "<script>alert", "<img src=x")
	mustContain(t, r.body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
		"Cluster DEFAULT", "Cluster east", "<code>10.0.0.1:8080</code>", "<code>10.0.0.2:8080</code>", "10.9.9.9:5353", "awaiting ack",
		`datetime="`+t0.Format("2006-01-02T15:04:05.000Z07:00")+`"`, ">"+t0.Local().Format("15:04:05")+"<",
		"Take offline", `id="toggle-`)
	// Only the page's own scripts.
	if n := strings.Count(r.body, "<script"); n != 1 {
		t.Fatalf("%d script elements", n)
	}
	// An unknown service is a page, not an error.
	mustContain(t, e.get("/ui/service?name=nope").body, "does not exist")
	for _, bad := range []string{"/ui/service?name=", "/ui/service?name=a%2Fb", "/ui/service?name=" + strings.Repeat("x", 300), "/ui/service?name=a&ns=..%2F"} {
		if r := e.get(bad); r.Code != http.StatusBadRequest {
			t.Fatalf("GET %s = %d, want 400", bad, r.Code)
		}
	}
}

func TestLivenessColumn(t *testing.T) {
	owner := "10.0.0.2:8848"
	e := newEnv(t, func(c *Config) {
		c.Cluster = &fakeCluster{owner: func(k model.ServiceKey) string {
			if k.Name == "remote" {
				return owner
			}
			return "127.0.0.1:8848"
		}}
		// Only the owner tracks heartbeats: this node does not track "remote".
		c.LastBeat = func(model.ServiceKey, model.InstanceKey) (time.Time, bool) { return time.Time{}, false }
	})
	// A connection-held instance, and one whose owner is another node.
	if err := e.st.Update(key("grpc"), func(tx *store.Tx) error {
		tx.Put(&model.Instance{IP: "10.0.0.5", Port: 1, Cluster: "DEFAULT", Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}, store.KindLive, "1700000000_10.0.0.5_5", "127.0.0.1:8848")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Update(key("remote"), func(tx *store.Tx) error {
		tx.Put(&model.Instance{IP: "10.0.0.6", Port: 1, Cluster: "DEFAULT", Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}, store.KindLive, "", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.get("/ui/service?name=grpc").body, "gRPC connection 1700000000_10.0.0.5_5 on this node")
	// Persistent instances (held on the CP side): checked by the server,
	// or by nobody.
	for i, cl := range []string{"checked", "DEFAULT"} {
		e.registerPersistent(key("persistent"), model.Instance{IP: "10.0.0.7", Port: i + 1, Cluster: cl})
	}
	if _, err := e.w.inner.Apply(context.Background(), &registry.Op{Kind: registry.OpUpdateCluster, Key: key("persistent"), ClusterName: "checked",
		Cluster: model.ClusterMeta{HealthChecker: model.HealthChecker{Type: model.CheckTCP}, CheckPort: 9999}}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.get("/ui/service?name=persistent").body, "persistent instances: TCP check of port 9999", "persistent; server-side TCP check of port 9999",
		"persistent, not checked")
	r := e.get("/ui/service?name=remote")
	mustContain(t, r.body, "heartbeats checked by the owner "+owner, `href="http://`+owner+`/ui/service?group=DEFAULT_GROUP&amp;name=remote&amp;ns=public"`)
}

func TestLivePoll(t *testing.T) {
	e := newEnv(t, nil)
	svc := key("demo")
	e.register(svc, model.Instance{IP: "10.0.0.1", Port: 8080})
	page := e.get("/ui/service?name=demo")
	m := regexp.MustCompile(`hx-get="([^"]+)" hx-trigger="every 1s"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no live region:\n%s", page.body)
	}
	poll := strings.ReplaceAll(m[1], "&amp;", "&")
	// Nothing changed: 204, nothing to swap.
	if r := e.get(poll, "HX-Request", "true"); r.Code != http.StatusNoContent || r.Body.Len() != 0 {
		t.Fatalf("unchanged poll = %d %q", r.Code, r.body)
	}
	// A heartbeat timeout marks it unhealthy: the next poll brings the
	// fragment (only the fragment) with the new state.
	if err := e.st.Update(svc, func(tx *store.Tx) error {
		tx.Annotate(model.InstanceKey{IP: "10.0.0.1", Port: 8080, Cluster: "DEFAULT"}, store.KindUnhealthy)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := e.get(poll, "HX-Request", "true")
	if r.Code != http.StatusOK {
		t.Fatalf("changed poll = %d", r.Code)
	}
	mustContain(t, r.body, `<div id="live"`, "unhealthy", "missed heartbeats")
	mustNotContain(t, r.body, "<html", "<header")
	next := regexp.MustCompile(`hx-get="([^"]+)"`).FindStringSubmatch(r.body)
	if next == nil || next[1] == m[1] {
		t.Fatalf("the new fragment polls with the old hash: %v", next)
	}
	if r := e.get(strings.ReplaceAll(next[1], "&amp;", "&"), "HX-Request", "true"); r.Code != http.StatusNoContent {
		t.Fatalf("poll with the new hash = %d", r.Code)
	}
	// A poll that fails (bad name) does not replace the page with an error.
	if r := e.get("/ui/service?name=a%2Fb&h=x", "HX-Request", "true"); r.Code != http.StatusNoContent {
		t.Fatalf("failing poll = %d", r.Code)
	}
}

func TestReadOnlyByDefault(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Auth = nil })
	svc := key("demo")
	e.register(svc, model.Instance{IP: "10.0.0.1", Port: 8080})
	r := e.get("/ui/service?name=demo")
	mustContain(t, r.body, "Read-only console", "--console-edit")
	mustNotContain(t, r.body, "Take offline", "Edit service settings", "Deregister")
	for _, tc := range []struct{ path, method string }{
		{"/ui/instance/enabled", http.MethodPost}, {"/ui/instance", http.MethodPost}, {"/ui/instance/deregister", http.MethodPost},
		{"/ui/service/edit", http.MethodPost}, {"/ui/service/delete", http.MethodPost}, {"/ui/instance", http.MethodGet},
		{"/ui/service/edit", http.MethodGet}, {"/ui/service/delete", http.MethodGet}, {"/ui/instance/deregister", http.MethodGet},
	} {
		form := instanceForm(svc, "10.0.0.1", "8080", "enabled", "false", "weight", "3", "protectThreshold", "0.5")
		var r response
		if tc.method == http.MethodPost {
			r = e.post(tc.path, form)
		} else {
			r = e.get(tc.path + "?" + form.Encode())
		}
		if r.Code != http.StatusForbidden {
			t.Fatalf("%s %s = %d, want 403", tc.method, tc.path, r.Code)
		}
		mustContain(t, r.body, "--console-edit")
	}
	if len(e.w.kinds()) != 0 {
		t.Fatalf("a read-only console wrote: %v", e.w.kinds())
	}
	if in := e.instance(svc, "10.0.0.1", 8080); in == nil || !in.Enabled || in.Weight != 1 {
		t.Fatalf("instance changed: %+v", in)
	}
}

func TestInstanceActions(t *testing.T) {
	e := newEnv(t, nil)
	svc := key("demo")
	e.register(svc, model.Instance{IP: "10.0.0.1", Port: 8080, Metadata: map[string]string{"a": "1"}})
	e.register(svc, model.Instance{IP: "10.0.0.2", Port: 8080})

	// Take offline, then back online.
	r := e.post("/nacos/instance/enabled", instanceForm(svc, "10.0.0.1", "8080", "enabled", "false"))
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Header().Get("Location"), "/nacos/service?") || !strings.Contains(r.Header().Get("Location"), "done=disabled") {
		t.Fatalf("disable = %d → %q", r.Code, r.Header().Get("Location"))
	}
	if in := e.instance(svc, "10.0.0.1", 8080); in.Enabled || in.Weight != 1 || in.Metadata["a"] != "1" {
		t.Fatalf("after disable: %+v (only enabled may change)", in)
	}
	mustContain(t, e.get(r.Header().Get("Location")).body, flashText["disabled"], "Bring online", `badge muted">offline`)
	e.post("/ui/instance/enabled", instanceForm(svc, "10.0.0.1", "8080", "enabled", "true"))
	if in := e.instance(svc, "10.0.0.1", 8080); !in.Enabled {
		t.Fatal("not enabled again")
	}

	// The edit form shows the current values; saving replaces them.
	r = e.get("/ui/instance?" + instanceForm(svc, "10.0.0.1", "8080").Encode())
	mustContain(t, r.body, `value="1"`, "checked", "&#34;a&#34;: &#34;1&#34;", `<label for="e-weight">`)
	r = e.post("/ui/instance", instanceForm(svc, "10.0.0.1", "8080", "weight", "2.5", "metadata", `{"zone":"b"}`))
	if r.Code != http.StatusSeeOther {
		t.Fatalf("save = %d %s", r.Code, r.body)
	}
	if in := e.instance(svc, "10.0.0.1", 8080); in.Weight != 2.5 || in.Enabled || len(in.Metadata) != 1 || in.Metadata["zone"] != "b" {
		t.Fatalf("after save: %+v (unchecked box means offline)", in)
	}
	// Bad values: the form again with the reason, nothing changed.
	for _, bad := range [][]string{{"weight", "-1"}, {"weight", "abc"}, {"metadata", `{"a":`}, {"metadata", `{"a":{"b":1}}`}, {"weight", "1", "port", "0"}} {
		r = e.post("/ui/instance", instanceForm(svc, "10.0.0.1", "8080", append([]string{"enabled", "true"}, bad...)...))
		if r.Code != http.StatusBadRequest {
			t.Fatalf("bad %v = %d", bad, r.Code)
		}
	}
	if in := e.instance(svc, "10.0.0.1", 8080); in.Weight != 2.5 || in.Enabled {
		t.Fatalf("a refused save changed the instance: %+v", in)
	}
	mustContain(t, e.post("/ui/instance", instanceForm(svc, "10.0.0.1", "8080", "weight", "x")).body, `role="alert"`, "Not saved", `value="x"`)
	// An unknown instance: the registry's answer.
	if r := e.post("/ui/instance/enabled", instanceForm(svc, "10.0.0.9", "8080", "enabled", "false")); r.Code != http.StatusBadRequest {
		t.Fatalf("unknown instance = %d", r.Code)
	}
	if r := e.get("/ui/instance?" + instanceForm(svc, "10.0.0.9", "8080").Encode()); r.Code != http.StatusNotFound {
		t.Fatalf("edit form of an unknown instance = %d", r.Code)
	}

	// Deregister: a confirmation page, then the POST.
	q := instanceForm(svc, "10.0.0.2", "8080")
	mustContain(t, e.get("/ui/instance/deregister?"+q.Encode()).body, "Deregister 10.0.0.2:8080", `action="/ui/instance/deregister"`)
	if r := e.post("/ui/instance/deregister", q); r.Code != http.StatusSeeOther {
		t.Fatalf("deregister = %d", r.Code)
	}
	if e.instance(svc, "10.0.0.2", 8080) != nil {
		t.Fatal("still registered")
	}
	want := []registry.OpKind{registry.OpPatch, registry.OpPatch, registry.OpPatch, registry.OpPatch, registry.OpDeregister}
	if got := e.w.kinds(); !slices.Equal(got, want) {
		t.Fatalf("writes through the write path = %v, want %v", got, want)
	}
}

// TestPersistentInstanceActions: persistent instances and service settings
// live on the CP side (Raft); the console lists them with their health
// check verdicts, and its changes reach them through Raft.
func TestPersistentInstanceActions(t *testing.T) {
	e := newEnv(t, nil)
	svc := key("db")
	e.registerPersistent(svc, model.Instance{IP: "10.0.0.5", Port: 5432, Metadata: map[string]string{"role": "primary"}})
	e.register(svc, model.Instance{IP: "10.0.0.6", Port: 8080})
	ik := model.InstanceKey{IP: "10.0.0.5", Port: 5432, Cluster: model.DefaultCluster}
	if e.st.PersistentInstance(svc, ik) == nil {
		t.Fatal("the instance is not held on the CP side")
	}
	body := e.get("/ui/service?name=db").body
	mustContain(t, body, "<code>10.0.0.5:5432</code>", "<code>10.0.0.6:8080</code>", `data-label="Ephemeral">no<`, `data-label="Ephemeral">yes<`,
		"persistent, not checked", "2 instances, 2 healthy, 2 online")

	// Offline and an edit: patches of the persistent instance, through Raft.
	if r := e.post("/ui/instance/enabled", instanceForm(svc, "10.0.0.5", "5432", "enabled", "false")); r.Code != http.StatusSeeOther {
		t.Fatalf("disable = %d %s", r.Code, r.body)
	}
	if in := e.st.PersistentInstance(svc, ik); in == nil || in.Enabled || in.Metadata["role"] != "primary" {
		t.Fatalf("after disable: %+v", in)
	}
	if r := e.post("/ui/instance", instanceForm(svc, "10.0.0.5", "5432", "weight", "3", "enabled", "on", "metadata", `{"role":"replica"}`)); r.Code != http.StatusSeeOther {
		t.Fatalf("save = %d %s", r.Code, r.body)
	}
	if in := e.st.PersistentInstance(svc, ik); in == nil || !in.Enabled || in.Weight != 3 || in.Metadata["role"] != "replica" {
		t.Fatalf("after save: %+v", in)
	}
	if in := e.instance(svc, "10.0.0.6", 8080); in == nil || !in.Enabled || in.Weight != 1 || !in.Ephemeral {
		t.Fatalf("the ephemeral instance changed: %+v", in)
	}
	e.w.mu.Lock()
	for _, op := range e.w.ops {
		if op.Kind == registry.OpPatch && op.Instance.Ephemeral {
			t.Errorf("console patch of a persistent instance says ephemeral: %+v", op)
		}
	}
	e.w.mu.Unlock()

	// A health check verdict (as the checker writes it: the instance as
	// checked, with its new health) shows as such.
	checked := *e.st.PersistentInstance(svc, ik)
	checked.Healthy = false
	if _, err := e.w.inner.Apply(context.Background(), &registry.Op{Kind: registry.OpSetHealth, Key: svc, Instance: checked}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.get("/ui/service?name=db").body, `badge bad">unhealthy</span> <span class="muted">failed health check`)

	// Service settings: edited from the console, kept on the CP side.
	f := url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {"db"}, "protectThreshold": {"0.5"}, "metadata": {"tier=gold"}}
	if r := e.post("/ui/service/edit", f); r.Code != http.StatusSeeOther {
		t.Fatalf("service edit = %d %s", r.Code, r.body)
	}
	if _, mr := e.st.PersistentRecords(svc, []model.InstanceKey{}); mr == nil || mr.Meta.ProtectThreshold != 0.5 || mr.Meta.Metadata["tier"] != "gold" {
		t.Fatalf("CP settings after edit: %+v", mr)
	}
	mustContain(t, e.get("/ui/service?name=db").body, "<code>tier</code> = <code>gold</code>")

	// Deregister both, then delete the service and its settings.
	for _, in := range []string{"10.0.0.5:5432", "10.0.0.6:8080"} {
		ip, port, _ := strings.Cut(in, ":")
		if r := e.post("/ui/instance/deregister", instanceForm(svc, ip, port)); r.Code != http.StatusSeeOther {
			t.Fatalf("deregister %s = %d %s", in, r.Code, r.body)
		}
	}
	if e.st.PersistentInstance(svc, ik) != nil {
		t.Fatal("the persistent instance is still registered")
	}
	if r := e.post("/ui/service/delete", url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {"db"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("delete = %d %s", r.Code, r.body)
	}
	if e.st.View(svc) != nil {
		t.Fatal("service still exists")
	}
}

func TestServiceActions(t *testing.T) {
	e := newEnv(t, nil)
	svc := key("demo")
	e.register(svc, model.Instance{IP: "10.0.0.1", Port: 8080})
	// Settings as a client sets them (on the CP side, through Raft).
	if _, err := e.w.inner.Apply(context.Background(), &registry.Op{Kind: registry.OpUpdateService, Key: svc,
		Service: model.ServiceMeta{ProtectThreshold: 0.2, Selector: model.Selector{Type: "label", Expression: "CONSUMER.label.a = PROVIDER.label.a"}}}); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {"demo"}}
	mustContain(t, e.get("/ui/service/edit?"+form.Encode()).body, `value="0.2"`)
	f := url.Values{"protectThreshold": {"0.8"}, "metadata": {"owner=team-a"}}
	for k, v := range form {
		f[k] = v
	}
	if r := e.post("/ui/service/edit", f); r.Code != http.StatusSeeOther {
		t.Fatalf("service edit = %d %s", r.Code, r.body)
	}
	v := e.st.View(svc)
	if v.Meta == nil || v.Meta.ProtectThreshold != 0.8 || v.Meta.Metadata["owner"] != "team-a" || v.Meta.Selector.Type != "label" {
		t.Fatalf("after edit: %+v (selector must be kept)", v.Meta)
	}
	f.Set("protectThreshold", "1.5")
	if r := e.post("/ui/service/edit", f); r.Code != http.StatusBadRequest {
		t.Fatalf("threshold 1.5 = %d", r.Code)
	}
	// A service with instances cannot be deleted (as in Nacos).
	r := e.get("/ui/service/delete?" + form.Encode())
	mustContain(t, r.body, "still has 1 instance")
	mustNotContain(t, r.body, `id="confirm"`)
	if r := e.post("/ui/service/delete", form); r.Code != http.StatusBadRequest || !strings.Contains(r.body, "is not empty") {
		t.Fatalf("delete non-empty = %d %s", r.Code, r.body)
	}
	e.post("/ui/instance/deregister", instanceForm(svc, "10.0.0.1", "8080"))
	mustContain(t, e.get("/ui/service/delete?"+form.Encode()).body, `id="confirm"`)
	if r := e.post("/ui/service/delete", form); r.Code != http.StatusSeeOther || !strings.Contains(r.Header().Get("Location"), "done=service-deleted") {
		t.Fatalf("delete = %d → %s", r.Code, r.Header().Get("Location"))
	}
	if e.st.View(svc) != nil {
		t.Fatal("service still exists")
	}
}

func TestCrossOriginAndBadInput(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.MaxBodyBytes = 4096 })
	svc := key("demo")
	e.register(svc, model.Instance{IP: "10.0.0.1", Port: 8080})
	form := instanceForm(svc, "10.0.0.1", "8080", "enabled", "false")
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "", "Origin", "http://evil.example"},
	} {
		if r := e.post("/ui/instance/enabled", form, hdr...); r.Code != http.StatusForbidden {
			t.Fatalf("cross-origin %v = %d", hdr, r.Code)
		}
	}
	if in := e.instance(svc, "10.0.0.1", 8080); !in.Enabled {
		t.Fatal("a cross-origin request changed the instance")
	}
	big := instanceForm(svc, "10.0.0.1", "8080", "metadata", strings.Repeat("a", 5000))
	if r := e.post("/ui/instance", big); r.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body = %d", r.Code)
	}
	for _, f := range []url.Values{
		instanceForm(svc, "not an ip!", "8080", "enabled", "false"),
		instanceForm(svc, "10.0.0.1", "70000", "enabled", "false"),
		instanceForm(key("bad/name"), "10.0.0.1", "8080", "enabled", "false"),
		instanceForm(svc, "10.0.0.1", "8080", "enabled", "false", "cluster", "a b"),
	} {
		if r := e.post("/ui/instance/enabled", f); r.Code != http.StatusBadRequest {
			t.Fatalf("bad form %v = %d", f, r.Code)
		}
	}
	if got := e.w.kinds(); len(got) != 0 {
		t.Fatalf("refused requests wrote: %v", got)
	}
}

func TestLoginAndPermissions(t *testing.T) {
	auth := newFakeAuth()
	logs := &testutil.SyncBuffer{}
	e := newEnv(t, func(c *Config) { c.Auth = auth; c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	e.register(key("public-svc"), model.Instance{IP: "10.0.0.1", Port: 8080})
	e.register(key("secret-svc"), model.Instance{IP: "10.0.0.2", Port: 8080})

	// Not logged in: to the login page and back.
	r := e.get("/ui/services?q=svc")
	if r.Code != http.StatusSeeOther || r.Header().Get("Location") != "/ui/login?next=%2Fui%2Fservices%3Fq%3Dsvc" {
		t.Fatalf("anonymous GET = %d → %q", r.Code, r.Header().Get("Location"))
	}
	if r := e.get("/ui/services?h=abc", "HX-Request", "true"); r.Code != http.StatusOK || !strings.HasPrefix(r.Header().Get("HX-Redirect"), "/ui/login?") {
		t.Fatalf("anonymous poll = %d HX-Redirect %q", r.Code, r.Header().Get("HX-Redirect"))
	}
	if r := e.post("/ui/instance/enabled", instanceForm(key("public-svc"), "10.0.0.1", "8080", "enabled", "false")); r.Code != http.StatusSeeOther ||
		!strings.HasPrefix(r.Header().Get("Location"), "/ui/login") {
		t.Fatalf("anonymous POST = %d → %q", r.Code, r.Header().Get("Location"))
	}
	login := e.get("/ui/login?next=%2Fui%2Fservices%3Fq%3Dsvc")
	mustContain(t, login.body, `<label for="l-user">Username</label>`, `type="password"`, `name="next" value="/ui/services?q=svc"`)

	// Wrong password, a refusal with a reason, then the right one.
	if r := e.post("/ui/login", url.Values{"username": {"reader"}, "password": {"nope"}, "next": {"/ui/services"}}); r.Code != http.StatusOK ||
		!strings.Contains(r.body, ErrBadCredentials.Error()) || len(r.Result().Cookies()) != 0 {
		t.Fatalf("wrong password = %d", r.Code)
	}
	mustContain(t, e.post("/ui/login", url.Values{"username": {"blocked"}, "password": {"x"}}).body, "too many attempts")
	// Failed logins are logged without what was typed (a password, often).
	e.post("/ui/login", url.Values{"username": {"Tr0ub4dor-3"}, "password": {"x"}})
	if l := logs.String(); strings.Count(l, "console login refused") != 3 || strings.Contains(l, "Tr0ub4dor") || strings.Contains(l, "reader") {
		t.Fatalf("login log:\n%s", l)
	}
	r = e.post("/ui/login", url.Values{"username": {"reader"}, "password": {"reader"}, "next": {"/ui/services?q=svc"}})
	if r.Code != http.StatusSeeOther || r.Header().Get("Location") != "/ui/services?q=svc" {
		t.Fatalf("login = %d → %q", r.Code, r.Header().Get("Location"))
	}
	ck := r.Result().Cookies()
	if len(ck) != 1 || ck[0].Name != TokenCookie || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" || ck[0].MaxAge != 3600 {
		t.Fatalf("cookie = %+v", ck)
	}
	cookie := TokenCookie + "=" + ck[0].Value
	if !strings.HasSuffix(auth.logins[len(auth.logins)-1], "@192.0.2.1:1234") {
		t.Fatalf("Login was not given the remote address: %v", auth.logins)
	}

	// A reader sees only what it may read, and changes nothing.
	r = e.get("/ui/services", "Cookie", cookie)
	mustContain(t, r.body, "public-svc", "reader")
	mustNotContain(t, r.body, "secret-svc")
	if r := e.get("/ui/service?name=secret-svc", "Cookie", cookie); r.Code != http.StatusForbidden {
		t.Fatalf("reader GET secret = %d", r.Code)
	}
	r = e.get("/ui/service?name=public-svc", "Cookie", cookie)
	mustContain(t, r.body, "read-only access")
	mustNotContain(t, r.body, "Take offline")
	if r := e.post("/ui/instance/enabled", instanceForm(key("public-svc"), "10.0.0.1", "8080", "enabled", "false"), "Cookie", cookie); r.Code != http.StatusForbidden {
		t.Fatalf("reader POST = %d", r.Code)
	}
	// A writer may change it.
	r = e.post("/ui/login", url.Values{"username": {"writer"}, "password": {"writer"}})
	wc := TokenCookie + "=" + r.Result().Cookies()[0].Value
	if r := e.post("/ui/instance/enabled", instanceForm(key("secret-svc"), "10.0.0.2", "8080", "enabled", "false"), "Cookie", wc); r.Code != http.StatusSeeOther {
		t.Fatalf("writer POST = %d %s", r.Code, r.body)
	}
	if in := e.instance(key("secret-svc"), "10.0.0.2", 8080); in.Enabled {
		t.Fatal("writer's change not applied")
	}
	// The cluster page is for admins only.
	if r := e.get("/ui/cluster", "Cookie", cookie); r.Code != http.StatusForbidden {
		t.Fatalf("reader GET cluster = %d", r.Code)
	}
	mustNotContain(t, e.get("/ui/services", "Cookie", cookie).body, `href="/ui/cluster"`)
	if r := e.get("/ui/cluster", "Cookie", wc); r.Code != http.StatusOK {
		t.Fatalf("admin GET cluster = %d", r.Code)
	}
	mustContain(t, e.get("/ui/services", "Cookie", wc).body, `href="/ui/cluster"`)
	// A forged token is anonymous; logout clears the cookie.
	if r := e.get("/ui/", "Cookie", TokenCookie+"=forged"); r.Code != http.StatusSeeOther {
		t.Fatalf("forged token = %d", r.Code)
	}
	r = e.post("/ui/logout", nil, "Cookie", wc)
	if r.Code != http.StatusSeeOther || len(r.Result().Cookies()) != 1 || r.Result().Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout = %d %+v", r.Code, r.Result().Cookies())
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/services?q=a":     "/ui/services?q=a",
		"/nacos/cluster":       "/nacos/cluster",
		"":                     "/ui/",
		"https://evil.example": "/ui/",
		"//evil.example/ui/":   "/ui/",
		"/\\evil.example":      "/ui/",
		"/metrics":             "/ui/",
		"/ui/login?next=/ui/":  "/ui/",
		"javascript:alert(1)":  "/ui/",
	} {
		if got := safeNext(in, "/ui/"); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClusterPage(t *testing.T) {
	self, peer, down := "127.0.0.1:8848", "127.0.0.2:8848", "127.0.0.3:8848"
	fc := &fakeCluster{
		members: []member.MemberStatus{
			{Address: self, State: member.StateUp, LastContact: t0},
			{Address: peer, State: member.StateSuspicious, LastContact: t0.Add(-2 * time.Second), FailCount: 1, LastError: "probe: deadline exceeded <b>"},
			{Address: down, State: member.StateDown, FailCount: 3},
		},
		peers: []distro.PeerStatus{{Addr: peer, QueueDepth: 7, Synced: 4, SyncLatency: 40 * time.Millisecond, LastSync: t0,
			LastVerify: t0, LastVerifiedBy: t0, Repaired: 2}, {Addr: down, QueueDepth: 0, LastVerify: t0, VerifyErr: "connection refused"}},
		owner: func(k model.ServiceKey) string {
			if strings.HasPrefix(k.Name, "p") {
				return peer
			}
			return self
		},
	}
	e := newEnv(t, func(c *Config) { c.Cluster = fc })
	for _, n := range []string{"a", "b", "p1"} {
		e.register(key(n), model.Instance{IP: "10.0.0.1", Port: 1})
	}
	r := e.get("/ui/cluster")
	mustContain(t, r.body, self+"</code> <span class=\"muted\">(this node)", `badge warn">SUSPICIOUS`, `badge bad">DOWN`,
		"probe: deadline exceeded &lt;b&gt;", "connection refused", `data-label="Sync queue">7`, `data-label="Mean sync latency">10ms`,
		`data-label="Repaired keys">2`, `href="/ui/services?owner=`+url.QueryEscape(peer)+`">1<`, `href="/ui/services?owner=`+url.QueryEscape(self)+`">2<`,
		`href="http://`+peer+`/ui/cluster"`, "Sync latency per peer", "3 services in all")
	// The services list filters by owner and names it.
	r = e.get("/ui/services?owner=" + url.QueryEscape(peer))
	mustContain(t, r.body, ">p1<", `data-label="Owner">`+peer)
	mustNotContain(t, r.body, ">a</a>")
	// Overview counts members by state.
	mustContain(t, e.get("/ui/").body, `<span class="big">1</span> <span class="badge bad">DOWN</span>`)

	// Polls of the page do not ask for every key's owner again while
	// neither the data nor the view changed.
	e.get("/ui/cluster")
	before := fc.owners.Load()
	for range 5 {
		e.get("/ui/cluster?h=1", "HX-Request", "true")
	}
	if n := fc.owners.Load() - before; n != 0 {
		t.Fatalf("%d owner computations for 5 polls of an unchanged cluster", n)
	}
	e.register(key("p2"), model.Instance{IP: "10.0.0.1", Port: 1})
	mustContain(t, e.get("/ui/cluster").body, `href="/ui/services?owner=`+url.QueryEscape(peer)+`">2<`, "4 services in all")
	v2 := "v2"
	fc.view.Store(&v2)
	fc.owner = func(model.ServiceKey) string { return self } // the peer left the view
	mustContain(t, e.get("/ui/cluster").body, `href="/ui/services?owner=`+url.QueryEscape(self)+`">4<`)
}

func TestSamplerAndCharts(t *testing.T) {
	s := newSampler(3)
	for i, c := range []Counters{{Registrations: 0}, {Registrations: 10, Beats: 5}, {Registrations: 10, Beats: 15}, {Registrations: 12, Beats: 15}, {Registrations: 20, Beats: 25}} {
		s.add(t0.Add(time.Duration(i)*time.Second), c, []distro.PeerStatus{{Addr: "p", Synced: uint64(i / 2 * 2), SyncLatency: time.Duration(i/2*2) * 10 * time.Millisecond}})
	}
	pts := s.points()
	if len(pts) != 4 || !pts[0].at.Equal(t0.Add(time.Second)) || !pts[3].at.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("ring keeps %d points from %v", len(pts), pts[0].at)
	}
	rs := rates(pts)
	if rs[0].Name != "registrations" || !slices.Equal(rs[0].vals, []float64{0, 2, 8}) || !slices.Equal(rs[2].vals, []float64{10, 0, 10}) {
		t.Fatalf("rates = %+v", rs)
	}
	lat := syncLatency(pts)
	if len(lat) != 1 || lat[0].vals[0] != 10 || !isNaN(lat[0].vals[1]) || lat[0].vals[2] != 10 {
		t.Fatalf("latency = %+v", lat)
	}
	ch := buildChart("x", "Title", "unit", lat, 3)
	if ch.Empty || len(ch.Lines) != 1 || len(ch.Lines[0].Paths) != 2 || ch.YMax != "10.0" || ch.Lines[0].Last != "10.0" {
		t.Fatalf("chart = %+v", ch)
	}
	if c := buildChart("y", "T", "u", nil, 3); !c.Empty || c.YMax != "1.00" {
		t.Fatalf("empty chart = %+v", c)
	}
	for in, want := range map[float64]float64{0: 1, 0.3: 1, 1.2: 2, 3: 5, 7: 10, 10: 10, 11: 20, 420: 500} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func isNaN(f float64) bool { return f != f }

func TestCountersChartOnOverview(t *testing.T) {
	var n uint64
	e := newEnv(t, func(c *Config) { c.Counters = func() Counters { n += 30; return Counters{Beats: n} } })
	for range 3 {
		e.c.sample()
		e.clk.Advance(time.Second)
	}
	r := e.get("/ui/")
	mustContain(t, r.body, "heartbeats: <span class=\"muted\">latest</span> 30.0", "<polyline", `role="img"`, "<desc")
}

func TestServiceInstancePaging(t *testing.T) {
	e := newEnv(t, nil)
	svc := key("big")
	for i := range 250 {
		cl := "a"
		if i%2 == 1 {
			cl = "b"
		}
		e.register(svc, model.Instance{IP: fmt.Sprintf("10.0.%d.%d", i/100, i%100), Port: 80, Cluster: cl})
	}
	rows := func(body string) int { return strings.Count(body, `data-label="Instance"`) }
	r := e.get("/ui/service?name=big")
	if n := rows(r.body); n != instancesPerPage {
		t.Fatalf("first page shows %d rows", n)
	}
	// Cluster headings count the whole cluster; the pager moves on.
	mustContain(t, r.body, "Cluster a <span class=\"muted\">— 125 instances", "Cluster b <span class=\"muted\">— 125 instances", "Instances 1–100 of 250", "Page 1 of 3", `rel="next"`)
	r = e.get("/ui/service?name=big&ipage=3")
	if n := rows(r.body); n != 50 {
		t.Fatalf("last page shows %d rows", n)
	}
	mustContain(t, r.body, "Instances 201–250 of 250")
	// Find instances by address.
	r = e.get("/ui/service?name=big&ip=10.0.2.")
	if n := rows(r.body); n != 50 {
		t.Fatalf("ip=10.0.2. shows %d rows", n)
	}
	mustContain(t, r.body, "matching “10.0.2.”", `value="10.0.2."`, "Show all")
	mustContain(t, e.get("/ui/service?name=big&ip=nothing").body, "No instance matches")

	// The row's button names its instance in the form's action URL.
	m := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(e.get("/ui/service?name=big&ip=10.0.2.5:").body)
	if m == nil {
		t.Fatal("no toggle form")
	}
	if r := e.post(strings.ReplaceAll(m[1], "&amp;", "&"), url.Values{"enabled": {"false"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("toggle = %d %s", r.Code, r.body)
	}
	if in := e.instance(svc, "10.0.2.5", 80); in == nil || in.Enabled {
		t.Fatalf("toggled instance = %+v", in)
	}
}

func TestServiceListPollShortcut(t *testing.T) {
	e := newEnv(t, nil)
	e.register(key("a"), model.Instance{IP: "10.0.0.1", Port: 80})
	page := e.get("/ui/services")
	poll := strings.ReplaceAll(regexp.MustCompile(`hx-get="([^"]+)"`).FindStringSubmatch(page.body)[1], "&amp;", "&")
	if !strings.Contains(poll, "s=") {
		t.Fatalf("poll URL %q carries no state", poll)
	}
	if r := e.get(poll, "HX-Request", "true"); r.Code != http.StatusNoContent {
		t.Fatalf("unchanged poll = %d", r.Code)
	}
	e.register(key("b"), model.Instance{IP: "10.0.0.1", Port: 80})
	r := e.get(poll, "HX-Request", "true")
	if r.Code != http.StatusOK || !strings.Contains(r.body, ">b</a>") {
		t.Fatalf("poll after a new service = %d:\n%s", r.Code, r.body)
	}
}

// TestHostCheck: a console anyone may change (CheckHost) answers only
// requests addressed to an IP address, localhost or a listed name; a
// foreign name (a DNS rebinding page) is refused, for reads and changes.
func TestHostCheck(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CheckHost, c.AllowedHosts = true, []string{"Registry.Internal."} })
	e.register(key("svc"), model.Instance{IP: "10.0.0.1", Port: 8080})
	writes := len(e.w.kinds())
	send := func(method, host string) int {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(instanceForm(key("svc"), "10.0.0.1", "8080", "enabled", "false").Encode())
		}
		req := httptest.NewRequest(method, "http://"+host+"/ui/instance/enabled", body)
		if method == http.MethodGet {
			req = httptest.NewRequest(method, "http://"+host+"/ui/services", nil)
		} else {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin") // same-origin with the rebinding page
			req.Header.Set("Origin", "http://"+host)
		}
		return e.do(req).Code
	}
	for host, ok := range map[string]bool{
		"127.0.0.1:8848": true, "[::1]:8848": true, "10.1.2.3": true, "localhost:8848": true, "LOCALHOST.": true,
		"registry.internal:8848": true, "evil.example:8848": false, "127.0.0.1.nip.io:8848": false, "registry.internal.evil.example": false,
	} {
		if code := send(http.MethodGet, host); (code == http.StatusOK) != ok || !ok && code != http.StatusForbidden {
			t.Errorf("GET with Host %s = %d, want allowed %v", host, code, ok)
		}
		if !ok {
			if code := send(http.MethodPost, host); code != http.StatusForbidden {
				t.Errorf("POST with Host %s = %d, want 403", host, code)
			}
		}
	}
	if got := e.w.kinds(); len(got) != writes {
		t.Fatalf("a refused request wrote: %v", got[writes:])
	}
	// Without the check (auth on, or a read-only console) any host is served.
	e2 := newEnv(t, nil)
	if r := e2.do(httptest.NewRequest(http.MethodGet, "http://evil.example/ui/services", nil)); r.Code != http.StatusOK {
		t.Fatalf("without CheckHost: %d", r.Code)
	}
}
