package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/client"
	"github.com/distro-registry/distro/internal/testutil"
)

func list(t *testing.T, base, svc string, token ...string) ([]string, error) {
	t.Helper()
	u := base + "/nacos/v1/ns/instance/list?serviceName=" + url.QueryEscape("DEFAULT_GROUP@@"+svc)
	if len(token) > 0 {
		u += "&accessToken=" + url.QueryEscape(token[0])
	}
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("list %s: %d %s", svc, resp.StatusCode, b)
	}
	var info struct {
		Hosts []struct {
			IP   string
			Port int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range info.Hosts {
		out = append(out, fmt.Sprintf("%s:%d", h.IP, h.Port))
	}
	slices.Sort(out)
	return out, nil
}

// TestIntegrationStandalone runs the real binary with no arguments but the
// port and exercises the v1 API over HTTP.
func TestIntegrationStandalone(t *testing.T) {
	t.Parallel()
	n := testutil.Start(t, testutil.FreePort(t))
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	form := url.Values{"serviceName": {"DEFAULT_GROUP@@it"}, "ip": {"10.0.0.1"}, "port": {"8080"}, "metadata": {`{"a":"b"}`}}
	resp, err := http.PostForm(n.URL()+"/nacos/v1/ns/instance", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	got, err := list(t, n.URL(), "it")
	if err != nil || !slices.Equal(got, []string{"10.0.0.1:8080"}) {
		t.Fatalf("list = %v, %v", got, err)
	}
	// Bad input gets a 4xx and changes nothing.
	resp, err = http.PostForm(n.URL()+"/nacos/v1/ns/instance", url.Values{"serviceName": {"it"}, "ip": {"10.0.0.2"}, "port": {"0"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("port 0 answered %d", resp.StatusCode)
	}
	big := strings.NewReader("serviceName=x&metadata=" + strings.Repeat("a", 1<<20+1))
	resp, err = http.Post(n.URL()+"/nacos/v1/ns/instance", "application/x-www-form-urlencoded", big)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body answered %d", resp.StatusCode)
	}
	if got, _ := list(t, n.URL(), "it"); !slices.Equal(got, []string{"10.0.0.1:8080"}) {
		t.Fatalf("after bad requests list = %v", got)
	}
	for _, p := range []string{"/healthz", "/metrics", "/nacos/v1/core/cluster/nodes"} {
		resp, err := http.Get(n.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s answered %d", p, resp.StatusCode)
		}
	}
}

// TestIntegrationCluster runs three real processes from one cluster.conf,
// writes through random nodes, kills and restarts a node, adds a fourth by
// editing the file, and checks that every node converges to identical lists.
// Client auth is on (the cluster default): every call carries credentials,
// and a token issued by one node works on every node.
func TestIntegrationCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "cluster.conf")
	ports := []int{testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	writeConf := func(ps ...int) {
		var b strings.Builder
		b.WriteString("# test cluster\n")
		for _, p := range ps {
			b.WriteString(addr(p) + "\n")
		}
		tmp := conf + ".tmp"
		if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	writeConf(ports[:3]...)
	secret := "integration-test-secret-0123456789abcdefXYZ"
	const adminPassword = "cluster-admin-password"
	args := func(p int) []string {
		return []string{"--cluster-conf", conf, "--cluster-secret", secret, "--advertise", addr(p),
			"--verify-interval", "500ms", "--probe-interval", "200ms", "--startup-timeout", "15s",
			"--auth-admin-password", adminPassword}
	}
	var nodes []*testutil.Node
	for _, p := range ports[:3] {
		nodes = append(nodes, testutil.Start(t, p, args(p)...))
	}
	for _, n := range nodes {
		testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, n.Ready)
	}
	servers := []string{addr(ports[0]), addr(ports[1]), addr(ports[2])}
	c, err := client.New(servers, client.WithTimeout(3*time.Second), client.WithCredentials("nacos", adminPassword))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := c.Login(ctx)
	if err != nil || !sess.GlobalAdmin {
		t.Fatalf("login: %+v %v", sess, err)
	}
	tok := sess.AccessToken
	if _, err := list(t, nodes[0].URL(), "svc-0"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a list without credentials: %v", err)
	}
	register := func(i int) {
		t.Helper()
		in := client.Instance{IP: fmt.Sprintf("10.8.0.%d", i), Port: 80, Weight: 1, Healthy: true, Enabled: true,
			Ephemeral: false, ServiceName: fmt.Sprintf("svc-%d", i%4)}
		if err := c.RegisterInstance(ctx, in); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}
	converged := func(want int) func() error {
		return func() error {
			var ref []string
			for i, n := range nodes {
				var all []string
				for s := 0; s < 4; s++ {
					got, err := list(t, n.URL(), fmt.Sprintf("svc-%d", s), tok)
					if err != nil {
						return err
					}
					all = append(all, got...)
				}
				if len(all) != want {
					return fmt.Errorf("%s lists %d instances, want %d", n.Addr(), len(all), want)
				}
				if i == 0 {
					ref = all
				} else if !slices.Equal(all, ref) {
					return fmt.Errorf("%s differs from %s", n.Addr(), nodes[0].Addr())
				}
			}
			return nil
		}
	}
	for i := 1; i <= 40; i++ {
		register(i)
	}
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, converged(40))

	// Crash node 2; writes keep succeeding through the others.
	nodes[1].Kill()
	for i := 41; i <= 60; i++ {
		register(i)
	}
	nodes[1].Restart()
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, nodes[1].Ready)
	testutil.Eventually(t, 15*time.Second, 100*time.Millisecond, converged(60))
	if !strings.Contains(nodes[1].Output(), "snapshot of") {
		t.Fatalf("restarted node did not load a snapshot:\n%s", nodes[1].Output())
	}

	// Add a fourth node by editing cluster.conf: the running nodes pick
	// the change up live.
	writeConf(ports...)
	nodes = append(nodes, testutil.Start(t, ports[3], args(ports[3])...))
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, nodes[3].Ready)
	for i := 61; i <= 80; i++ {
		register(i)
	}
	testutil.Eventually(t, 15*time.Second, 100*time.Millisecond, converged(80))
	for _, n := range nodes[:3] {
		resp, err := http.Get(n.URL() + "/nacos/v1/core/cluster/nodes?accessToken=" + url.QueryEscape(tok))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), addr(ports[3])) {
			t.Fatalf("%s does not list the added member: %s", n.Addr(), b)
		}
	}
}

