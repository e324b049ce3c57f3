package raftcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/testutil"
)

// tcluster runs Raft nodes in this process over the real authenticated
// Raft transport on loopback; their control calls (the cluster channel in
// distrod) are routed in memory. A member identity is 127.0.0.1:port with
// the Raft port equal to it (offset 0).
type tcluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*tnode
	list  []string
}

type tnode struct {
	self string
	dir  string
	st   *store.Store
	n    *Node
	stop func()
}

var testSecret = []byte("raftcp-cluster-test-secret-0123456789abcdef")

func newTCluster(t *testing.T) *tcluster {
	return &tcluster{t: t, nodes: map[string]*tnode{}}
}

// freeMember returns a member identity whose port is free now.
func freeMember(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// caller routes a node's control calls to the addressed member's node.
type caller struct {
	c    *tcluster
	from string
}

func (cl caller) Call(ctx context.Context, peer string, req *clusterpb.Request) (*clusterpb.Response, error) {
	cl.c.mu.Lock()
	nd := cl.c.nodes[peer]
	cl.c.mu.Unlock()
	if nd == nil {
		return nil, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	}
	resp, ok := nd.n.HandleCall(ctx, cl.from, req)
	if !ok {
		return nil, fmt.Errorf("not a raft call")
	}
	return resp, nil
}

// setMembers installs the member list on every running node.
func (c *tcluster) setMembers(list []string) {
	c.mu.Lock()
	c.list = slices.Clone(list)
	var ns []*tnode
	for _, nd := range c.nodes {
		ns = append(ns, nd)
	}
	c.mu.Unlock()
	for _, nd := range ns {
		nd.n.SetMembers(list)
	}
}

// start runs a node for member self on data dir dir (a new one if "").
func (c *tcluster) start(self, dir string, mod func(*Config)) *tnode {
	c.t.Helper()
	if dir == "" {
		dir = c.t.TempDir()
	}
	st := store.New(self, hlc.New(nil))
	cfg := DefaultConfig(self, dir)
	cfg.Bind, cfg.PortOffset, cfg.Secret = "127.0.0.1", 0, testSecret
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 200*time.Millisecond, 200*time.Millisecond
	cfg.WriteTimeout, cfg.StartupGrace = 5*time.Second, time.Minute
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("RAFTCP_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", self)
	}
	c.mu.Lock()
	cfg.Members = slices.Clone(c.list)
	c.mu.Unlock()
	if mod != nil {
		mod(&cfg)
	}
	// Calls to a node fail as refused until it has opened (as its cluster
	// listener would).
	n, err := Open(cfg, st, caller{c: c, from: self})
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &tnode{self: self, dir: dir, st: st, n: n}
	c.mu.Lock()
	c.nodes[self] = nd
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	var once sync.Once
	nd.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			c.mu.Lock()
			delete(c.nodes, self)
			c.mu.Unlock()
		})
	}
	c.t.Cleanup(nd.stop)
	return nd
}

// startTCluster starts n nodes on new data dirs, members of one list.
func startTCluster(t *testing.T, n int, mod func(*Config)) (*tcluster, []string, []*tnode) {
	t.Helper()
	c := newTCluster(t)
	var list []string
	for range n {
		list = append(list, freeMember(t))
	}
	slices.Sort(list)
	c.setMembers(list)
	var nodes []*tnode
	for _, m := range list {
		nodes = append(nodes, c.start(m, "", mod))
	}
	return c, list, nodes
}

func (c *tcluster) running() []*tnode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tnode
	for _, m := range c.list {
		if nd := c.nodes[m]; nd != nil {
			out = append(out, nd)
		}
	}
	return out
}

// leader waits for one running node to lead and every running node to
// know it.
func (c *tcluster) leader(d time.Duration) *tnode {
	c.t.Helper()
	var l *tnode
	testutil.Eventually(c.t, d, 20*time.Millisecond, func() error {
		l = nil
		for _, nd := range c.running() {
			if nd.n.IsLeader() {
				l = nd
			}
		}
		if l == nil {
			return fmt.Errorf("no leader")
		}
		for _, nd := range c.running() {
			if nd.n.Leader() != l.self {
				return fmt.Errorf("%s knows leader %q, not %s", nd.self, nd.n.Leader(), l.self)
			}
		}
		return nil
	})
	return l
}

var tsvc = model.ServiceKey{Namespace: "public", Group: "G", Name: "moved"}

