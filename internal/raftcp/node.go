package raftcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/transport/raftstream"
)

// Config configures a Node.
type Config struct {
	// Self is this node's member identity (ip:http-port).
	Self string
	// Members is the initial member list (SetMembers installs later ones).
	Members []string
	// DataDir holds the Raft log, stable store and snapshots (in DataDir/raft).
	DataDir string
	// Standalone runs a single voter with no network transport.
	Standalone bool
	// Bind is the host the Raft listener binds to; PortOffset places it at
	// the member's HTTP port + offset (Nacos: 7848 = 8848 - 1000).
	Bind       string
	PortOffset int
	// Secret authenticates the Raft stream (nil: insecure, tests only).
	Secret []byte
	// AnySource turns off the Raft listener's source filter (connections
	// from addresses that are no member's are otherwise refused before the
	// handshake when every member is named by an IP literal): for members
	// behind NAT, whose connections come from other addresses.
	AnySource bool
	// Raft timings (see hashicorp/raft Config).
	HeartbeatTimeout, ElectionTimeout time.Duration
	SnapshotThreshold                 uint64
	SnapshotInterval                  time.Duration
	TrailingLogs                      uint64
	// WriteTimeout bounds a write: forwarding, commit and the local apply.
	WriteTimeout time.Duration
	// StartupGrace: after this long a node serves reads even if it could not
	// catch up with a leader (a restarted node on the minority side).
	StartupGrace time.Duration
	// LeaderlessWarn: a node that has known no leader for this long says
	// so in its readiness message.
	LeaderlessWarn time.Duration
	// CatchUpSlack: a non-voter within this many entries of the leader's
	// commit index is promoted to voter.
	CatchUpSlack uint64
	Logger       *slog.Logger
	// Extensions are state machines riding the log (by name), registered
	// before Raft replays anything.
	Extensions map[string]Extension
	// OnAuthFailure counts refused Raft connections.
	OnAuthFailure func(reason string)
}

// DefaultConfig returns production defaults.
func DefaultConfig(self, dataDir string) Config {
	return Config{Self: self, DataDir: dataDir, Bind: "0.0.0.0", PortOffset: -1000,
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, SnapshotThreshold: 8192,
		SnapshotInterval: 2 * time.Minute, TrailingLogs: 10240, WriteTimeout: 5 * time.Second,
		StartupGrace: 15 * time.Second, LeaderlessWarn: 10 * time.Second, CatchUpSlack: 1024}
}

// Caller sends control calls to peers over the authenticated cluster
// channel (clustergrpc.Client implements it).
type Caller interface {
	Call(ctx context.Context, peer string, req *clusterpb.Request) (*clusterpb.Response, error)
}

// Errors a write can end with (HTTP 503 to clients: the write was not
// applied, or its outcome is unknown; clients retry on another node).
var (
	ErrNoLeader = errors.New("no Raft leader is reachable (an election is in progress, this node is on the minority side of a partition, or the data dirs cannot be written); the write was not applied")
	ErrUnknown  = errors.New("the Raft leader did not confirm the write in time; it may or may not have been applied")
)

// Node runs the CP protocol for one member: a hashicorp/raft instance over
// a durable log, its FSM, bootstrap and join, the mapping of the member
// list onto the Raft configuration, writes (proposed here when leader,
// forwarded to the leader otherwise) and read indexes.
type Node struct {
	cfg    Config
	fsm    *FSM
	raft   *raft.Raft
	id     raft.ServerID
	addr   raft.ServerAddress
	logs   *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	trans  raft.Transport
	layer  *raftstream.Layer
	caller Caller
	log    *slog.Logger
	start  time.Time

	// raftp is raft once NewRaft returned (the address provider may run
	// before).
	raftp atomic.Pointer[raft.Raft]

	mu      sync.Mutex
	members []string
	// idents: the server id each member told (membership.go).
	idents map[string]ident
	// absent remembers since when no listed member has held a configured
	// server (removals wait, in case of a blip).
	absent map[raft.ServerID]time.Time
	// identNow wakes the identification loop (the member list changed).
	identNow chan struct{}
	// twin is set to a member that reports this node's server id.
	twin atomic.Pointer[string]
	// sources is the Raft listener's source filter (nil: any).
	sources atomic.Pointer[map[netip.Addr]bool]
	// lastLeader is when this node last knew a leader (unix ns).
	lastLeader atomic.Int64

	// leaderTerm is the term in which this node, as leader, has applied
	// every entry of earlier terms (so its read index is safe).
	leaderTerm atomic.Uint64
	caughtUp   atomic.Bool
	// catchUpTarget is the leader's read index this node waits to apply
	// before it reports caught up (Run's goroutine only); caughtUpAt is
	// the applied index when it did.
	catchUpTarget uint64
	haveTarget    bool
	caughtUpAt    atomic.Uint64
	changeMu      sync.Mutex

	stopOnce sync.Once
	stopped  chan struct{}
}

