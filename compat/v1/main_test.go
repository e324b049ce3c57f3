package v1

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/clients/nacos_client"
	"github.com/nacos-group/nacos-sdk-go/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/common/constant"
	"github.com/nacos-group/nacos-sdk-go/model"
	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// Timings of the v1 SDK and server that the tests rely on.
const (
	// pushDeadline: a change must reach a subscriber this fast. The SDK
	// polls only every cacheMillis (10 s), so anything quicker is a push.
	pushDeadline = 3 * time.Second
	// pollDeadline: enough for the 10 s poll to deliver a change (used when
	// a test is not about push and should pass without it).
	pollDeadline = 15 * time.Second
	// serverDeadline: the server's own view (raw HTTP) must change this fast.
	serverDeadline = 5 * time.Second
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var (
	nodeOnce  sync.Once
	shared    *harness.Node
	sharedErr error
)

// serverNode returns the distrod node shared by all tests of the package
// (each test uses its own service names). Its output goes to the test log
// if the test fails.
func serverNode(t *testing.T) *harness.Node {
	t.Helper()
	nodeOnce.Do(func() { shared, sharedErr = harness.Launch(harness.Options{Name: "distrod-v1"}) })
	if sharedErr != nil {
		t.Fatalf("start distrod: %v", sharedErr)
	}
	harness.DumpLogsOnFailure(t, shared)
	return shared
}

// client is a v1 SDK naming client plus the record of its HTTP exchanges.
type client struct {
	naming_client.INamingClient
	name string
	wire *wireLog
}

// newClient builds a naming client for n, the way clients.NewNamingClient
// does, except that the SDK's HttpAgent is wrapped to record exchanges.
func newClient(t *testing.T, n *harness.Node, name string) *client {
	t.Helper()
	root, err := harness.TempRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := harness.TempDir("client-" + t.Name() + "-" + name)
	if err != nil {
		t.Fatal(err)
	}
	cc := constant.ClientConfig{
		TimeoutMs:            3000,
		NotLoadCacheAtStart:  true,
		UpdateCacheWhenEmpty: true,
		CacheDir:             filepath.Join(dir, "cache"),
		// The SDK logger is process-global (the last client's settings win),
		// so all clients share one log directory.
		LogDir:   filepath.Join(root, "sdk-log"),
		LogLevel: "debug",
	}
	sc := []constant.ServerConfig{{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: uint64(n.Port())}}
	wire := &wireLog{}
	nc := &nacos_client.NacosClient{}
	if err := nc.SetClientConfig(cc); err != nil {
		t.Fatal(err)
	}
	if err := nc.SetServerConfig(sc); err != nil {
		t.Fatal(err)
	}
	if err := nc.SetHttpAgent(&recordingAgent{log: wire}); err != nil {
		t.Fatal(err)
	}
	nm, err := naming_client.NewNamingClient(nc)
	if err != nil {
		t.Fatalf("NewNamingClient: %v", err)
	}
	c := &client{INamingClient: &nm, name: name, wire: wire}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- SDK client %q: HTTP exchanges (what it sent -> what distrod answered) ---\n%s", name, wire)
		}
	})
	return c
}

// uniq returns a service name unique to this test run.
func uniq(t *testing.T, base string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "v1-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + base + "-" + hex.EncodeToString(b)
}

func grouped(group, svc string) string {
	if group == "" {
		group = constant.DEFAULT_GROUP
	}
	return group + "@@" + svc
}

// inst is a healthy, enabled, ephemeral instance of weight 1.
func inst(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return vo.RegisterInstanceParam{
		ServiceName: svc, Ip: ip, Port: port, ClusterName: cluster,
		Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
	}
}

func mustRegister(t *testing.T, c *client, p vo.RegisterInstanceParam) {
	t.Helper()
	ok, err := c.RegisterInstance(p)
	if err != nil || !ok {
		t.Fatalf("RegisterInstance(%s %s:%d cluster %q) = %v, %v", p.ServiceName, p.Ip, p.Port, p.ClusterName, ok, err)
	}
}

// waitFirstBeat waits until the SDK's first beat for ip:port (sent at once
// after register) has been answered. A test that deregisters right after
// registering must wait for it: a beat arriving after the DELETE would
// re-register the instance (Nacos auto-registers from beat JSON).
func waitFirstBeat(t *testing.T, c *client, ip string, port uint64) {
	t.Helper()
	harness.Eventually(t, serverDeadline, 20*time.Millisecond, func() error {
		if len(c.wire.beats(ip, port)) == 0 {
			return fmt.Errorf("no answered beat for %s:%d yet", ip, port)
		}
		return nil
	})
}