func register(t *testing.T, n *Node, port int) {
	t.Helper()
	in := model.Instance{IP: "10.1.0.1", Port: port, Weight: 1, Healthy: true, Enabled: true, Cluster: "DEFAULT"}
	cmd, err := EncodeOp(&registry.Op{Kind: registry.OpRegister, Key: tsvc, Instance: in})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Propose(ctx, cmd); err != nil {
		t.Fatalf("write %d through %s: %v", port, n.cfg.Self, err)
	}
}

// instances returns the ports of tsvc's persistent instances on a node.
func instances(nd *tnode) map[int]bool {
	out := map[int]bool{}
	if v := nd.st.View(tsvc); v != nil {
		for _, in := range v.Instances {
			out[in.Port] = true
		}
	}
	return out
}

// settled checks that every running node holds want and lists the
// members' current addresses in its configuration.
func (c *tcluster) settled(want map[int]bool) func() error {
	return func() error {
		for _, nd := range c.running() {
			got := instances(nd)
			for p := range want {
				if !got[p] {
					return fmt.Errorf("%s lacks port %d (has %d)", nd.self, p, len(got))
				}
			}
			cfg, _, err := nd.n.configuration()
			if err != nil {
				return err
			}
			var addrs []string
			for _, s := range cfg.Servers {
				addrs = append(addrs, string(s.Address))
			}
			slices.Sort(addrs)
			c.mu.Lock()
			list := slices.Clone(c.list)
			c.mu.Unlock()
			if !slices.Equal(addrs, list) {
				return fmt.Errorf("%s: configuration addresses %v, members %v", nd.self, addrs, list)
			}
		}
		return nil
	}
}

// TestEveryMemberMoves: a 3-node cluster restarted on the same data dirs
// at new addresses (as pods rescheduled with new IPs) elects a leader,
// keeps its data and rewrites the addresses in its configuration; then
// again with the addresses permuted among the members (each takes over
// another's old address).
func TestEveryMemberMoves(t *testing.T) {
	c, _, nodes := startTCluster(t, 3, nil)
	c.leader(20 * time.Second)
	want := map[int]bool{}
	for i := 1; i <= 30; i++ {
		register(t, nodes[i%3].n, i)
		want[i] = true
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, c.settled(want))
	ids := map[string]raft.ServerID{}
	for _, nd := range nodes {
		ids[nd.dir] = nd.n.ID()
	}

	moves := []struct {
		name string
		next func(old []string) []string
	}{
		{"new addresses", func([]string) []string {
			var l []string
			for range 3 {
				l = append(l, freeMember(t))
			}
			return l
		}},
		{"permuted addresses", func(old []string) []string { return []string{old[1], old[2], old[0]} }},
	}
	for round, mv := range moves {
		dirs := []string{nodes[0].dir, nodes[1].dir, nodes[2].dir}
		for _, nd := range nodes {
			nd.stop()
		}
		next := mv.next([]string{nodes[0].self, nodes[1].self, nodes[2].self})
		sorted := slices.Clone(next)
		slices.Sort(sorted)
		c.setMembers(sorted)
		nodes = nodes[:0]
		for i, m := range next {
			nodes = append(nodes, c.start(m, dirs[i], nil))
		}
		for _, nd := range nodes {
			if nd.n.ID() != ids[nd.dir] {
				t.Fatalf("%s: server id %s changed to %s with the address", mv.name, ids[nd.dir], nd.n.ID())
			}
		}
		c.leader(30 * time.Second)
		testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, c.settled(want))
		p := 100 + round
		register(t, nodes[round%3].n, p)
		want[p] = true
		testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, c.settled(want))
	}
}

// TestOneMemberMoves: with a leader in place, one member restarted at a
// new address keeps its server id and gets its address updated (it is not
// removed and re-added as a new server).
func TestOneMemberMoves(t *testing.T) {
	c, list, nodes := startTCluster(t, 3, nil)
	c.leader(20 * time.Second)
	register(t, nodes[0].n, 1)
	want := map[int]bool{1: true}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, c.settled(want))
	// Move a follower.
	var mover *tnode
	for _, nd := range nodes {
		if !nd.n.IsLeader() {
			mover = nd
		}
	}
	id, dir := mover.n.ID(), mover.dir
	mover.stop()
	moved := freeMember(t)
	next := []string{moved}
	for _, m := range list {
		if m != mover.self {
			next = append(next, m)
		}
	}
	slices.Sort(next)
	c.setMembers(next)
	nd := c.start(moved, dir, nil)
	if nd.n.ID() != id {
		t.Fatalf("server id %s became %s", id, nd.n.ID())
	}
	testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, c.settled(want))
	register(t, nd.n, 2)
	want[2] = true
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, c.settled(want))
	cfg, _, _ := nd.n.configuration()
	for _, s := range cfg.Servers {
		if s.ID == id && s.Suffrage != raft.Voter {
			t.Fatalf("the moved member is %v, not a voter", s.Suffrage)
		}
	}
}

