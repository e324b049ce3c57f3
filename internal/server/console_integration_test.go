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
// node, and the cluster page shows the peer with its sync figures.
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
			"--advertise", addr(p), "--verify-interval", "500ms", "--probe-interval", "200ms", "--startup-timeout", "15s", "--console-edit"))
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

	// Take it offline in a's console (same-origin form post).
	form := url.Values{"ns": {"public"}, "group": {"DEFAULT_GROUP"}, "name": {svc}, "ip": {"10.0.0.1"}, "port": {"80"}, "cluster": {"DEFAULT"}, "enabled": {"false"}}
	req, _ := http.NewRequest(http.MethodPost, a.URL()+"/nacos/instance/enabled", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.URL())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console change answered %d", resp.StatusCode)
	}
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
	if code, body := getBody(t, a.URL()+"/nacos/v1/ns/service/list?pageNo=1&pageSize=100"); code != 200 || !strings.Contains(body, `"count":8`) {
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
