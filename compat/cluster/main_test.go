package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// clusterArgs are the timings of the test cluster: fast probes and
// verification, and a short wait for peers at startup.
var clusterArgs = []string{
	"--verify-interval", "500ms",
	"--probe-interval", "200ms",
	"--startup-timeout", "3s",
}

// client is a v1 SDK naming client given several servers, plus the record
// of its HTTP exchanges.
type client struct {
	naming_client.INamingClient
	name string
	wire *wireLog
}

// newClient builds a naming client for the given nodes (the SDK picks a
// random one per request and fails over to the others), the way
// clients.NewNamingClient does, except that the HttpAgent is wrapped to
// record exchanges. They are logged if the test fails.
func newClient(t *testing.T, name string, nodes ...*harness.Node) *client {
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
		LogDir:               filepath.Join(root, "sdk-log"), // the SDK logger is process-global
		LogLevel:             "debug",
	}
	var sc []constant.ServerConfig
	for _, n := range nodes {
		sc = append(sc, constant.ServerConfig{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: uint64(n.Port())})
	}
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
			t.Logf("--- SDK client %q: HTTP exchanges (server the SDK picked, what it sent -> what distrod answered) ---\n%s", name, wire)
		}
	})
	return c
}

// uniq returns a service name unique to this run.
func uniq(base string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "cl-" + base + "-" + hex.EncodeToString(b)
}

func grouped(svc string) string { return constant.DEFAULT_GROUP + "@@" + svc }

// inst is a healthy, enabled, ephemeral instance of weight 1.
func inst(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return vo.RegisterInstanceParam{
		ServiceName: svc, Ip: ip, Port: port, ClusterName: cluster,
		Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
		Metadata: map[string]string{"owner": "compat-cluster"},
	}
}

// key is how the server lists an instance: ip:port#cluster.
func key(p vo.RegisterInstanceParam) string {
	c := p.ClusterName
	if c == "" {
		c = "DEFAULT"
	}
	return fmt.Sprintf("%s:%d#%s", p.Ip, p.Port, c)
}

func mustRegister(t *testing.T, c *client, p vo.RegisterInstanceParam) {
	t.Helper()
	ok, err := c.RegisterInstance(p)
	if err != nil || !ok {
		t.Fatalf("%s: RegisterInstance(%s %s) = %v, %v", c.name, p.ServiceName, key(p), ok, err)
	}
}

// deregister deregisters an instance the client registered, at a moment
// when none of its beats is in flight and the next one is at least 2 s
// away (beats come every 5 s): a beat that reached the server after the
// DELETE would register the instance again, as Nacos does.
func deregister(t *testing.T, c *client, p vo.RegisterInstanceParam) {
	t.Helper()
	k := fmt.Sprintf("%s:%d", p.Ip, p.Port)
	harness.Eventually(t, 12*time.Second, 10*time.Millisecond, func() error {
		answered, inFlight, last := c.wire.beatState(k)
		switch {
		case answered == 0:
			return fmt.Errorf("%s: no answered beat for %s yet", c.name, k)
		case inFlight:
			return fmt.Errorf("%s: a beat for %s is in flight", c.name, k)
		case time.Since(last) > 3*time.Second:
			return fmt.Errorf("%s: next beat for %s is due soon (last at %s)", c.name, k, last.Format("15:04:05.000"))
		}
		return nil
	})
	ok, err := c.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: p.ServiceName, Ip: p.Ip, Port: p.Port, Cluster: p.ClusterName, Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("%s: DeregisterInstance(%s %s) = %v, %v", c.name, p.ServiceName, key(p), ok, err)
	}
}

// listAll GETs instance/list for every service from every node, in
// parallel: result[node index][service].
func listAll(nodes []*harness.Node, services []string) ([]map[string]*harness.V1Service, error) {
	out := make([]map[string]*harness.V1Service, len(nodes))
	errs := make([]error, len(nodes)*len(services))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = map[string]*harness.V1Service{}
		for j, svc := range services {
			wg.Go(func() {
				s, err := n.HTTP().ListInstances(grouped(svc), "", false)
				if err != nil {
					errs[i*len(services)+j] = fmt.Errorf("%s: %w", n.Name, err)
					return
				}
				mu.Lock()
				out[i][svc] = s
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// expected is the set of instance keys that must be listed per service.
type expected map[string]map[string]bool

func (e expected) add(p vo.RegisterInstanceParam) {
	if e[p.ServiceName] == nil {
		e[p.ServiceName] = map[string]bool{}
	}
	e[p.ServiceName][key(p)] = true
}

func (e expected) remove(p vo.RegisterInstanceParam) { delete(e[p.ServiceName], key(p)) }

func (e expected) keys(svc string) []string {
	var out []string
	for k := range e[svc] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// converged checks that every node lists exactly the expected instances of
// every service, all healthy, none twice, and that all nodes answer
// identical host lists.
func converged(nodes []*harness.Node, services []string, want expected) error {
	ls, err := listAll(nodes, services)
	if err != nil {
		return err
	}
	var problems []string
	for _, svc := range services {
		ref := ""
		for i, n := range nodes {
			s := ls[i][svc]
			if d := s.Duplicates(); len(d) > 0 {
				problems = append(problems, fmt.Sprintf("%s lists %v more than once in %s", n.Name, d, svc))
			}
			if got, w := strings.Join(s.Keys(), " "), strings.Join(want.keys(svc), " "); got != w {
				problems = append(problems, fmt.Sprintf("%s lists %s = [%s], want [%s]", n.Name, svc, got, w))
			}
			for _, h := range s.Hosts {
				if !h.Healthy {
					problems = append(problems, fmt.Sprintf("%s lists %s in %s as unhealthy", n.Name, h.Key(), svc))
				}
			}
			if i == 0 {
				ref = s.Canon()
			} else if c := s.Canon(); c != ref {
				problems = append(problems, fmt.Sprintf("%s and %s differ on %s:\n  %s:\n    %s\n  %s:\n    %s",
					nodes[0].Name, n.Name, svc, nodes[0].Name, strings.ReplaceAll(ref, "\n", "\n    "), n.Name, strings.ReplaceAll(c, "\n", "\n    ")))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not converged:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}

// event is one call of a subscribe callback.
type event struct {
	at    time.Time
	hosts []model.SubscribeService
	err   error
}

// subscriber collects subscribe callbacks without ever blocking the SDK.
type subscriber struct{ ch chan event }

func newSubscriber() *subscriber { return &subscriber{ch: make(chan event, 256)} }

func (s *subscriber) callback(services []model.SubscribeService, err error) {
	select {
	case s.ch <- event{at: time.Now(), hosts: append([]model.SubscribeService(nil), services...), err: err}:
	default:
	}
}

func subKeys(ins []model.SubscribeService) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, fmt.Sprintf("%s:%d#%s", in.Ip, in.Port, in.ClusterName))
	}
	sort.Strings(out)
	return out
}

// waitFor returns the first callback whose host list is exactly want.
func (s *subscriber) waitFor(timeout time.Duration, want []string) (event, []event, bool) {
	w := append([]string(nil), want...)
	sort.Strings(w)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []event
	for {
		select {
		case ev := <-s.ch:
			if ev.err == nil && strings.Join(subKeys(ev.hosts), " ") == strings.Join(w, " ") {
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
		parts = append(parts, fmt.Sprintf("%s hosts=%v err=%v", e.at.Format("15:04:05.000"), subKeys(e.hosts), e.err))
	}
	if len(parts) == 0 {
		return "(no callbacks)"
	}
	return strings.Join(parts, "; ")
}
