package harness

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a set of distrod processes on loopback that share one
// cluster.conf file and one cluster secret. Every node is started with
//
//	--cluster-conf <Conf> --cluster-secret <Secret> --advertise 127.0.0.1:<port>
//
// after the base Options.Args. Client auth, on by default in a cluster, is
// turned off with --auth=false before the base Args (these suites test
// Distro; base Args with --auth turn it back on, as auth_test.go does).
// Nodes are stopped (and their output dumped if the test failed) at the
// test's cleanup.
type Cluster struct {
	// Nodes in the order they were started (StartCluster, then AddNode).
	Nodes []*Node
	// Conf is the path of the shared cluster.conf.
	Conf string
	// Secret is the shared cluster secret (64 hex digits: 32 random bytes).
	Secret string

	base Options
	mu   sync.Mutex
}

// FastClusterArgs returns the cluster timings the tests use (fast probes
// and verification, a short wait for peers at startup), followed by extra.
func FastClusterArgs(extra ...string) []string {
	return append([]string{
		"--verify-interval", "500ms",
		"--probe-interval", "200ms",
		"--startup-timeout", "3s",
		"--raft-heartbeat-timeout", "500ms",
		"--raft-election-timeout", "500ms",
	}, extra...)
}

// NewSecret returns 32 random bytes as 64 hex digits (a valid --cluster-secret).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// WriteFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so a watcher never sees a half-written file.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ClusterConfText renders a Nacos cluster.conf listing 127.0.0.1:<port> for
// every port.
func ClusterConfText(ports []int) string {
	var b strings.Builder
	b.WriteString("# written by the compat harness\n")
	for _, p := range ports {
		fmt.Fprintf(&b, "127.0.0.1:%d\n", p)
	}
	return b.String()
}

// StartCluster starts count nodes at once from one cluster.conf that lists
// exactly them. base.Args are passed to every node (e.g. --verify-interval);
// base.Name gets an index suffix. The nodes are stopped at tb's cleanup, and
// their output is logged if tb failed.
func StartCluster(tb testing.TB, count int, base Options) *Cluster {
	tb.Helper()
	c, err := newCluster(tb.Name(), base)
	if err != nil {
		tb.Fatal(err)
	}
	var confErr error
	c.Nodes = StartNodes(tb, count, c.base, c.argsFor(&confErr))
	if confErr != nil {
		tb.Fatalf("write %s: %v", c.Conf, confErr)
	}
	return c
}

// LaunchCluster is StartCluster for a cluster shared by several tests (Main
// stops it at exit; use DumpLogsOnFailure in each test).
func LaunchCluster(name string, count int, base Options) (*Cluster, error) {
	c, err := newCluster(name, base)
	if err != nil {
		return nil, err
	}
	var confErr error
	nodes, err := LaunchNodes(count, c.base, c.argsFor(&confErr))
	if confErr != nil {
		return nil, fmt.Errorf("write %s: %w", c.Conf, confErr)
	}
	if err != nil {
		return nil, err
	}
	c.Nodes = nodes
	return c, nil
}

func newCluster(name string, base Options) (*Cluster, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	dir, err := TempDir("cluster-" + name)
	if err != nil {
		return nil, err
	}
	if base.Name == "" {
		base.Name = "node"
	}
	base.Args = append([]string{"--auth=false"}, base.Args...)
	return &Cluster{Conf: filepath.Join(dir, "cluster.conf"), Secret: secret, base: base}, nil
}

// argsFor writes cluster.conf from the ports (when asked for node 0, before
// any node starts) and returns each node's cluster flags.
func (c *Cluster) argsFor(confErr *error) func(i int, ports []int) []string {
	return func(i int, ports []int) []string {
		if i == 0 {
			*confErr = WriteFileAtomic(c.Conf, []byte(ClusterConfText(ports)))
		}
		return c.nodeArgs(ports[i])
	}
}

func (c *Cluster) nodeArgs(port int) []string {
	return []string{
		"--cluster-conf", c.Conf,
		"--cluster-secret", c.Secret,
		"--advertise", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
	}
}

// Ports are the HTTP ports of all nodes, in order.
func (c *Cluster) Ports() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		ps[i] = n.Port()
	}
	return ps
}

