package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/testutil"
)

func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metricValue(t *testing.T, base, line string) string {
	t.Helper()
	_, body := getBody(t, base+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, line+" "); ok {
			return v
		}
	}
	return ""
}

// TestIntegrationConsole runs two real nodes with --console-edit: the console
// answers at /nacos/ and /ui/ next to the Nacos API, a change made in one
// node's console is handed to the service's owner and reaches the other
// node, persistent instances and service settings (on Raft) are shown and
// changed through it, and the cluster page shows the peer with its sync
// figures.
func TestIntegrationConsole(t *testing.T) {
	t.Parallel()
	ports := []int{testutil.FreePort(t), testutil.FreePort(t)}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	conf := filepath.Join(t.TempDir(), "cluster.conf")
	if err := os.WriteFile(conf, []byte(addr(ports[0])+"\n"+addr(ports[1])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var nodes []*testutil.Node
	for _, p := range ports {
		nodes = append(nodes, testutil.Start(t, p, "--cluster-conf", conf, "--cluster-secret", "console-integration-secret-0123456789abcdef",
			"--advertise", addr(p), "--verify-interval", "500ms", "--probe-interval", "200ms", "--startup-timeout", "15s", "--console-edit",
			"--auth=false"))
	}
	for _, n := range nodes {
		testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, n.Ready)
	}
	a, b := nodes[0], nodes[1]
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, body := getBody(t, a.URL()+"/ui/cluster"); strings.Count(body, `badge ok">UP`) != 2 {
			return fmt.Errorf("cluster page does not show both members UP")
		}
		return nil
	})

	// Services registered through a; pick one that b owns.
	for i := range 8 {
		resp, err := http.PostForm(a.URL()+"/nacos/v1/ns/instance", url.Values{"serviceName": {fmt.Sprintf("con-%d", i)}, "ip": {"10.0.0.1"}, "port": {"80"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var svc string
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, body := getBody(t, a.URL()+"/nacos/services?q=con-&size=10")
		for _, row := range strings.Split(body, "<tr>") {
			m := regexp.MustCompile(`>(con-\d)</a></th>`).FindStringSubmatch(row)
			if m != nil && strings.Contains(row, `data-label="Owner">`+addr(ports[1])) {
				svc = m[1]
				return nil
			}
		}
		return fmt.Errorf("no con- service owned by %s listed", addr(ports[1]))
	})
	forwarded := metricValue(t, a.URL(), "distro_distro_forwarded_writes_total")

	// post sends a console form the way the console's own page does
	// (same-origin) and wants the redirect of a change made.
	post := func(n *testutil.Node, path string, form url.Values) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, n.URL()+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", n.URL())
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("console %s answered %d: %s", path, resp.StatusCode, body)
		}
	}
	// Take it offline in a's console.
	post(a, "/nacos/instance/enabled", url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {svc}, "ip": {"10.0.0.1"},
		"port": {"80"}, "cluster": {"DEFAULT"}, "enabled": {"false"}})
	if got := metricValue(t, a.URL(), "distro_distro_forwarded_writes_total"); got == forwarded {
		t.Fatalf("the change was not handed to the owner (forwarded writes still %s)", got)
	}
	// Disabled instances leave client lists on every node.
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, n := range nodes {
			if got, err := list(t, n.URL(), svc); err != nil || len(got) != 0 {
				return fmt.Errorf("%s still lists %v (%v)", n.Addr(), got, err)
			}
		}
		return nil
	})
	if _, body := getBody(t, b.URL()+"/ui/service?name="+svc); !strings.Contains(body, `badge muted">offline`) {
		t.Fatalf("b's console does not show the instance offline:\n%s", body)
	}
	if v := metricValue(t, a.URL(), `distro_client_writes_total{op="patch"}`); v != "1" {
		t.Fatalf(`client_writes_total{op="patch"} = %q, want 1`, v)
	}

	// Persistent instances and service settings live on the Raft side: b's
	// console shows them, and its changes go through Raft to every node.
	if st, body, err := persistentWrite(a, http.MethodPost, "DEFAULT_GROUP@@con-db", 5432); err != nil || st != http.StatusOK {
		t.Fatalf("persistent register: %d %s %v", st, body, err)
	}
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, body := getBody(t, b.URL()+"/ui/service?name=con-db"); !strings.Contains(body, "<code>10.9.0.1:5432</code>") ||
			!strings.Contains(body, `data-label="Ephemeral">no<`) {
			return fmt.Errorf("b's console does not show the persistent instance")
		}
		return nil
	})
	post(b, "/ui/instance/enabled", url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {"con-db"}, "ip": {"10.9.0.1"},
		"port": {"5432"}, "cluster": {"DEFAULT"}, "enabled": {"false"}})
	post(b, "/ui/service/edit", url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {"con-db"},
		"protectThreshold": {"0.4"}, "metadata": {"tier=gold"}})
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, n := range nodes {
			if got, err := list(t, n.URL(), "con-db"); err != nil || len(got) != 0 {
				return fmt.Errorf("%s still lists the offline persistent instance: %v (%v)", n.Addr(), got, err)
			}
			if _, body := getBody(t, n.URL()+"/nacos/v1/ns/service?serviceName=con-db"); !strings.Contains(body, `"protectThreshold":0.4`) ||
				!strings.Contains(body, `"tier":"gold"`) {
				return fmt.Errorf("%s service settings: %s", n.Addr(), body)
			}
		}
		return nil
	})

	// The cluster page shows the peer's replication state; both bases serve it.
	for _, base := range []string{"/nacos/", "/ui/"} {
		code, body := getBody(t, a.URL()+base+"cluster")
		if code != http.StatusOK || !strings.Contains(body, "Sync latency per peer") {
			t.Fatalf("GET %scluster = %d", base, code)
		}
		m := regexp.MustCompile(`data-label="Synced changes">(\d+)<`).FindStringSubmatch(body)
		if m == nil || m[1] == "0" {
			t.Fatalf("%scluster shows no synced changes to the peer: %v", base, m)
		}
	}
	// The Nacos API is unaffected by the console's routes.
	if code, body := getBody(t, a.URL()+"/nacos/v1/ns/service/list?pageNo=1&pageSize=100"); code != 200 || !strings.Contains(body, `"count":9`) {
		t.Fatalf("service/list = %d %s", code, body)
	}
	if code, _ := getBody(t, a.URL()+"/nacos/v1/ns/operator/metrics"); code != 200 {
		t.Fatalf("operator/metrics = %d", code)
	}
}