// raftDir is the Raft data directory inside the data dir.
func raftDir(dataDir string) string { return filepath.Join(dataDir, "raft") }

// Open opens (or creates) the data directory and starts Raft. A cluster
// node still has to be Run to bootstrap or join.
func Open(cfg Config, st *store.Store, caller Caller) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, caller: caller, log: cfg.Logger.With("component", "raft"), start: time.Now(),
		absent: map[raft.ServerID]time.Time{}, idents: map[string]ident{}, identNow: make(chan struct{}, 1), stopped: make(chan struct{})}
	n.lastLeader.Store(n.start.UnixNano())
	n.fsm = NewFSM(st, n.log)
	for name, e := range cfg.Extensions {
		if err := n.fsm.Register(name, e); err != nil {
			return nil, err
		}
	}
	dir := raftDir(cfg.DataDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	inc, err := incarnation(dir)
	if err != nil {
		return nil, err
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true}})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("data dir %s is in use by another process", cfg.DataDir)
		}
		return nil, fmt.Errorf("raft log store: %w", err)
	}
	n.logs = logs
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{n.log}, DisableTime: true})
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, hl); err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("raft snapshots: %w", err)
	}
	has, err := raft.HasExistingState(logs, logs, n.snaps)
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("raft state: %w", err)
	}
	id, err := serverID(dir, inc, has, logs, n.snaps)
	if err != nil {
		_ = logs.Close()
		return nil, err
	}
	n.id = id
	if cfg.Standalone {
		n.addr, n.trans = raft.NewInmemTransport(raft.ServerAddress(cfg.Self))
	} else {
		if n.addr, err = n.raftAddrOf(cfg.Self); err != nil {
			_ = logs.Close()
			return nil, err
		}
		_, port, _ := net.SplitHostPort(string(n.addr))
		host, _, _ := net.SplitHostPort(cfg.Self)
		local, _ := netip.ParseAddr(host)
		layer, err := raftstream.Listen(net.JoinHostPort(cfg.Bind, port), raftstream.Config{
			Self: cfg.Self, ServerID: string(n.id), Advertise: string(n.addr), AllowSource: n.allowSource, LocalIP: local,
			Secret: cfg.Secret, IsMember: n.isMember, MemberOf: raftstream.MemberOfOffset(cfg.PortOffset),
			OnAuthFailure: cfg.OnAuthFailure, Logger: n.log})
		if err != nil {
			_ = logs.Close()
			return nil, fmt.Errorf("raft listener: %w", err)
		}
		n.layer = layer
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 3,
			Timeout: 10 * time.Second, Logger: hl, ServerAddressProvider: n})
	}
	rc := raft.DefaultConfig()
	rc.LocalID = n.id
	rc.Logger = hl
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	rc.CommitTimeout = min(50*time.Millisecond, cfg.HeartbeatTimeout/4)
	rc.SnapshotThreshold, rc.SnapshotInterval, rc.TrailingLogs = cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	// A removed node stays a follower: if its member comes back, the
	// leader adds it again without a restart.
	rc.ShutdownOnRemove = false
	rc.NoLegacyTelemetry = true
	if err := n.recoverFromPeersJSON(rc, dir); err != nil {
		n.closeStores()
		return nil, err
	}
	n.SetMembers(cfg.Members)
	if !cfg.Standalone {
		// Learn who holds which server id before Raft dials anyone (so a
		// cluster whose members all moved finds its voters at once), and
		// refuse to run a second copy of a data directory next to the
		// original: two members with one server id could elect two
		// leaders in one term.
		n.identifyRound(context.Background(), true)
		if tw := n.twin.Load(); tw != nil {
			n.closeStores()
			return nil, fmt.Errorf("member %s reports this node's Raft server id %s: data dir %s is a copy of its data dir; "+
				"start this node with an empty data dir (it then joins as a new server)", *tw, n.id, cfg.DataDir)
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, logs, n.snaps, n.trans); err != nil {
		n.closeStores()
		return nil, fmt.Errorf("raft: %w", err)
	}
	n.raftp.Store(n.raft)
	if cfg.Standalone && !has {
		cfgn := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: n.id, Address: n.addr}}}
		if err := n.raft.BootstrapCluster(cfgn).Error(); err != nil {
			_ = n.Close()
			return nil, fmt.Errorf("raft bootstrap: %w", err)
		}
	}
	n.log.Info("raft started", "id", n.id, "addr", n.addr, "existing_state", has, "standalone", cfg.Standalone, "applied", n.fsm.Applied())
	return n, nil
}

