package distrotest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/testutil"
)

// Node is one in-memory cluster member.
type Node struct {
	Addr   string
	Store  *store.Store
	Local  *registry.Local
	Engine *distro.Engine
	Health *member.Health

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Options tune a test cluster. Zero fields take test-friendly defaults
// (compressed timings, as in reliability.md §4).
type Options struct {
	Engine func(*distro.Config)
	Member func(*member.Config)
	Health func(*health.Config)
	Log    io.Writer
	Seed   uint64
	// BeforeStart runs on the network before the first node starts.
	BeforeStart func(*Network)
	// ClockOffset shifts a node's version clock (clock-skew tests).
	ClockOffset map[string]time.Duration
	// Attach, if set, is called for every node after its store, registry
	// and engine exist and before it runs, to add components that
	// subscribe to them (such as health checkers). The loop it returns,
	// if any, runs with the node and stops when it stops.
	Attach func(n *Node) func(ctx context.Context)
	// WallOffset shifts every reading of a node's clock.Clock, as a machine
	// whose clock is off would (its monotonic differences are unchanged).
	WallOffset map[string]time.Duration
}

// Cluster is a set of nodes on one Network.
type Cluster struct {
	T       testing.TB
	Net     *Network
	opts    Options
	mu      sync.Mutex
	nodes   map[string]*Node
	members []string
}

// Addr names node i ("10.0.0.i:8848").
func Addr(i int) string { return fmt.Sprintf("10.0.0.%d:8848", i) }

// NewCluster starts n nodes that all list each other as members.
func NewCluster(t testing.TB, n int, opts Options) *Cluster {
	c := &Cluster{T: t, Net: NewNetwork(opts.Seed), opts: opts, nodes: map[string]*Node{}}
	for i := 1; i <= n; i++ {
		c.members = append(c.members, Addr(i))
	}
	if opts.BeforeStart != nil {
		opts.BeforeStart(c.Net)
	}
	for _, a := range c.members {
		c.Start(a)
	}
	t.Cleanup(c.StopAll)
	return c
}

func (c *Cluster) logger(addr string) *slog.Logger {
	w := c.opts.Log
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", addr)
}

// Start starts (or restarts, with empty state) the node at addr.
func (c *Cluster) Start(addr string) *Node {
	log := c.logger(addr)
	var clk clock.Clock = clock.Real{}
	if off := c.opts.WallOffset[addr]; off != 0 {
		clk = clock.Shifted{Offset: off}
	}
	wall := time.Now
	if off := c.opts.ClockOffset[addr]; off != 0 {
		wall = func() time.Time { return time.Now().Add(off) }
	}
	st := store.New(addr, hlc.New(wall))
	hc := health.DefaultConfig()
	if c.opts.Health != nil {
		c.opts.Health(&hc)
	}
	local := registry.NewLocal(st, hc, clk, log)
	ec := distro.DefaultConfig(addr)
	ec.VerifyInterval = 500 * time.Millisecond
	ec.StartupTimeout = 3 * time.Second
	ec.LoadRetry = 200 * time.Millisecond
	ec.TombstoneRetention = time.Minute
	ec.ConnLease = 5 * time.Second
	ec.CallTimeout = time.Second
	ec.ForwardTimeout = 500 * time.Millisecond
	if c.opts.Engine != nil {
		c.opts.Engine(&ec)
	}
	local.SetUnconfirmedLimit(ec.TombstoneRetention)
	eng := distro.New(ec, st, local, c.Net.Transport(addr), clk, log, nil)
	mc := member.DefaultConfig()
	mc.Interval = 200 * time.Millisecond
	mc.Timeout = 100 * time.Millisecond
	if c.opts.Member != nil {
		c.opts.Member(&mc)
	}
	h := member.NewHealth(addr, mc, eng, clk, log)
	c.mu.Lock()
	members := slices.Clone(c.members)
	c.mu.Unlock()
	h.SetMembers(members)
	eng.SetView(ToView(h.View()))
	h.Subscribe(func(v member.View) { eng.SetView(ToView(v)) })

	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{Addr: addr, Store: st, Local: local, Engine: eng, Health: h, cancel: cancel}
	if c.opts.Attach != nil {
		if loop := c.opts.Attach(n); loop != nil {
			n.wg.Go(func() { loop(ctx) })
		}
	}
	c.Net.Attach(addr, eng)
	n.wg.Go(func() { local.Run(ctx) })
	n.wg.Go(func() { eng.Run(ctx) })
	n.wg.Go(func() { h.Run(ctx) })
	n.wg.Go(func() { gcLoop(ctx, st, eng, ec.TombstoneRetention/10) })
	c.mu.Lock()
	if old := c.nodes[addr]; old != nil {
		c.mu.Unlock()
		c.T.Fatalf("node %s already running", addr)
	}
	c.nodes[addr] = n
	c.mu.Unlock()
	return n
}

// gcLoop collects tombstones as the server does, held back for members
// that have not acknowledged them.
func gcLoop(ctx context.Context, st *store.Store, eng *distro.Engine, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st.GCBefore(eng.TombstoneHorizon())
		}
	}
}

// ToView converts a member view into the engine's view.
func ToView(v member.View) *distro.View {
	ms := make([]distro.Member, 0, len(v.Members))
	for _, m := range v.Members {
		ms = append(ms, distro.Member{Addr: m.Address, State: distro.State(m.State)})
	}
	return distro.NewView(v.Self, ms)
}

