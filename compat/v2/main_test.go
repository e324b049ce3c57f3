package v2

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/distro-registry/distro/compat/harness"
)

func TestMain(m *testing.M) {
	installSDKLogger()
	os.Exit(harness.Main(m))
}

const (
	// pushDeadline: a change must reach a subscriber this fast. The v2 SDK
	// does not poll (AsyncUpdateService is off), so only a push delivers.
	pushDeadline = 3 * time.Second
	// serverDeadline: every node's own view must show a change this fast.
	serverDeadline = 5 * time.Second
	// connLease is --conn-lease of the test clusters: peers drop instances
	// held by a node that has been unreachable this long.
	connLease = 5 * time.Second
)

// clusterArgs are the timings of the test clusters.
var clusterArgs = []string{
	"--verify-interval", "500ms",
	"--probe-interval", "200ms",
	"--startup-timeout", "3s",
	"--conn-lease", connLease.String(),
}

// topo is where a test's clients connect: clients that register connect to
// writer, subscribers to reader, and the server-side checks read every node
// of all. On one node they are the same node; in the cluster they differ,
// so every push a subscriber gets crossed the cluster.
type topo struct {
	name           string
	writer, reader *harness.Node
	all            []*harness.Node
}

var (
	singleOnce sync.Once
	singleNode *harness.Node
	singleErr  error

	clusterOnce sync.Once
	shared      *harness.Cluster
	sharedErr   error
)

func singleTopo(t *testing.T) topo {
	t.Helper()
	singleOnce.Do(func() { singleNode, singleErr = harness.Launch(harness.Options{Name: "v2-single"}) })
	if singleErr != nil {
		t.Fatalf("start distrod: %v", singleErr)
	}
	harness.DumpLogsOnFailure(t, singleNode)
	return topo{name: "single", writer: singleNode, reader: singleNode, all: []*harness.Node{singleNode}}
}

func clusterTopo(t *testing.T) topo {
	t.Helper()
	clusterOnce.Do(func() {
		shared, sharedErr = harness.LaunchCluster("v2-shared", 3, harness.Options{Name: "v2c", Args: clusterArgs})
		if sharedErr == nil {
			sharedErr = shared.WaitAllUp(10 * time.Second)
		}
	})
	if sharedErr != nil {
		t.Fatalf("start cluster: %v", sharedErr)
	}
	harness.DumpLogsOnFailure(t, shared.Nodes...)
	return topo{name: "cluster", writer: shared.Nodes[0], reader: shared.Nodes[1], all: shared.Nodes}
}

// eachTopology runs fn on one node and on the shared three-node cluster,
// in parallel with each other and with the other parallel tests.
func eachTopology(t *testing.T, fn func(t *testing.T, tp topo)) {
	t.Parallel()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		begin(t)
		fn(t, singleTopo(t))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		begin(t)
		fn(t, clusterTopo(t))
	})
}

// eachOwnTopology is eachTopology on nodes of the test's own (one node, and
// a three-node cluster), for tests whose load would disturb other tests.
func eachOwnTopology(t *testing.T, fn func(t *testing.T, tp topo)) {
	t.Parallel()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		begin(t)
		n := harness.StartNode(t, harness.Options{Name: "own-" + slug(t.Name())})
		fn(t, topo{name: "single", writer: n, reader: n, all: []*harness.Node{n}})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		begin(t)
		c := harness.StartCluster(t, 3, harness.Options{Name: "own-" + slug(t.Name()), Args: clusterArgs})
		if err := c.WaitAllUp(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		fn(t, topo{name: "cluster", writer: c.Nodes[0], reader: c.Nodes[1], all: c.Nodes})
	})
}

// eachTopologySerial runs fn on one node, then on the shared cluster, not
// in parallel with anything else in this package (a sequential top-level
// test runs before the parallel ones resume): for measurements.
func eachTopologySerial(t *testing.T, fn func(t *testing.T, tp topo)) {
	t.Run("single", func(t *testing.T) {
		begin(t)
		fn(t, singleTopo(t))
	})
	t.Run("cluster", func(t *testing.T) {
		begin(t)
		fn(t, clusterTopo(t))
	})
}

// Per-test tokens (service names, client labels) select the SDK log lines
// printed when the test fails.
var (
	tokMu  sync.Mutex
	tokens = map[*testing.T][]string{}
)