// incarnation returns this data directory's random id, creating it once.
// It is the node's Raft server id: stable across address changes, and new
// when the data dir is wiped, so a lost vote record can never count twice.
func incarnation(dir string) (string, error) {
	p := filepath.Join(dir, "incarnation")
	if b, err := os.ReadFile(p); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) == 16 {
			return s, nil
		}
		return "", fmt.Errorf("%s is corrupt", p)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	return s, nil
}

// PeersFile is the manual recovery file in the Raft directory: a
// hashicorp/raft peers.json ([{"id": …, "address": …, "non_voter": …}]).
const PeersFile = "peers.json"

// recoverFromPeersJSON replaces the stored configuration with the one in
// raft/peers.json, if the operator put one there (the last resort when a
// quorum is gone for good: docs/operations.md#raft-without-a-leader), and
// renames the file so that it applies once.
func (n *Node) recoverFromPeersJSON(rc *raft.Config, dir string) error {
	p := filepath.Join(dir, PeersFile)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	c, err := raft.ReadConfigJSON(p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !slices.ContainsFunc(c.Servers, func(s raft.Server) bool { return s.ID == n.id && s.Suffrage == raft.Voter }) {
		return fmt.Errorf("%s does not list this node (id %s, from raft/incarnation or raft/server-id) as a voter", p, n.id)
	}
	if err := raft.RecoverCluster(rc, n.fsm, n.logs, n.logs, n.snaps, n.trans, c); err != nil {
		return fmt.Errorf("raft recovery from %s: %w", p, err)
	}
	done := p + ".applied-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(p, done); err != nil {
		return err
	}
	n.log.Warn("raft configuration replaced from peers.json (manual recovery); entries in the log that never committed may have been applied",
		"servers", len(c.Servers), "file", done)
	return nil
}

// serverID returns the Raft server id of a data directory: its
// incarnation, or, for a directory written by an earlier release whose ids
// were "member#incarnation", the id its stored configuration holds for it
// (kept in raft/server-id once found, so that it never changes).
func serverID(dir, inc string, has bool, logs raft.LogStore, snaps raft.SnapshotStore) (raft.ServerID, error) {
	p := filepath.Join(dir, "server-id")
	if b, err := os.ReadFile(p); err == nil {
		if s := strings.TrimSpace(string(b)); strings.HasSuffix(s, inc) {
			return raft.ServerID(s), nil
		}
		return "", fmt.Errorf("%s does not match raft/incarnation", p)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if !has {
		return raft.ServerID(inc), nil
	}
	c, err := storedConfiguration(logs, snaps)
	if err != nil {
		return "", err
	}
	for _, s := range c.Servers {
		if id := string(s.ID); id != inc && strings.HasSuffix(id, "#"+inc) {
			if err := os.WriteFile(p, []byte(id+"\n"), 0o640); err != nil {
				return "", fmt.Errorf("data dir: %w", err)
			}
			return s.ID, nil
		}
	}
	return raft.ServerID(inc), nil
}

// storedConfiguration reads the latest Raft configuration of a data
// directory without starting Raft: the newest snapshot's, then any
// configuration entry of the log after it.
func storedConfiguration(logs raft.LogStore, snaps raft.SnapshotStore) (raft.Configuration, error) {
	var c raft.Configuration
	var from uint64
	metas, err := snaps.List()
	if err != nil {
		return c, fmt.Errorf("raft snapshots: %w", err)
	}
	if len(metas) > 0 {
		c, from = metas[0].Configuration, metas[0].Index
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return c, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return c, err
	}
	for i := max(first, from+1); first > 0 && i <= last; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return c, fmt.Errorf("raft log entry %d: %w", i, err)
		}
		if l.Type == raft.LogConfiguration {
			c = raft.DecodeConfiguration(l.Data)
		}
	}
	return c, nil
}