// TestIntegrationAuth runs a standalone node with --auth: the admin
// password is generated into the data dir (stderr is no terminal) and
// never printed, a read-only user can list but not
// register, tokens expire, users survive a restart, admin endpoints need an
// admin, and no password or token reaches the log.
func TestIntegrationAuth(t *testing.T) {
	t.Parallel()
	n := testutil.Start(t, testutil.FreePort(t), "--auth", "--auth-token-ttl", "2s")
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	adminPW := generatedPassword(t, n, n.DataDir)
	if adminPW == "" {
		t.Fatalf("no generated password in the data dir:\n%s", n.Output())
	}
	ctx := context.Background()
	admin, err := client.New([]string{n.Addr()}, client.WithCredentials("nacos", adminPW))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx); err != nil {
		t.Fatal(err)
	}
	wrong, _ := client.New([]string{n.Addr()}, client.WithCredentials("nacos", "wrong-password"))
	var ae *client.APIError
	if _, err := wrong.Login(ctx); !errors.As(err, &ae) || ae.Status != 403 || ae.Message != "user not found!" {
		t.Fatalf("wrong password: %v", err)
	}
	for _, step := range []func() error{
		func() error { return admin.CreateUser(ctx, "ro", "ro-password") },
		func() error { return admin.AddRole(ctx, "dev-readers", "ro") },
		func() error { return admin.AddPermission(ctx, "dev-readers", "dev:*:*", "r") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	adminDev, _ := client.New([]string{n.Addr()}, client.WithCredentials("nacos", adminPW), client.WithNamespace("dev"))
	in := client.Instance{IP: "10.1.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, ServiceName: "orders"}
	if err := adminDev.RegisterInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	ro, _ := client.New([]string{n.Addr()}, client.WithCredentials("ro", "ro-password"), client.WithNamespace("dev"))
	roSess, err := ro.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := ro.ListInstances(ctx, "orders", "", nil, false); err != nil || len(info.Hosts) != 1 {
		t.Fatalf("read-only list: %+v %v", info, err)
	}
	in.IP = "10.1.0.2"
	if err := ro.RegisterInstance(ctx, in); !errors.As(err, &ae) || ae.Status != 403 || ae.Message != "authorization failed!" {
		t.Fatalf("read-only register: %v", err)
	}
	roPublic, _ := client.New([]string{n.Addr()}, client.WithCredentials("ro", "ro-password"))
	if _, err := roPublic.ListInstances(ctx, "orders", "", nil, false); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("read-only list in another namespace: %v", err)
	}
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, n.URL()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	adminSess, _ := admin.Login(ctx)
	if code := get("/distro/admin/connections", roSess.AccessToken); code != 403 {
		t.Fatalf("admin endpoint with a user token: %d", code)
	}
	if code := get("/distro/admin/connections", adminSess.AccessToken); code != 200 {
		t.Fatalf("admin endpoint with an admin token: %d", code)
	}
	// The token expires (TTL 2 s).
	time.Sleep(2100 * time.Millisecond)
	if _, err := list(t, n.URL(), "orders", roSess.AccessToken); err == nil || !strings.Contains(err.Error(), "token expired!") {
		t.Fatalf("expired token: %v", err)
	}
	// Users are durable; no new password is generated.
	n.Stop()
	n.Restart()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, n.Ready)
	ro2, _ := client.New([]string{n.Addr()}, client.WithCredentials("ro", "ro-password"), client.WithNamespace("dev"))
	if _, err := ro2.ListInstances(ctx, "orders", "", nil, false); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	out := n.Output()
	if c := strings.Count(out, generatedLine); c != 1 || strings.Contains(out, adminPW) {
		t.Fatalf("the admin password was generated %d times, or is in the output", c)
	}
	for _, secret := range []string{"ro-password", roSess.AccessToken, adminSess.AccessToken} {
		if strings.Contains(out, secret) {
			t.Fatalf("the output holds a secret %q", secret)
		}
	}
}

// TestIntegrationMembersDNS starts the real binary with --members-dns on
// "localhost" (resolved from /etc/hosts, so no DNS server is needed): the
// node takes its member list from DNS, finds itself in it and serves.
func TestIntegrationMembersDNS(t *testing.T) {
	t.Parallel()
	p := testutil.FreePort(t)
	self := fmt.Sprintf("127.0.0.1:%d", p)
	n := testutil.Start(t, p, "--members-dns", fmt.Sprintf("localhost:%d", p), "--advertise", self,
		"--insecure-cluster", "--auth=false", "--startup-timeout", "1s", "--members-dns-interval", "200ms")
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, n.Ready)
	out := n.Output()
	if !strings.Contains(out, "lookup=dns") || !strings.Contains(out, self) {
		t.Fatalf("node did not load its members from DNS:\n%s", out)
	}
	resp, err := http.Get(n.URL() + "/nacos/v1/core/cluster/nodes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"address":"`+self+`"`) {
		t.Fatalf("nodes page does not list %s: %s", self, body)
	}
}