// rawRegister registers an instance over raw HTTP (no beats follow).
func rawRegister(t *testing.T, n *harness.Node, svc, group, ip string, port int, extra url.Values) {
	t.Helper()
	p := url.Values{"serviceName": {grouped(group, svc)}, "ip": {ip}, "port": {strconv.Itoa(port)}, "ephemeral": {"true"}}
	for k, v := range extra {
		p[k] = v
	}
	if err := n.HTTP().RegisterInstance(p); err != nil {
		t.Fatalf("raw register %s:%d: %v", ip, port, err)
	}
}

// serverList is the server's own view (raw GET instance/list, no cache).
func serverList(t *testing.T, n *harness.Node, groupedName, clusters string) *harness.V1Service {
	t.Helper()
	s, err := n.HTTP().ListInstances(groupedName, clusters, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addrs lists ip:port of instances, sorted.
func addrs(ins []model.Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, fmt.Sprintf("%s:%d", in.Ip, in.Port))
	}
	sort.Strings(out)
	return out
}

func subAddrs(ins []model.SubscribeService) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, fmt.Sprintf("%s:%d", in.Ip, in.Port))
	}
	sort.Strings(out)
	return out
}

func rawAddrs(s *harness.V1Service) []string {
	out := make([]string, 0, len(s.Hosts))
	for _, in := range s.Hosts {
		out = append(out, fmt.Sprintf("%s:%d", in.IP, in.Port))
	}
	sort.Strings(out)
	return out
}

func sameSet(got []string, want ...string) bool {
	w := append([]string(nil), want...)
	sort.Strings(w)
	return strings.Join(got, ",") == strings.Join(w, ",")
}

// event is one call of a subscribe callback.
type event struct {
	at    time.Time
	hosts []model.SubscribeService
	err   error
}

// subscriber collects subscribe callbacks. The callback never blocks (the
// SDK calls it from its push and poll goroutines, also after the test).
type subscriber struct {
	ch chan event
}

func newSubscriber() *subscriber { return &subscriber{ch: make(chan event, 256)} }

func (s *subscriber) callback(services []model.SubscribeService, err error) {
	select {
	case s.ch <- event{at: time.Now(), hosts: append([]model.SubscribeService(nil), services...), err: err}:
	default:
	}
}

// waitFor returns the first event (in order) matching ok within timeout;
// the other events seen meanwhile are returned for diagnostics.
func (s *subscriber) waitFor(timeout time.Duration, ok func(event) bool) (event, []event, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []event
	for {
		select {
		case ev := <-s.ch:
			if ok(ev) {
				return ev, seen, true
			}
			seen = append(seen, ev)
		case <-deadline.C:
			return event{}, seen, false
		}
	}
}

func describe(evs []event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%s hosts=%v err=%v", e.at.Format("15:04:05.000"), subAddrs(e.hosts), e.err))
	}
	if len(parts) == 0 {
		return "(no callbacks)"
	}
	return strings.Join(parts, "; ")
}

// expectPush waits for the callback showing want (ip:port set; none means
// "empty list", which the SDK reports as an error) after a change made at
// changedAt. It fails if the change arrives later than pushDeadline (that
// is the 10 s poll, not a push) or not within pollDeadline.
func expectPush(t *testing.T, s *subscriber, what string, changedAt time.Time, want ...string) {
	t.Helper()
	ev, seen, ok := s.waitFor(pollDeadline, func(e event) bool {
		if len(want) == 0 {
			return e.err != nil && len(e.hosts) == 0
		}
		return e.err == nil && sameSet(subAddrs(e.hosts), want...)
	})
	if !ok {
		t.Fatalf("%s: no subscribe callback with hosts %v within %v (neither UDP push nor the %v poll delivered it); callbacks seen: %s",
			what, want, pollDeadline, 10*time.Second, describe(seen))
	}
	latency := ev.at.Sub(changedAt)
	t.Logf("%s: subscriber notified %v after the change (callbacks before it: %s)", what, latency.Round(time.Millisecond), describe(seen))
	if latency > pushDeadline {
		t.Errorf("%s: callback came %v after the change, later than %v: it came from the SDK's 10 s poll, so no UDP push reached the client",
			what, latency.Round(time.Millisecond), pushDeadline)
	}
}