func addToken(t *testing.T, tok string) {
	tokMu.Lock()
	defer tokMu.Unlock()
	tokens[t] = append(tokens[t], tok)
}

// begin prepares evidence for a failure of t: the SDK log lines about its
// services and clients.
func begin(t *testing.T) {
	dumpSDKLogOnFailure(t, func() []string {
		tokMu.Lock()
		defer tokMu.Unlock()
		return append([]string(nil), tokens[t]...)
	})
}

func randHex() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func slug(s string) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(s))
}

// uniq returns a service name unique to this run.
func uniq(t *testing.T, base string) string {
	s := "v2-" + slug(t.Name()) + "-" + base + "-" + randHex()
	addToken(t, s)
	return s
}

// client is a nacos-sdk-go v2 naming client.
type client struct {
	naming_client.INamingClient
	// label is the client's unique AppConnLabels value "compat"; distrod's
	// /distro/admin/connections shows it as labels["app_compat"].
	label string
}

// newClient creates a v2 naming client that knows only the given nodes (one
// node pins it there). It is closed at the end of the test.
func newClient(t *testing.T, name string, nodes ...*harness.Node) *client {
	t.Helper()
	label := slug(t.Name()) + "-" + name + "-" + randHex()
	addToken(t, label)
	dir, err := harness.TempDir("v2-client-" + label)
	if err != nil {
		t.Fatal(err)
	}
	cc := constant.ClientConfig{
		TimeoutMs:            3000,
		NotLoadCacheAtStart:  true,
		UpdateCacheWhenEmpty: true,
		CacheDir:             filepath.Join(dir, "cache"),
		LogDir:               filepath.Join(dir, "log"),
		LogLevel:             "debug",
		AppConnLabels:        map[string]string{"compat": label},
	}
	var sc []constant.ServerConfig
	for _, n := range nodes {
		sc = append(sc, constant.ServerConfig{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: uint64(n.Port())})
	}
	nc, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: sc})
	if err != nil {
		t.Fatalf("NewNamingClient(%s): %v", name, err)
	}
	c := &client{INamingClient: nc, label: label}
	t.Cleanup(nc.CloseClient)
	return c
}

// inst is a healthy, enabled, ephemeral (gRPC) instance of weight 1.
func inst(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return vo.RegisterInstanceParam{
		ServiceName: svc, Ip: ip, Port: port, ClusterName: cluster,
		Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
	}
}

// key is how lists show an instance: ip:port#cluster.
func key(ip string, port uint64, cluster string) string {
	if cluster == "" {
		cluster = "DEFAULT"
	}
	return fmt.Sprintf("%s:%d#%s", ip, port, cluster)
}

func pkey(p vo.RegisterInstanceParam) string { return key(p.Ip, p.Port, p.ClusterName) }

func keys(ins []model.Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, key(in.Ip, in.Port, in.ClusterName))
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func same(a, b []string) bool { return strings.Join(sorted(a), " ") == strings.Join(sorted(b), " ") }

func mustRegister(t *testing.T, c *client, p vo.RegisterInstanceParam) {
	t.Helper()
	ok, err := c.RegisterInstance(p)
	if err != nil || !ok {
		t.Fatalf("RegisterInstance(%s %s) = %v, %v", p.ServiceName, pkey(p), ok, err)
	}
}

func mustDeregister(t *testing.T, c *client, p vo.RegisterInstanceParam) {
	t.Helper()
	ok, err := c.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: p.ServiceName, GroupName: p.GroupName, Ip: p.Ip, Port: p.Port, Cluster: p.ClusterName, Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("DeregisterInstance(%s %s) = %v, %v", p.ServiceName, pkey(p), ok, err)
	}
}

func grouped(svc string) string { return constant.DEFAULT_GROUP + "@@" + svc }

// serverView checks that every node lists exactly want (ip:port#cluster) for
// the service, none twice (raw GET instance/list: no client cache).
func serverView(nodes []*harness.Node, svc string, want ...string) error {
	var errs []error
	for _, n := range nodes {
		s, err := n.HTTP().ListInstances(grouped(svc), "", false)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		if d := s.Duplicates(); len(d) > 0 {
			errs = append(errs, fmt.Errorf("%s lists %v more than once: %v", n.Name, d, s.Keys()))
		} else if !same(s.Keys(), want) {
			errs = append(errs, fmt.Errorf("%s lists %v, want %v", n.Name, s.Keys(), sorted(want)))
		}
	}
	return errors.Join(errs...)
}