func (n *Node) closeStores() {
	if n.layer != nil {
		_ = n.layer.Close()
	}
	_ = n.logs.Close()
}

// Close shuts Raft down and closes the data directory.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stopped)
		err = n.raft.Shutdown().Error()
		if c, ok := n.trans.(io.Closer); ok {
			_ = c.Close()
		}
		n.closeStores()
	})
	return err
}

// FSM returns the state machine (tables are read from it).
func (n *Node) FSM() *FSM { return n.fsm }

// ID returns this node's Raft server id.
func (n *Node) ID() raft.ServerID { return n.id }

// Raft exposes the raft instance (metrics, tests).
func (n *Node) Raft() *raft.Raft { return n.raft }

// SetMembers installs the member list (the same lookup Distro uses).
func (n *Node) SetMembers(list []string) {
	l := slices.Clone(list)
	slices.Sort(l)
	n.mu.Lock()
	changed := !slices.Equal(n.members, l)
	n.members = l
	n.mu.Unlock()
	n.setSources(l)
	if changed {
		select {
		case n.identNow <- struct{}{}:
		default:
		}
	}
}

func (n *Node) memberList() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members
}

func (n *Node) isMember(m string) bool { return slices.Contains(n.memberList(), m) }

// Leader returns the member identity of the leader this node knows, or "".
// The leader's address comes from its own RPCs (its current address), so
// it is right even before the configuration is updated after a move.
func (n *Node) Leader() string {
	addr, id := n.raft.LeaderWithID()
	switch {
	case id == "":
		return ""
	case id == n.id:
		return n.cfg.Self
	case n.cfg.Standalone:
		return string(addr)
	}
	hostPort, _, _ := strings.Cut(string(addr), raftstream.IDSeparator)
	if m, err := raftstream.MemberOfOffset(n.cfg.PortOffset)(raft.ServerAddress(hostPort)); err == nil {
		return m
	}
	m, _ := n.memberOf(id)
	return m
}

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Ready reports whether reads of persistent data are served: this node has
// applied the leader's read index once since it started, or the startup
// grace has passed (it then serves what it has, and says so). A node that
// has known no leader for Config.LeaderlessWarn stays ready (reads and
// ephemeral data work; failing readiness on every member at once would
// take the whole registry out of service, and a StatefulSet would never
// start the members a quorum needs) but says so: persistent writes answer
// 503.
func (n *Node) Ready() (bool, string) {
	var msg string
	switch {
	case n.caughtUp.Load():
		msg = "raft caught up"
	case time.Since(n.start) > n.cfg.StartupGrace:
		msg = "raft not caught up with a leader; serving local persistent data"
	default:
		return false, "raft catching up with the leader"
	}
	if tw := n.twin.Load(); tw != nil {
		msg += "; member " + *tw + " reports this node's Raft server id (a copied data dir): stop one of them"
	}
	if d := n.LeaderlessFor(); n.cfg.LeaderlessWarn > 0 && d >= n.cfg.LeaderlessWarn {
		msg += fmt.Sprintf("; WARNING: no Raft leader for %s: persistent writes fail with 503 (docs/operations.md#raft-without-a-leader)", d.Round(time.Second))
	}
	return true, msg
}

// LeaderlessFor returns how long this node has known no leader (0 while
// it knows one).
func (n *Node) LeaderlessFor() time.Duration {
	if n.raft.Leader() != "" {
		return 0
	}
	return time.Since(time.Unix(0, n.lastLeader.Load()))
}