// TestCatchUpWaitsForLeaderIndex: a member that joins a cluster with a
// long log reports caught up (and so ready) only once it has applied what
// the leader had applied, not after its first batch of entries.
func TestCatchUpWaitsForLeaderIndex(t *testing.T) {
	big := func(cfg *Config) {
		cfg.SnapshotThreshold = 1 << 30
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = time.Second, time.Second
	}
	c, list, _ := startTCluster(t, 3, big)
	l := c.leader(20 * time.Second)
	// A long log, written in batches straight to the leader's Raft (a
	// leader change under load: go on with the new one).
	const entries = 12000
	for i := 0; i < entries; {
		var last raft.ApplyFuture
		for j := 0; j < 1000; j++ {
			in := model.Instance{IP: "10.2.0.1", Port: 1 + (i+j)%60000, Weight: 1, Healthy: true, Enabled: true, Cluster: "DEFAULT",
				Metadata: map[string]string{"i": fmt.Sprint(i + j)}}
			cmd, _ := EncodeOp(&registry.Op{Kind: registry.OpRegister, Key: tsvc, Instance: in})
			last = l.n.raft.Apply(cmd, 10*time.Second)
		}
		if err := last.Error(); err != nil {
			t.Logf("batch at %d: %v; finding the leader again", i, err)
			l = c.leader(20 * time.Second)
			continue
		}
		i += 1000
	}
	if err := l.n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	target := l.n.fsm.Applied()
	if target < entries {
		t.Fatalf("leader applied %d", target)
	}
	newcomer := freeMember(t)
	c.setMembers(append(slices.Clone(list), newcomer))
	nd := c.start(newcomer, "", big)
	testutil.Eventually(t, 60*time.Second, 20*time.Millisecond, func() error {
		if ok, msg := nd.n.Ready(); !ok {
			return fmt.Errorf("not ready: %s (applied %d of %d)", msg, nd.n.fsm.Applied(), target)
		}
		return nil
	})
	if at := nd.n.caughtUpAt.Load(); at < target {
		t.Fatalf("the newcomer reported caught up at applied index %d; the leader had applied %d", at, target)
	}
}

