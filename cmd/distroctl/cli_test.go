package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/client"
)

// testNow is the fixed clock of the CLI in tests.
var testNow = time.UnixMilli(1700000060000)

type result struct {
	stdout, stderr string
	code           int
}

// run executes distroctl with args; env is its whole environment. seed
// fixes the server order.
func run(t *testing.T, env map[string]string, seed uint64, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := newCLI(&out, &errOut, func(k string) string { return env[k] })
	c.now = func() time.Time { return testNow }
	c.clientOpts = []client.Option{client.WithRand(rand.New(rand.NewPCG(seed, 1)))}
	code := c.run(context.Background(), args)
	return result{out.String(), errOut.String(), code}
}

// ok runs distroctl and fails the test unless it succeeded.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, nil, 1, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("distroctl %s: code %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func TestInstanceRegisterListDeregister(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	srv := "--server=" + s.addr()

	out := ok(t, srv, "instance", "register", "--service", "orders", "--ip", "10.0.0.7", "--port", "8080",
		"--metadata", "version=1.4,zone=a")
	if want := "registered 10.0.0.7:8080 in DEFAULT_GROUP@@orders (cluster DEFAULT, ephemeral=true)\n"; out != want {
		t.Errorf("register output %q, want %q", out, want)
	}
	ok(t, srv, "instance", "register", "--service", "orders", "--ip", "10.0.0.10", "--port", "80",
		"--cluster", "b", "--weight", "2.5", "--ephemeral=false", "--healthy=false")
	if ua, _ := s.ua.Load().(string); ua != "distroctl/dev" {
		t.Errorf("User-Agent = %q", ua)
	}

	out = ok(t, srv, "instance", "list", "--service", "orders")
	want := `INSTANCE ID                                  IP         PORT  CLUSTER  WEIGHT  HEALTHY  ENABLED  EPHEMERAL  METADATA
10.0.0.7#8080#DEFAULT#DEFAULT_GROUP@@orders  10.0.0.7   8080  DEFAULT  1       true     true     true       version=1.4,zone=a
10.0.0.10#80#b#DEFAULT_GROUP@@orders         10.0.0.10  80    b        2.5     false    true     false      -
`
	if out != want {
		t.Errorf("list table:\n%s\nwant:\n%s", out, want)
	}

	out = ok(t, srv, "--json", "instance", "list", "--service", "orders", "--clusters", "DEFAULT")
	var info client.ServiceInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if info.Name != "DEFAULT_GROUP@@orders" || info.Clusters != "DEFAULT" || len(info.Hosts) != 1 ||
		!reflect.DeepEqual(info.Hosts[0].Metadata, map[string]string{"version": "1.4", "zone": "a"}) {
		t.Errorf("--json list = %+v", info)
	}

	out = ok(t, srv, "instance", "deregister", "--service", "orders", "--ip", "10.0.0.7", "--port", "8080")
	if want := "deregistered 10.0.0.7:8080 from DEFAULT_GROUP@@orders (cluster DEFAULT)\n"; out != want {
		t.Errorf("deregister output %q", out)
	}
	out = ok(t, srv, "instance", "list", "--service", "orders", "--healthy-only")
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "INSTANCE ID") {
		t.Errorf("after deregister, healthy-only list = %q, want header only", out)
	}
}

func TestRegisterJSONAndGroup(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	out := ok(t, "--server", s.addr(), "--json", "instance", "register", "--service", "pay", "--group", "G",
		"--ip", "10.0.0.1", "--port", "1")
	var inst client.Instance
	if err := json.Unmarshal([]byte(out), &inst); err != nil {
		t.Fatal(err)
	}
	if inst.ServiceName != "G@@pay" || !inst.Enabled || !inst.Healthy || !inst.Ephemeral || inst.Weight != 1 {
		t.Errorf("inst = %+v", inst)
	}
	if len(reg.services["G@@pay"]) != 1 {
		t.Errorf("registry = %v", reg.services)
	}
}