// Run bootstraps or joins (cluster mode), keeps the Raft configuration in
// step with the member list while leading, and tracks catch-up, until ctx
// ends. It closes the node on return.
func (n *Node) Run(ctx context.Context) {
	defer func() { _ = n.Close() }()
	if !n.cfg.Standalone {
		done := make(chan struct{})
		defer func() { <-done }()
		ictx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { defer close(done); n.identify(ictx) }()
	}
	tick := time.NewTicker(max(n.cfg.HeartbeatTimeout/4, 20*time.Millisecond))
	defer tick.Stop()
	lastMember := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n.raft.Leader() != "" {
			n.lastLeader.Store(time.Now().UnixNano())
		}
		n.trackCatchUp(ctx)
		if n.IsLeader() {
			n.leaderDuties()
			continue
		}
		if n.cfg.Standalone {
			continue
		}
		// Bootstrap and join are tried every second at most. A node that
		// believes it is a voter but has heard from no leader for a while
		// asks too: it may have been removed while it was away (the leader
		// then adds it again), or moved (the leader learns its address).
		if time.Since(lastMember) < time.Second {
			continue
		}
		lastMember = time.Now()
		if !n.inConfiguration() || n.suffrage() != raft.Voter || n.LeaderlessFor() > n.rejoinAfter() {
			n.bootstrapOrJoin(ctx)
		}
	}
}

// rejoinAfter is how long a voter waits without a leader before it asks
// the members to (re-)add it.
func (n *Node) rejoinAfter() time.Duration { return max(3*time.Second, 5*n.cfg.ElectionTimeout) }

// trackCatchUp: once a leader is known, this node takes the leader's read
// index (once) and reports caught up when it has applied it. Comparing
// its own applied and commit indexes would not do: a follower's commit
// index is capped by its own last log index, so after the first batch of
// a long catch-up the two are equal.
func (n *Node) trackCatchUp(ctx context.Context) {
	if n.caughtUp.Load() || n.Leader() == "" {
		return
	}
	if !n.haveTarget {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		idx, err := n.readIndexOnce(cctx)
		cancel()
		if err != nil {
			return
		}
		n.catchUpTarget, n.haveTarget = idx, true
	}
	if applied := n.fsm.Applied(); applied >= n.catchUpTarget {
		n.caughtUpAt.Store(applied)
		n.caughtUp.Store(true)
		n.log.Info("raft caught up", "applied", applied, "leader_read_index", n.catchUpTarget, "leader", n.Leader())
	}
}

func (n *Node) configuration() (raft.Configuration, uint64, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, err
	}
	return f.Configuration(), f.Index(), nil
}

func (n *Node) inConfiguration() bool {
	c, _, err := n.configuration()
	if err != nil {
		return false
	}
	for _, s := range c.Servers {
		if s.ID == n.id {
			return true
		}
	}
	return false
}

func (n *Node) suffrage() raft.ServerSuffrage {
	c, _, _ := n.configuration()
	for _, s := range c.Servers {
		if s.ID == n.id {
			return s.Suffrage
		}
	}
	return raft.Nonvoter
}

// hasState reports whether this node holds any Raft state.
func (n *Node) hasState() bool {
	if n.raft.LastIndex() > 0 {
		return true
	}
	c, _, err := n.configuration()
	return err == nil && len(c.Servers) > 0
}

// bootstrapOrJoin: a node without state bootstraps only in a
// whole-cluster first start (every member reachable, none with state, all
// with the same member list, so every one of them bootstraps the same
// configuration); otherwise it asks the leader to add it.
func (n *Node) bootstrapOrJoin(ctx context.Context) {
	members := n.memberList()
	if !n.hasState() {
		servers, anyState, ok := n.survey(ctx, members)
		if ok && !anyState {
			cfgn := raft.Configuration{Servers: servers}
			if err := n.raft.BootstrapCluster(cfgn).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				n.log.Warn("raft bootstrap failed", "error", err)
			} else {
				n.log.Info("raft bootstrapped (whole-cluster first start)", "voters", len(servers))
			}
			return
		}
		if !anyState {
			return // wait until every member is up for the first time
		}
	}
	n.join(ctx, members)
}

// survey asks every member for its Raft status.
func (n *Node) survey(ctx context.Context, members []string) (servers []raft.Server, anyState, ok bool) {
	ok = slices.Contains(members, n.cfg.Self)
	for _, m := range members {
		if m == n.cfg.Self {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: n.id, Address: n.addr})
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := n.caller.Call(cctx, m, &clusterpb.Request{Kind: &clusterpb.Request_RaftStatus{RaftStatus: &clusterpb.RaftStatus{}}})
		cancel()
		st := resp.GetRaftStatus()
		if err != nil || st == nil {
			ok = false
			continue
		}
		if st.GetHasState() {
			anyState = true
		}
		n.learn(m, raft.ServerID(st.GetId()))
		if !slices.Equal(st.GetMembers(), members) || st.GetId() == "" {
			ok = false
		}
		addr, err := n.raftAddrOf(m)
		if err != nil {
			ok = false
			continue
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(st.GetId()), Address: addr})
	}
	return servers, anyState, ok
}