// TestIntegrationConsoleOff: --console=false serves no console, and the
// Nacos API keeps working.
func TestIntegrationConsoleOff(t *testing.T) {
	t.Parallel()
	n := testutil.Start(t, testutil.FreePort(t), "--console=false")
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	for _, p := range []string{"/ui/", "/nacos/", "/nacos/services", "/ui/static/console.css"} {
		if code, body := getBody(t, n.URL()+p); code == http.StatusOK || strings.Contains(body, "<html") {
			t.Fatalf("GET %s with the console off = %d", p, code)
		}
	}
	if code, _ := getBody(t, n.URL()+"/nacos/v1/ns/service/list?pageNo=1&pageSize=10"); code != http.StatusOK {
		t.Fatalf("service/list = %d", code)
	}
}

// TestIntegrationConsoleAuth runs a node with client auth on: the console
// sends a visitor to its login page, logs the admin in with the Nacos users
// (the API's auth middleware lets the console's own routes through), and
// the API still refuses requests without a token.
func TestIntegrationConsoleAuth(t *testing.T) {
	t.Parallel()
	const password = "console-admin-password"
	n := testutil.Start(t, testutil.FreePort(t), "--auth", "--auth-admin-password", password)
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values, cookie *http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, n.URL()+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", n.URL())
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp, err := noRedirect.Get(n.URL() + "/nacos/services")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/nacos/login?next=%2Fnacos%2Fservices" {
		t.Fatalf("anonymous GET = %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := getBody(t, n.URL()+"/nacos/login"); code != http.StatusOK || !strings.Contains(body, `type="password"`) {
		t.Fatalf("login page = %d", code)
	}
	if r := post("/nacos/login", url.Values{"username": {"nacos"}, "password": {"wrong"}}, nil); r.StatusCode != http.StatusOK || len(r.Cookies()) != 0 {
		t.Fatalf("wrong password = %d", r.StatusCode)
	}
	r := post("/nacos/login", url.Values{"username": {"nacos"}, "password": {password}, "next": {"/nacos/services"}}, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/nacos/services" || len(r.Cookies()) != 1 {
		t.Fatalf("login = %d → %q, cookies %v", r.StatusCode, r.Header.Get("Location"), r.Cookies())
	}
	cookie := r.Cookies()[0]
	// Register through the API with the admin's token (the console's
	// session token is the same kind), then see it in the console.
	reg, _ := http.NewRequest(http.MethodPost, n.URL()+"/nacos/v1/ns/instance?accessToken="+url.QueryEscape(cookie.Value),
		strings.NewReader("serviceName=secured&ip=10.0.0.1&port=80"))
	reg.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(reg); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("register with the console's token: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, n.URL()+"/nacos/services", nil)
	req.AddCookie(cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), ">secured</a>") || !strings.Contains(string(b), "nacos (admin)") {
		t.Fatalf("services as admin = %d:\n%s", resp.StatusCode, b)
	}
	// The admin may change it from the console; the API without a token
	// may not.
	form := url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {"secured"}, "ip": {"10.0.0.1"}, "port": {"80"}, "cluster": {"DEFAULT"}, "enabled": {"false"}}
	if r := post("/nacos/instance/enabled", form, cookie); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin change = %d", r.StatusCode)
	}
	if r := post("/nacos/instance/enabled", form, nil); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/nacos/login") {
		t.Fatalf("anonymous change = %d → %q", r.StatusCode, r.Header.Get("Location"))
	}
	if code, _ := getBody(t, n.URL()+"/nacos/v1/ns/instance/list?serviceName=secured"); code != http.StatusForbidden {
		t.Fatalf("API without a token = %d, want 403", code)
	}
}