// The server's 4xx text reaches the user as one line, exit status 1.
func TestServerErrorMessage(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	r := run(t, nil, 1, "--server", s.addr(), "instance", "register", "--service", "orders",
		"--ip", "10.0.0.7", "--port", "8080", "--weight", "20000")
	if r.code != 1 || r.stdout != "" {
		t.Errorf("code %d stdout %q", r.code, r.stdout)
	}
	if want := "distroctl: 400 from " + s.addr() + ": weight 20000 is out of range 0-10000\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"instance", "list"}, `distroctl: required flag(s) "service" not set` + "\n"},
		{[]string{"instance", "list", "--service", "x", "--bogus"}, "distroctl: unknown flag: --bogus (see 'distroctl instance list --help')\n"},
		{[]string{"--server", "nohost", "instance", "list", "--service", "x"}, "--server: server \"nohost\""},
		{[]string{"service", "list", "--page", "0"}, "distroctl: --page and --page-size must be at least 1\n"},
	} {
		r := run(t, nil, 1, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: code %d stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// Every command fails over between the --server entries: a dead one and a
// 503 one are skipped, whichever order the seed picks.
func TestFailoverAcrossServers(t *testing.T) {
	reg := newRegistry()
	good := reg.start(t)
	busy := reg.start(t)
	busy.answer.Store(http.StatusServiceUnavailable)
	dead := deadAddr(t)
	servers := dead + "," + busy.addr() + "," + good.addr()

	for seed := range uint64(6) {
		r := run(t, nil, seed, "--server", servers, "instance", "register", "--service", "s", "--ip", "10.0.0.1", "--port", "1")
		if r.code != 0 {
			t.Fatalf("seed %d: register: %q", seed, r.stderr)
		}
		r = run(t, nil, seed, "--server", servers, "instance", "list", "--service", "s")
		if r.code != 0 || !strings.Contains(r.stdout, "10.0.0.1#1#DEFAULT#DEFAULT_GROUP@@s") {
			t.Fatalf("seed %d: list: code %d %q %q", seed, r.code, r.stdout, r.stderr)
		}
	}
	if good.hits.Load() != 12 {
		t.Errorf("good server hits = %d, want 12", good.hits.Load())
	}
	if busy.hits.Load() == 0 {
		t.Error("the 503 server was never tried first; the seeds prove nothing")
	}

	// The same through DISTRO_SERVER, as repeated flags, and for members.
	reg.nodes = `{"code":200,"data":[]}`
	r := run(t, map[string]string{"DISTRO_SERVER": servers}, 3, "members")
	if r.code != 0 || r.stdout != "ADDRESS  STATE  LAST CONTACT  FAILS\n" {
		t.Errorf("members via env: %+v", r)
	}
	r = run(t, nil, 4, "--server", dead, "--server", good.addr(), "service", "list")
	if r.code != 0 {
		t.Errorf("repeated --server: %+v", r)
	}

	// With no server answering, the error names each of them.
	r = run(t, nil, 1, "--server", dead+","+busy.addr(), "instance", "list", "--service", "s")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "distroctl: all 2 servers failed: ") ||
		!strings.Contains(r.stderr, dead+": connect: connection refused") ||
		!strings.Contains(r.stderr, "503 from "+busy.addr()+": fake failure") {
		t.Errorf("all down: %+v", r)
	}
}

func TestServerFlagBeatsEnv(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	env := map[string]string{"DISTRO_SERVER": deadAddr(t)}
	if r := run(t, env, 1, "--server", s.addr(), "service", "list"); r.code != 0 {
		t.Errorf("--server did not override DISTRO_SERVER: %+v", r)
	}
	if r := run(t, env, 1, "service", "list"); r.code != 1 {
		t.Errorf("DISTRO_SERVER not used: %+v", r)
	}
}

func TestNamespaceAndTimeoutFlags(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	ok(t, "--server", s.addr(), "--namespace", "dev", "--timeout", "1s", "service", "list")
	if reg.lastNS != "dev" {
		t.Errorf("namespaceId = %q", reg.lastNS)
	}
}

func TestServiceList(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	for _, svc := range []string{"orders", "billing", "users"} {
		ok(t, "--server", s.addr(), "instance", "register", "--service", svc, "--ip", "10.0.0.1", "--port", "1")
	}
	ok(t, "--server", s.addr(), "instance", "register", "--service", "other", "--group", "G", "--ip", "10.0.0.1", "--port", "1")

	out := ok(t, "--server", s.addr(), "service", "list", "--page-size", "2")
	want := "SERVICE\nbilling\norders\n\n3 services in group DEFAULT_GROUP (page 1 of 2)\n"
	if out != want {
		t.Errorf("service list:\n%q\nwant\n%q", out, want)
	}
	out = ok(t, "--server", s.addr(), "--json", "service", "list", "--page", "2", "--page-size", "2")
	var list client.ServiceList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if list.Count != 3 || !reflect.DeepEqual(list.Doms, []string{"users"}) {
		t.Errorf("--json = %+v", list)
	}
	out = ok(t, "--server", s.addr(), "--json", "service", "list", "--group", "nope")
	if !strings.Contains(out, `"doms": []`) {
		t.Errorf("empty group --json = %s", out)
	}
}

func TestStatus(t *testing.T) {
	reg := newRegistry()
	up := reg.start(t)
	starting := reg.start(t)
	starting.notReady.Store(true)
	starting.metrics = `{"status":"STARTING"}`
	broken := reg.start(t)
	broken.answer.Store(http.StatusInternalServerError)
	dead := deadAddr(t)
	ok(t, "--server", up.addr(), "instance", "register", "--service", "s", "--ip", "10.0.0.1", "--port", "1")

	servers := strings.Join([]string{up.addr(), starting.addr(), broken.addr(), dead}, ",")
	r := run(t, nil, 1, "--server", servers, "status")
	if r.code != 1 || r.stderr != "distroctl: 2 of 4 servers unreachable or failing\n" {
		t.Errorf("code %d stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("status table:\n%s", r.stdout)
	}
	for i, want := range [][]string{
		{"SERVER", "STATUS", "READY", "SERVICES", "INSTANCES", "SUBSCRIBERS"},
		{up.addr(), "UP", "yes", "1", "1", "0"},
		{starting.addr(), "STARTING", "no", "-", "-", "-"},
		{broken.addr(), "error: 500 fake failure", "no", "-", "-", "-"},
		{dead, "unreachable: connect: connection refused", "-", "-", "-", "-"},
	} {
		if got := cells(lines[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("row %d = %q, want %q", i, got, want)
		}
	}

	r = run(t, nil, 1, "--server", up.addr()+","+starting.addr(), "--json", "status")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["server"] != up.addr() || rows[0]["ready"] != true ||
		rows[1]["ready"] != false || rows[1]["readyError"] != "503 loading snapshot from peers" {
		t.Errorf("--json status = %v", rows)
	}
	if m, _ := rows[0]["metrics"].(map[string]any); m["instanceCount"] != 1.0 {
		t.Errorf("metrics = %v", rows[0]["metrics"])
	}
}

// cells splits a table line on runs of two or more spaces.
func cells(line string) []string {
	var out []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

func TestMembers(t *testing.T) {
	reg := newRegistry()
	s := reg.start(t)
	reg.nodes = `{"code":200,"message":null,"data":[
		{"ip":"10.0.0.2","port":8848,"state":"SUSPICIOUS","address":"10.0.0.2:8848","extendInfo":{"lastRefreshTime":1699999995000},"failAccessCnt":2},
		{"ip":"10.0.0.1","port":8848,"state":"UP","address":"10.0.0.1:8848","extendInfo":{"lastRefreshTime":1700000058800,"version":"0.1"},"failAccessCnt":0},
		{"ip":"10.0.0.3","port":8848,"state":"DOWN","extendInfo":{},"failAccessCnt":7}]}`
	out := ok(t, "--server", s.addr(), "members")
	want := `ADDRESS        STATE       LAST CONTACT  FAILS
10.0.0.1:8848  UP          1.2s ago      0
10.0.0.2:8848  SUSPICIOUS  1m5s ago      2
10.0.0.3:8848  DOWN        -             7
`
	if out != want {
		t.Errorf("members:\n%s\nwant:\n%s", out, want)
	}
	out = ok(t, "--server", s.addr(), "--json", "members")
	var nodes []client.Node
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[0].Address != "10.0.0.2:8848" || nodes[0].FailAccessCnt != 2 {
		t.Errorf("--json members = %+v", nodes)
	}
	if !strings.Contains(out, `"lastRefreshTime": 1699999995000`) {
		t.Errorf("lastRefreshTime not kept exact in --json:\n%s", out)
	}
}

func TestAgo(t *testing.T) {
	now := time.Unix(1000000, 0)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{1200 * time.Millisecond, "1.2s ago"},
		{0, "0.0s ago"},
		{-time.Second, "just now"},
		{65 * time.Second, "1m5s ago"},
		{2*time.Hour + 5*time.Minute, "2h5m ago"},
		{72 * time.Hour, "3d ago"},
	} {
		if got := ago(now, now.Add(-tc.d)); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := ago(now, time.Time{}); got != "-" {
		t.Errorf("zero time = %q", got)
	}
}

func TestVersion(t *testing.T) {
	out := ok(t, "version")
	if !strings.HasPrefix(out, "distroctl dev (go") {
		t.Errorf("version = %q", out)
	}
	out = ok(t, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["version"] != "dev" {
		t.Errorf("version --json = %q (%v)", out, err)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"instance"}, {"instance", "register", "--help"}} {
		if r := run(t, nil, 1, args...); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: %+v", args, r)
		}
	}
}