// Crash stops a node abruptly: it is detached from the network and its
// state is lost.
func (c *Cluster) Crash(addr string) {
	c.mu.Lock()
	n := c.nodes[addr]
	delete(c.nodes, addr)
	c.mu.Unlock()
	if n == nil {
		return
	}
	c.Net.Detach(addr)
	n.cancel()
	n.wg.Wait()
}

// StopAll stops every node.
func (c *Cluster) StopAll() {
	for _, a := range c.Addrs() {
		c.Crash(a)
	}
}

// SetMembers changes the member list on every running node (as an edited
// cluster.conf would); new nodes are started by the caller.
func (c *Cluster) SetMembers(members []string) {
	c.mu.Lock()
	c.members = slices.Clone(members)
	nodes := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		nodes = append(nodes, n)
	}
	c.mu.Unlock()
	for _, n := range nodes {
		n.Health.SetMembers(members)
	}
}

// Node returns the running node at addr, or nil.
func (c *Cluster) Node(addr string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[addr]
}

// Addrs lists the running nodes, sorted.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.nodes))
	for a := range c.nodes {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Key returns a service key in the public namespace and default group.
func Key(name string) model.ServiceKey {
	return model.ServiceKey{Namespace: model.DefaultNamespace, Group: model.DefaultGroup, Name: name}
}

// Instance builds an ephemeral, healthy instance.
func Instance(ip string, port int) model.Instance {
	return model.Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: model.DefaultCluster}
}

// Register registers in on svc through node via (as a client would).
func (c *Cluster) Register(via string, svc string, in model.Instance) error {
	n := c.Node(via)
	if n == nil {
		return fmt.Errorf("node %s is not running", via)
	}
	_, err := n.Engine.Apply(context.Background(), &registry.Op{Kind: registry.OpRegister, Key: Key(svc), Instance: in})
	return err
}

// Deregister removes ip:port from svc through node via.
func (c *Cluster) Deregister(via string, svc string, ip string, port int) error {
	n := c.Node(via)
	if n == nil {
		return fmt.Errorf("node %s is not running", via)
	}
	in := Instance(ip, port)
	_, err := n.Engine.Apply(context.Background(), &registry.Op{Kind: registry.OpDeregister, Key: Key(svc), Instance: in})
	return err
}

// Beat sends a full heartbeat for in through node via.
func (c *Cluster) Beat(via string, svc string, in model.Instance) (registry.Result, error) {
	n := c.Node(via)
	if n == nil {
		return registry.Result{}, fmt.Errorf("node %s is not running", via)
	}
	return n.Engine.Apply(context.Background(), &registry.Op{Kind: registry.OpBeat, Key: Key(svc), Instance: in})
}

// Instances lists "ip:port" of the live instances of svc on node addr.
func (c *Cluster) Instances(addr, svc string) []string {
	n := c.Node(addr)
	if n == nil {
		return nil
	}
	v := n.Store.View(Key(svc))
	if v == nil {
		return nil
	}
	out := make([]string, 0, len(v.Instances))
	for _, in := range v.Instances {
		out = append(out, fmt.Sprintf("%s:%d", in.IP, in.Port))
	}
	sort.Strings(out)
	return out
}

// State summarises a node's visible data: every service with its live
// instances and their versions, one line each, sorted.
func State(st *store.Store) string {
	var lines []string
	for _, k := range st.ServiceKeys("") {
		recs, _ := st.Records(k, nil)
		for _, r := range recs {
			if r.Alive() {
				lines = append(lines, fmt.Sprintf("%s %s %s/%s/%s", k, r.Key(), r.Stamp, r.Origin, r.Kind))
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// FullState is State plus tombstones and service settings: everything a
// node holds, for tests asserting that a rejected message changed nothing.
func FullState(st *store.Store) string {
	var lines []string
	st.RangeKeys(func(k model.ServiceKey, d uint64) bool {
		recs, meta := st.Records(k, nil)
		for _, r := range recs {
			lines = append(lines, fmt.Sprintf("%s %s %s/%s/%s", k, r.Key(), r.Stamp, r.Origin, r.Kind))
		}
		if meta != nil {
			lines = append(lines, fmt.Sprintf("%s settings %s/%s deleted=%v", k, meta.Stamp, meta.Origin, meta.Deleted))
		}
		lines = append(lines, fmt.Sprintf("%s digest %x", k, d))
		return true
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Converged reports nil when every running node holds the same visible
// data, or an error describing the first difference.
func (c *Cluster) Converged() error {
	addrs := c.Addrs()
	if len(addrs) == 0 {
		return nil
	}
	ref := State(c.Node(addrs[0]).Store)
	for _, a := range addrs[1:] {
		if s := State(c.Node(a).Store); s != ref {
			return fmt.Errorf("%s differs from %s:\n--- %s\n%s\n--- %s\n%s", a, addrs[0], addrs[0], ref, a, s)
		}
	}
	return nil
}

// Eventually polls cond every interval until it returns nil or timeout
// passes (in a synctest bubble, both are fake time).
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() error) {
	t.Helper()
	testutil.Eventually(t, timeout, interval, cond)
}

// WaitReady waits until every running node is ready.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.T.Helper()
	Eventually(c.T, timeout, 50*time.Millisecond, func() error {
		for _, a := range c.Addrs() {
			if ok, msg := c.Node(a).Engine.Ready(); !ok {
				return fmt.Errorf("%s not ready: %s", a, msg)
			}
		}
		return nil
	})
}
