package v2

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

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
var clusterArgs = harness.FastClusterArgs("--conn-lease", connLease.String())

// topo is where a test's clients connect: clients that register connect to
// writer, subscribers to reader, and the server-side checks read every node
// of all. On one node they are the same node; in the cluster they differ,
// so every push a subscriber gets crossed the cluster.
type topo struct {
	name           string
	writer, reader *harness.Node
	all            []*harness.Node
}

// single is the node of the single topology, shared by the tests.
var single = &harness.SharedNode{Options: harness.Options{Name: "v2-single"}}

var (
	clusterOnce sync.Once
	shared      *harness.Cluster
	sharedErr   error
)

func singleTopo(t *testing.T) topo {
	t.Helper()
	n := single.Get(t)
	return topo{name: "single", writer: n, reader: n, all: []*harness.Node{n}}
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
		n := harness.StartNode(t, harness.Options{Name: "own-" + harness.Slug(t.Name())})
		fn(t, topo{name: "single", writer: n, reader: n, all: []*harness.Node{n}})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		begin(t)
		c := harness.StartCluster(t, 3, harness.Options{Name: "own-" + harness.Slug(t.Name()), Args: clusterArgs})
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

// uniq returns a service name unique to this run.
func uniq(t *testing.T, base string) string {
	s := harness.UniqueName("v2", harness.Slug(t.Name()), base)
	addToken(t, s)
	return s
}

// newClient creates a v2 naming client that knows only the given nodes (one
// node pins it there), with a unique label that selects its SDK log lines.
// It is closed at the end of the test.
func newClient(t *testing.T, name string, nodes ...*harness.Node) *harness.V2Client {
	t.Helper()
	label := harness.UniqueName(harness.Slug(t.Name()), name)
	addToken(t, label)
	return harness.NewV2Client(t, label, nodes...)
}

// inst is a healthy, enabled, ephemeral (gRPC) instance of weight 1.
func inst(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return harness.V2RegisterParam(svc, ip, port, cluster)
}

// pkey is how lists show a registered instance: ip:port#cluster.
func pkey(p vo.RegisterInstanceParam) string { return harness.V2ParamKey(p) }

// keys lists ip:port#cluster of instances, sorted.
func keys(ins []model.Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, harness.V2HostKey(in))
	}
	sort.Strings(out)
	return out
}

// serverView checks that every node lists exactly want (ip:port#cluster) for
// the service, none twice (raw GET instance/list: no client cache).
func serverView(nodes []*harness.Node, svc string, want ...string) error {
	var errs []error
	for _, n := range nodes {
		s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		if d := s.Duplicates(); len(d) > 0 {
			errs = append(errs, fmt.Errorf("%s lists %v more than once: %v", n.Name, d, s.Keys()))
		} else if !harness.SameSet(s.Keys(), want) {
			errs = append(errs, fmt.Errorf("%s lists %v, want %v", n.Name, s.Keys(), harness.Sorted(want)))
		}
	}
	return errors.Join(errs...)
}

// eventuallyListed waits until every node lists exactly want.
func eventuallyListed(t *testing.T, nodes []*harness.Node, svc string, want ...string) {
	t.Helper()
	harness.Eventually(t, serverDeadline, 25*time.Millisecond, func() error { return serverView(nodes, svc, want...) })
}

// newSubscriber collects subscribe callbacks, naming hosts ip:port#cluster.
func newSubscriber() *harness.V2Subscriber { return harness.NewSubscriber(harness.V2HostKey) }

// subscribe subscribes c to svc and waits for the first callback (the
// current list, want).
func subscribe(t *testing.T, c *harness.V2Client, svc string, want ...string) *harness.V2Subscriber {
	t.Helper()
	sub := newSubscriber()
	if err := c.Subscribe(&vo.SubscribeParam{ServiceName: svc, SubscribeCallback: sub.Callback}); err != nil {
		t.Fatalf("Subscribe(%s): %v", svc, err)
	}
	if _, seen, ok := sub.WaitForHosts(pushDeadline, want...); !ok {
		t.Fatalf("Subscribe(%s): no callback with %v; callbacks: %s", svc, harness.Sorted(want), sub.Describe(seen))
	}
	return sub
}

// expectPush waits for the callback listing want after a change made at
// changedAt and returns its latency.
func expectPush(t *testing.T, s *harness.V2Subscriber, what string, changedAt time.Time, want ...string) time.Duration {
	t.Helper()
	ev, seen, ok := s.WaitForHosts(pushDeadline, want...)
	if !ok {
		t.Fatalf("%s: no subscribe callback with %v within %v (the v2 SDK does not poll: no push reached it); callbacks seen: %s",
			what, harness.Sorted(want), pushDeadline, s.Describe(seen))
	}
	lat := ev.At.Sub(changedAt)
	t.Logf("%s: subscriber notified %v after the change", what, lat.Round(100*time.Microsecond))
	return lat
}

// connectedTo returns the node among nodes that holds c's registered gRPC
// connection (found by its label in /distro/admin/connections), waiting
// up to timeout; it fails if the connection is on more than one node.
func connectedTo(t *testing.T, c *harness.V2Client, timeout time.Duration, nodes ...*harness.Node) (*harness.Node, harness.GRPCConn) {
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
				if cn.Labels["app_compat"] == c.Label && cn.Registered {
					at, conn = n, cn
					found = append(found, n.Name+" "+cn.ID)
				}
			}
		}
		switch {
		case len(found) == 0:
			return fmt.Errorf("no node holds a registered connection labelled app_compat=%s", c.Label)
		case len(found) > 1:
			return fmt.Errorf("client %s has registered connections on several nodes: %v", c.Label, found)
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