// Running are the nodes whose process is alive.
func (c *Cluster) Running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// AddNode picks a free port, rewrites cluster.conf (temporary file +
// rename) to list every node plus the new one, and starts the new node
// (waiting for its /readyz). The running nodes pick the change up by
// watching the file. The new node is stopped at tb's cleanup.
func (c *Cluster) AddNode(tb testing.TB) *Node {
	tb.Helper()
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	ports := append(c.Ports(), port)
	if err := WriteFileAtomic(c.Conf, []byte(ClusterConfText(ports))); err != nil {
		tb.Fatalf("rewrite %s: %v", c.Conf, err)
	}
	o := c.base
	o.Name = fmt.Sprintf("%s%d", c.base.Name, len(ports)-1)
	o.Port = port
	o.Args = append(append([]string(nil), c.base.Args...), c.nodeArgs(port)...)
	n := StartNode(tb, o)
	c.mu.Lock()
	c.Nodes = append(c.Nodes, n)
	c.mu.Unlock()
	return n
}

// WaitMembers waits until every running node reports, in GET
// /nacos/v1/core/cluster/nodes, exactly the members of cluster.conf, each
// in the state want(node) gives (e.g. UP for running nodes, DOWN for a
// killed one).
func (c *Cluster) WaitMembers(timeout time.Duration, want func(*Node) string) error {
	c.mu.Lock()
	all := append([]*Node(nil), c.Nodes...)
	c.mu.Unlock()
	return Poll(timeout, 100*time.Millisecond, func() error {
		var errs []error
		for _, n := range all {
			if !n.Running() {
				continue
			}
			h, err := n.OperatorHTTP()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
				continue
			}
			ms, err := h.ClusterNodes()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
				continue
			}
			got := map[string]string{}
			for _, m := range ms {
				got[m.Address] = m.State
			}
			for _, p := range all {
				if st, w := got[p.Addr()], want(p); st != w {
					errs = append(errs, fmt.Errorf("%s sees %s (%s) as %q, want %q", n.Name, p.Addr(), p.Name, st, w))
				}
			}
			if len(got) != len(all) {
				errs = append(errs, fmt.Errorf("%s lists %d members %v, want %d", n.Name, len(got), got, len(all)))
			}
		}
		return errors.Join(errs...)
	})
}

// WaitAllUp waits until every running node sees every running node UP and
// every stopped node DOWN.
func (c *Cluster) WaitAllUp(timeout time.Duration) error {
	return c.WaitMembers(timeout, func(n *Node) string {
		if n.Running() {
			return "UP"
		}
		return "DOWN"
	})
}

// ClusterMember is one element of GET /nacos/v1/core/cluster/nodes.
type ClusterMember struct {
	IP      string `json:"ip"`
	Port    int    `json:"port"`
	State   string `json:"state"`
	Address string `json:"address"`
}

// ClusterNodes GETs /v1/core/cluster/nodes (members and their state as
// this node sees them), sorted by address.
func (h *NacosHTTP) ClusterNodes() ([]ClusterMember, error) {
	body, err := h.Do(http.MethodGet, "/v1/core/cluster/nodes", nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Code int             `json:"code"`
		Data []ClusterMember `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("cluster/nodes body %q: %w", body, err)
	}
	sort.Slice(r.Data, func(i, j int) bool { return r.Data[i].Address < r.Data[j].Address })
	return r.Data, nil
}

// Key is the identity of a host in a list: ip:port#cluster.
func (in V1Instance) Key() string {
	return fmt.Sprintf("%s:%d#%s", in.IP, in.Port, in.ClusterName)
}

// Canon is a comparable rendering of the host's replicated fields (what
// must be equal on every node once the cluster has converged).
func (in V1Instance) Canon() string {
	return fmt.Sprintf("%s id=%s w=%g healthy=%v enabled=%v ephemeral=%v svc=%s md={%s}",
		in.Key(), in.InstanceID, in.Weight, in.Healthy, in.Enabled, in.Ephemeral, in.ServiceName, strings.Join(sortedPairs(in.Metadata), ","))
}

// Keys lists Key() of every host, sorted (duplicates kept, so a duplicate
// shows).
func (s *V1Service) Keys() []string {
	out := make([]string, 0, len(s.Hosts))
	for _, in := range s.Hosts {
		out = append(out, in.Key())
	}
	sort.Strings(out)
	return out
}

// Canon renders every host with Canon(), sorted, one per line.
func (s *V1Service) Canon() string {
	out := make([]string, 0, len(s.Hosts))
	for _, in := range s.Hosts {
		out = append(out, in.Canon())
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// Duplicates lists the ip:port#cluster keys that appear more than once.
func (s *V1Service) Duplicates() []string {
	seen := map[string]int{}
	var dup []string
	for _, in := range s.Hosts {
		seen[in.Key()]++
		if seen[in.Key()] == 2 {
			dup = append(dup, in.Key())
		}
	}
	sort.Strings(dup)
	return dup
}