// TestLegacyServerID: a data directory written when server ids were
// "member#incarnation" keeps its id (found in its stored configuration,
// then kept in raft/server-id), so an upgraded node is still the voter it
// was; a new directory's id is its incarnation.
func TestLegacyServerID(t *testing.T) {
	dir := t.TempDir()
	rd := raftDir(dir)
	if err := os.MkdirAll(rd, 0o750); err != nil {
		t.Fatal(err)
	}
	const inc = "0123456789abcdef"
	if err := os.WriteFile(filepath.Join(rd, "incarnation"), []byte(inc+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	legacy := raft.ServerID("127.0.0.1:8848#" + inc)
	logs, err := raftboltdb.NewBoltStore(filepath.Join(rd, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(rd, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("127.0.0.1:8848")
	rc := raft.DefaultConfig()
	rc.LocalID = legacy
	if err := raft.BootstrapCluster(rc, logs, logs, snaps, trans, raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: legacy, Address: "127.0.0.1:8848"}}}); err != nil {
		t.Fatal(err)
	}
	_ = logs.Close()
	for range 2 { // found in the configuration, then in raft/server-id
		st := store.New("127.0.0.1:8848", hlc.New(nil))
		cfg := DefaultConfig(st.Self(), dir)
		cfg.Standalone, cfg.HeartbeatTimeout, cfg.ElectionTimeout = true, 50*time.Millisecond, 50*time.Millisecond
		cfg.Logger = slog.New(slog.DiscardHandler)
		n, err := Open(cfg, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n.ID() != legacy {
			t.Fatalf("id %s, want the legacy %s", n.ID(), legacy)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
			if !n.IsLeader() {
				return fmt.Errorf("the upgraded node does not lead its one-voter configuration")
			}
			return nil
		})
		cancel()
		<-done
	}
	if b, err := os.ReadFile(filepath.Join(rd, "server-id")); err != nil || string(b) != string(legacy)+"\n" {
		t.Fatalf("server-id %q %v", b, err)
	}
	// A fresh directory: the id is the incarnation itself.
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	fresh := t.TempDir()
	cfg := DefaultConfig(st.Self(), fresh)
	cfg.Standalone, cfg.Logger = true, slog.New(slog.DiscardHandler)
	n, err := Open(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b, _ := os.ReadFile(filepath.Join(raftDir(fresh), "incarnation"))
	if string(n.ID())+"\n" != string(b) {
		t.Fatalf("fresh id %s, incarnation %q", n.ID(), b)
	}
}

// TestPeersJSONRecovery: the last resort when a quorum is gone for good.
// Two of three members are lost; the operator writes raft/peers.json on
// the survivor naming it the only voter; it starts, leads alone with its
// data, and the file is renamed so it applies once. A peers.json that does
// not name the node is refused.
func TestPeersJSONRecovery(t *testing.T) {
	c, _, nodes := startTCluster(t, 3, nil)
	c.leader(20 * time.Second)
	for i := 1; i <= 10; i++ {
		register(t, nodes[i%3].n, i)
	}
	survivor := nodes[0]
	id := survivor.n.ID()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if len(instances(survivor)) != 10 {
			return fmt.Errorf("survivor has %d", len(instances(survivor)))
		}
		return nil
	})
	for _, nd := range nodes {
		nd.stop()
	}
	peers := filepath.Join(raftDir(survivor.dir), PeersFile)
	write := func(body string) {
		if err := os.WriteFile(peers, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c.setMembers([]string{survivor.self})
	// Not naming this node: refused, nothing changed.
	write(`[{"id": "someone-else", "address": "127.0.0.1:1"}]`)
	cfg := DefaultConfig(survivor.self, survivor.dir)
	cfg.Bind, cfg.PortOffset, cfg.Secret, cfg.Logger = "127.0.0.1", 0, testSecret, slog.New(slog.DiscardHandler)
	if n, err := Open(cfg, store.New(survivor.self, hlc.New(nil)), caller{c: c, from: survivor.self}); err == nil {
		n.Close()
		t.Fatal("a peers.json without this node was applied")
	}
	write(fmt.Sprintf(`[{"id": %q, "address": %q}]`, id, survivor.self))
	nd := c.start(survivor.self, survivor.dir, nil)
	testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !nd.n.IsLeader() {
			return fmt.Errorf("the survivor does not lead")
		}
		if got := len(instances(nd)); got != 10 {
			return fmt.Errorf("the survivor holds %d of 10 instances", got)
		}
		return nil
	})
	register(t, nd.n, 11)
	if _, err := os.Stat(peers); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("peers.json was not renamed: %v", err)
	}
}

// TestLeaderlessReadiness: a node cut off from its quorum stays ready (its
// reads work) but its readiness text says there is no leader, and how long.
func TestLeaderlessReadiness(t *testing.T) {
	c, _, nodes := startTCluster(t, 3, func(cfg *Config) { cfg.LeaderlessWarn = time.Second })
	c.leader(20 * time.Second)
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if ok, msg := nodes[0].n.Ready(); !ok || strings.Contains(msg, "no Raft leader") {
			return fmt.Errorf("ready %v %q with a leader", ok, msg)
		}
		return nil
	})
	nodes[1].stop()
	nodes[2].stop()
	testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		ok, msg := nodes[0].n.Ready()
		if !ok || !strings.Contains(msg, "no Raft leader for") {
			return fmt.Errorf("ready %v %q", ok, msg)
		}
		if d := nodes[0].n.Status().LeaderlessFor; d < time.Second {
			return fmt.Errorf("leaderless for %v", d)
		}
		return nil
	})
}

// TestSourceFilter: the Raft listener admits only members' IPs when every
// member is an IP literal; a hostname member or AnySource admits any.
func TestSourceFilter(t *testing.T) {
	n := &Node{}
	n.setSources([]string{"10.0.0.1:8848", "10.0.0.2:8848", "[fd00::3]:8848"})
	for ip, want := range map[string]bool{"10.0.0.1": true, "10.0.0.2": true, "fd00::3": true, "10.0.0.9": false, "127.0.0.1": false} {
		if got := n.allowSource(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: allowed %v, want %v", ip, got, want)
		}
	}
	n.setSources([]string{"10.0.0.1:8848", "distro-1.distro:8848"})
	if !n.allowSource(netip.MustParseAddr("192.0.2.1")) {
		t.Error("a hostname member did not turn the filter off")
	}
	n.cfg.AnySource = true
	n.setSources([]string{"10.0.0.1:8848"})
	if !n.allowSource(netip.MustParseAddr("192.0.2.1")) {
		t.Error("AnySource did not turn the filter off")
	}
}