// eventuallyListed waits until every node lists exactly want.
func eventuallyListed(t *testing.T, nodes []*harness.Node, svc string, want ...string) {
	t.Helper()
	harness.Eventually(t, serverDeadline, 25*time.Millisecond, func() error { return serverView(nodes, svc, want...) })
}

// event is one subscribe callback.
type event struct {
	at    time.Time
	hosts []model.Instance
	err   error
}

// subscriber collects subscribe callbacks without blocking the SDK.
type subscriber struct{ ch chan event }

func newSubscriber() *subscriber { return &subscriber{ch: make(chan event, 1024)} }

func (s *subscriber) callback(services []model.Instance, err error) {
	select {
	case s.ch <- event{at: time.Now(), hosts: append([]model.Instance(nil), services...), err: err}:
	default:
	}
}

// waitFor returns the first callback listing exactly want (none: an empty
// list), with the callbacks seen before it.
func (s *subscriber) waitFor(timeout time.Duration, want ...string) (event, []event, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []event
	for {
		select {
		case ev := <-s.ch:
			if ev.err == nil && same(keys(ev.hosts), want) {
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
		parts = append(parts, fmt.Sprintf("%s hosts=%v err=%v", e.at.Format("15:04:05.000"), keys(e.hosts), e.err))
	}
	if len(parts) == 0 {
		return "(no callbacks)"
	}
	return strings.Join(parts, "; ")
}

// subscribe subscribes c to svc and waits for the first callback (the
// current list, want).
func subscribe(t *testing.T, c *client, svc string, want ...string) *subscriber {
	t.Helper()
	sub := newSubscriber()
	if err := c.Subscribe(&vo.SubscribeParam{ServiceName: svc, SubscribeCallback: sub.callback}); err != nil {
		t.Fatalf("Subscribe(%s): %v", svc, err)
	}
	if _, seen, ok := sub.waitFor(pushDeadline, want...); !ok {
		t.Fatalf("Subscribe(%s): no callback with %v; callbacks: %s", svc, sorted(want), describe(seen))
	}
	return sub
}

// expectPush waits for the callback listing want after a change made at
// changedAt and returns its latency.
func expectPush(t *testing.T, s *subscriber, what string, changedAt time.Time, want ...string) time.Duration {
	t.Helper()
	ev, seen, ok := s.waitFor(pushDeadline, want...)
	if !ok {
		t.Fatalf("%s: no subscribe callback with %v within %v (the v2 SDK does not poll: no push reached it); callbacks seen: %s",
			what, sorted(want), pushDeadline, describe(seen))
	}
	lat := ev.at.Sub(changedAt)
	t.Logf("%s: subscriber notified %v after the change", what, lat.Round(100*time.Microsecond))
	return lat
}

// connectedTo returns the node among nodes that holds c's registered gRPC
// connection (found by its label in /distro/admin/connections), waiting
// up to timeout; it fails if the connection is on more than one node.
func connectedTo(t *testing.T, c *client, timeout time.Duration, nodes ...*harness.Node) (*harness.Node, harness.GRPCConn) {
	t.Helper()
	var at *harness.Node
	var conn harness.GRPCConn
	harness.Eventually(t, timeout, 50*time.Millisecond, func() error {
		at = nil
		var found []string
		for _, n := range nodes {
			if !n.Running() {
				continue
			}
			cs, err := n.GRPCConns()
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			for _, cn := range cs {
				if cn.Labels["app_compat"] == c.label && cn.Registered {
					at, conn = n, cn
					found = append(found, n.Name+" "+cn.ID)
				}
			}
		}
		switch {
		case len(found) == 0:
			return fmt.Errorf("no node holds a registered connection labelled app_compat=%s", c.label)
		case len(found) > 1:
			return fmt.Errorf("client %s has registered connections on several nodes: %v", c.label, found)
		}
		return nil
	})
	return at, conn
}

// percentile of sorted durations (nearest rank).
func percentile(sortedD []time.Duration, p float64) time.Duration {
	if len(sortedD) == 0 {
		return 0
	}
	i := int(float64(len(sortedD))*p+0.999999) - 1
	i = max(0, min(i, len(sortedD)-1))
	return sortedD[i]
}

func v2SelectAll(svc string) vo.SelectAllInstancesParam {
	return vo.SelectAllInstancesParam{ServiceName: svc}
}