// join asks the leader (or, not knowing it, every member in turn) to add
// this node.
func (n *Node) join(ctx context.Context, members []string) {
	targets := members
	if l := n.Leader(); l != "" && l != n.cfg.Self {
		targets = append([]string{l}, members...)
	}
	req := &clusterpb.Request{Kind: &clusterpb.Request_RaftJoin{RaftJoin: &clusterpb.RaftJoin{
		Id: string(n.id), Address: string(n.addr), AppliedIndex: n.raft.AppliedIndex()}}}
	for _, m := range targets {
		if m == n.cfg.Self {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := n.caller.Call(cctx, m, req)
		cancel()
		if jr := resp.GetRaftJoin(); err == nil && jr != nil && jr.GetMessage() == "" {
			n.log.Debug("raft join answered", "by", m, "suffrage", jr.GetSuffrage(), "leader_commit", jr.GetCommitIndex())
			return
		}
	}
}

// leaderDuties makes the leader's read index safe once per term, and keeps
// the configuration in step with the member list (reconcile).
func (n *Node) leaderDuties() {
	term := n.raft.CurrentTerm()
	if n.leaderTerm.Load() != term {
		// Barrier: every entry of earlier terms is applied here before
		// this leader answers read indexes.
		if err := n.raft.Barrier(n.cfg.WriteTimeout).Error(); err == nil {
			n.leaderTerm.Store(term)
		}
		return
	}
	if n.cfg.Standalone || len(n.memberList()) == 0 {
		return
	}
	c, idx, err := n.configuration()
	if err != nil {
		return
	}
	if !n.isMember(n.cfg.Self) {
		// The leader itself left the list: after removeAfter (a blip of
		// the list moves nothing), hand leadership over; the next leader
		// removes it.
		n.mu.Lock()
		since, ok := n.absent[n.id]
		if !ok {
			n.absent[n.id] = time.Now()
		}
		n.mu.Unlock()
		if ok && time.Since(since) >= removeAfter && len(c.Servers) > 1 {
			n.log.Info("raft leader is no longer a member; transferring leadership")
			_ = n.raft.LeadershipTransfer().Error()
		}
		return
	}
	n.reconcile(c, idx)
}

// removeAfter is how long no listed member may hold a configured server
// before the leader removes it.
const removeAfter = 3 * time.Second

// HandleStatus answers a status request.
func (n *Node) HandleStatus() *clusterpb.RaftStatusReply {
	return &clusterpb.RaftStatusReply{Id: string(n.id), HasState: n.hasState(), Members: n.memberList(), Leader: n.Leader()}
}

// Propose commits cmd and waits until this node has applied it. On a
// follower it forwards cmd to the leader over the cluster channel.
func (n *Node) Propose(ctx context.Context, cmd []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	for {
		var idx uint64
		var err error
		leader := n.Leader()
		switch {
		case n.IsLeader():
			idx, err = n.applyLocal(ctx, cmd)
		case leader != "":
			idx, err = n.forward(ctx, leader, cmd)
		default:
			err = ErrNoLeader
		}
		var re *registry.Error
		switch {
		case err == nil:
			return n.WaitApplied(ctx, idx)
		case errors.As(err, &re), errors.Is(err, ErrUnknown):
			return err
		}
		// Not applied (no leader yet, or leadership moved): retry until the
		// deadline, then say so.
		select {
		case <-ctx.Done():
			if errors.Is(err, ErrNoLeader) || leader == "" {
				return ErrNoLeader
			}
			return fmt.Errorf("%w (%v)", ErrNoLeader, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errNotApplied marks an attempt that certainly did not commit.
type errNotApplied struct{ msg string }

func (e errNotApplied) Error() string { return e.msg }

// applyLocal proposes cmd on the leader. It returns the FSM's error for
// the command, errNotApplied, or ErrUnknown.
func (n *Node) applyLocal(ctx context.Context, cmd []byte) (uint64, error) {
	f := n.raft.Apply(cmd, n.cfg.WriteTimeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		switch {
		case err == nil:
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return 0, errNotApplied{err.Error()}
		default:
			// Leadership lost after the entry was appended, or a storage
			// failure: the entry may still commit under the next leader.
			return 0, fmt.Errorf("%w: %v", ErrUnknown, err)
		}
		if r, ok := f.Response().(Result); ok && r.Err != nil {
			return f.Index(), toRegistryError(r.Err)
		}
		return f.Index(), nil
	case <-ctx.Done():
		return 0, ErrUnknown
	}
}

func toRegistryError(err error) error {
	var re *registry.Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, ErrExists), errors.Is(err, ErrNotFound), errors.Is(err, model.ErrInvalid):
		return &registry.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	return err
}

// forward hands cmd to the leader.
func (n *Node) forward(ctx context.Context, leader string, cmd []byte) (uint64, error) {
	resp, err := n.caller.Call(ctx, leader, &clusterpb.Request{Kind: &clusterpb.Request_RaftApply{RaftApply: &clusterpb.RaftApply{Command: cmd}}})
	r := resp.GetRaftApply()
	if err != nil || r == nil {
		if ctx.Err() != nil {
			return 0, ErrUnknown
		}
		// The call failed before the leader answered. It may have reached
		// the leader, which is why only a refused connection retries.
		if isRefused(err) {
			return 0, errNotApplied{fmt.Sprintf("leader %s unreachable: %v", leader, err)}
		}
		return 0, fmt.Errorf("%w: %v", ErrUnknown, err)
	}
	switch st := int(r.GetStatus()); {
	case st == http.StatusOK:
		return r.GetIndex(), nil
	case st == http.StatusServiceUnavailable:
		return 0, errNotApplied{r.GetMessage()}
	case st == http.StatusGatewayTimeout:
		return 0, fmt.Errorf("%w: %s", ErrUnknown, r.GetMessage())
	default:
		return r.GetIndex(), &registry.Error{Status: st, Msg: r.GetMessage()}
	}
}

// HandleApply serves a forwarded command on the leader.
func (n *Node) HandleApply(ctx context.Context, req *clusterpb.RaftApply) *clusterpb.RaftApplyReply {
	if !n.IsLeader() {
		return &clusterpb.RaftApplyReply{Status: http.StatusServiceUnavailable, Message: "not the Raft leader", Leader: n.Leader()}
	}
	if _, err := DecodeCommand(req.GetCommand()); err != nil {
		return &clusterpb.RaftApplyReply{Status: http.StatusBadRequest, Message: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	idx, err := n.applyLocal(ctx, req.GetCommand())
	var re *registry.Error
	var na errNotApplied
	switch {
	case err == nil:
		return &clusterpb.RaftApplyReply{Status: http.StatusOK, Index: idx}
	case errors.As(err, &re):
		return &clusterpb.RaftApplyReply{Status: int32(re.Status), Message: re.Msg, Index: idx}
	case errors.As(err, &na):
		return &clusterpb.RaftApplyReply{Status: http.StatusServiceUnavailable, Message: na.msg}
	}
	return &clusterpb.RaftApplyReply{Status: http.StatusGatewayTimeout, Message: err.Error()}
}

// WaitApplied waits until this node's FSM has applied index idx.
func (n *Node) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		ch := n.fsm.appliedChanged()
		if n.fsm.Applied() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: committed, but not yet applied on this node", ErrUnknown)
		case <-n.stopped:
			return ErrUnknown
		}
	}
}

// ReadIndex returns an index such that this node's state at it includes
// every write acknowledged before the call (linearizable reads wait for
// it with WaitApplied).
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	for {
		var idx uint64
		var err error
		switch leader := n.Leader(); {
		case n.IsLeader():
			idx, err = n.leaderReadIndex()
		case leader != "":
			idx, err = n.remoteReadIndex(ctx, leader)
		default:
			err = ErrNoLeader
		}
		if err == nil {
			return idx, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readIndexOnce is one attempt of ReadIndex.
func (n *Node) readIndexOnce(ctx context.Context) (uint64, error) {
	if n.IsLeader() {
		return n.leaderReadIndex()
	}
	if l := n.Leader(); l != "" {
		return n.remoteReadIndex(ctx, l)
	}
	return 0, ErrNoLeader
}

// remoteReadIndex asks the leader for its read index. An answer with a
// message is a refusal; index 0 (nothing applied yet) is a valid index.
func (n *Node) remoteReadIndex(ctx context.Context, leader string) (uint64, error) {
	resp, err := n.caller.Call(ctx, leader, &clusterpb.Request{Kind: &clusterpb.Request_RaftReadIndex{RaftReadIndex: &clusterpb.RaftReadIndex{}}})
	if err != nil {
		return 0, err
	}
	r := resp.GetRaftReadIndex()
	switch {
	case r == nil:
		return 0, errors.New("no read index in the answer")
	case r.GetMessage() != "":
		return 0, errors.New(r.GetMessage())
	}
	return r.GetIndex(), nil
}

// leaderReadIndex: the applied index, read before confirming that this
// node still leads a quorum. Every acknowledged write was applied here
// before its answer, so the index covers it.
func (n *Node) leaderReadIndex() (uint64, error) {
	if n.leaderTerm.Load() != n.raft.CurrentTerm() {
		return 0, errors.New("new leader has not applied the entries of earlier terms yet")
	}
	idx := n.fsm.Applied()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, err
	}
	return idx, nil
}

// HandleReadIndex serves a read index request on the leader.
func (n *Node) HandleReadIndex() *clusterpb.RaftReadIndexReply {
	if !n.IsLeader() {
		return &clusterpb.RaftReadIndexReply{Message: "not the Raft leader"}
	}
	idx, err := n.leaderReadIndex()
	if err != nil {
		return &clusterpb.RaftReadIndexReply{Message: err.Error()}
	}
	return &clusterpb.RaftReadIndexReply{Index: idx}
}

// Barrier waits until every write acknowledged before the call is visible
// in this node's local reads (a linearizable read).
func (n *Node) Barrier(ctx context.Context) error {
	idx, err := n.ReadIndex(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	return n.WaitApplied(ctx, idx)
}

// Status is a summary for metrics, logs and the operator API.
type Status struct {
	ID, Leader, State string
	Term, Applied     uint64
	Commit, Last      uint64
	Voters, Nonvoters int
	// LeaderlessFor is how long this node has known no leader.
	LeaderlessFor time.Duration
	// SnapshotIndex is the index of this node's newest snapshot.
	SnapshotIndex uint64
}

// Status returns the node's Raft status.
func (n *Node) Status() Status {
	s := Status{ID: string(n.id), Leader: n.Leader(), State: n.raft.State().String(), Term: n.raft.CurrentTerm(),
		Applied: n.fsm.Applied(), Commit: n.raft.CommitIndex(), Last: n.raft.LastIndex(), LeaderlessFor: n.LeaderlessFor()}
	s.SnapshotIndex, _ = strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	if c, _, err := n.configuration(); err == nil {
		for _, sv := range c.Servers {
			if sv.Suffrage == raft.Voter {
				s.Voters++
			} else {
				s.Nonvoters++
			}
		}
	}
	return s
}

// slogWriter forwards hclog lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	switch {
	case strings.Contains(msg, "[ERROR]"):
		w.log.Error(msg)
	case strings.Contains(msg, "[WARN]"):
		w.log.Warn(msg)
	default:
		w.log.Info(msg)
	}
	return len(p), nil
}

// isRefused reports a connection refused by the peer: the call never
// reached it.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// HandleCall serves the Raft control calls that ride the cluster channel
// (from is a verified member identity). It reports false for any other
// kind of request, which belongs to Distro.
func (n *Node) HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, bool) {
	switch k := req.GetKind().(type) {
	case *clusterpb.Request_RaftApply:
		return &clusterpb.Response{Kind: &clusterpb.Response_RaftApply{RaftApply: n.HandleApply(ctx, k.RaftApply)}}, true
	case *clusterpb.Request_RaftReadIndex:
		return &clusterpb.Response{Kind: &clusterpb.Response_RaftReadIndex{RaftReadIndex: n.HandleReadIndex()}}, true
	case *clusterpb.Request_RaftJoin:
		return &clusterpb.Response{Kind: &clusterpb.Response_RaftJoin{RaftJoin: n.HandleJoin(from, k.RaftJoin)}}, true
	case *clusterpb.Request_RaftStatus:
		return &clusterpb.Response{Kind: &clusterpb.Response_RaftStatus{RaftStatus: n.HandleStatus()}}, true
	}
	return nil, false
}
