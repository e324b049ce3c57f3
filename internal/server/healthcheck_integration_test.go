package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/testutil"
)

// hostHealth returns the healthy flag of ip:port in a service's instance list.
func hostHealth(base, svc, ip string, port int) (bool, error) {
	resp, err := http.Get(base + "/nacos/v1/ns/instance/list?serviceName=" + url.QueryEscape(svc))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var info struct {
		Hosts []struct {
			IP      string `json:"ip"`
			Port    int    `json:"port"`
			Healthy bool   `json:"healthy"`
		} `json:"hosts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return false, err
	}
	for _, h := range info.Hosts {
		if h.IP == ip && h.Port == port {
			return h.Healthy, nil
		}
	}
	return false, fmt.Errorf("%s:%d not listed", ip, port)
}

func send(t *testing.T, method, target string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIntegrationHealthChecks runs the real binary: a persistent instance
// on a loopback port is registered over the v1 API, its cluster gets a TCP
// checker through PUT /v1/ns/cluster, and its health in the instance list
// follows its listener closing and reopening.
func TestIntegrationHealthChecks(t *testing.T) {
	t.Parallel()
	n := testutil.Start(t, testutil.FreePort(t), "--health-check-interval", "200ms", "--health-check-threshold", "2")
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accept := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go accept(l)
	port := l.Addr().(*net.TCPAddr).Port
	const svc = "DEFAULT_GROUP@@pg"
	if code, body := send(t, "POST", n.URL()+"/nacos/v1/ns/instance", url.Values{"serviceName": {svc}, "ip": {"127.0.0.1"},
		"port": {strconv.Itoa(port)}, "ephemeral": {"false"}}); code != 200 {
		t.Fatalf("register: %d %s", code, body)
	}
	cluster := url.Values{"serviceName": {svc}, "clusterName": {"DEFAULT"}, "checkPort": {"80"}, "useInstancePort4Check": {"true"},
		"healthChecker": {`{"type":"TCP"}`}}
	bad := url.Values{}
	for k, v := range cluster {
		bad[k] = v
	}
	bad.Set("healthChecker", `{"type":"HTTP","path":"//elsewhere.example/"}`)
	if code, body := send(t, "PUT", n.URL()+"/nacos/v1/ns/cluster", bad); code != 400 {
		t.Fatalf("bad checker answered %d %s", code, body)
	}
	if code, body := send(t, "PUT", n.URL()+"/nacos/v1/ns/cluster", cluster); code != 200 || body != "ok" {
		t.Fatalf("update cluster: %d %s", code, body)
	}
	want := func(healthy bool) func() error {
		return func() error {
			got, err := hostHealth(n.URL(), svc, "127.0.0.1", port)
			if err != nil {
				return err
			}
			if got != healthy {
				return fmt.Errorf("healthy = %v, want %v", got, healthy)
			}
			return nil
		}
	}
	time.Sleep(time.Second) // several checks of an open port
	testutil.Eventually(t, 5*time.Second, 50*time.Millisecond, want(true))
	l.Close()
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, want(false))
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() (err error) {
		l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		return err
	})
	defer l.Close()
	go accept(l)
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, want(true))

	// The service detail renders the checker; metrics count the checks.
	resp, err := http.Get(n.URL() + "/nacos/v1/ns/service?serviceName=" + url.QueryEscape(svc))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"healthChecker":{"type":"TCP"}`) {
		t.Fatalf("service detail %s", body)
	}
	resp, err = http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`distro_healthcheck_checks_total{type="TCP"}`, `distro_healthcheck_state_changes_total{to="unhealthy"} 1`,
		`distro_healthcheck_state_changes_total{to="healthy"} 1`, "distro_healthcheck_targets 1"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	if out := n.Output(); !strings.Contains(out, "persistent instance is now unhealthy") || !strings.Contains(out, "persistent instance is now healthy") {
		t.Errorf("no state-change log lines:\n%s", out)
	}
}
