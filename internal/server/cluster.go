package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distro-registry/distro/api/clusterpb"

	"github.com/distro-registry/distro/internal/authcp"
	"github.com/distro-registry/distro/internal/clusterauth"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/telemetry"
	"github.com/distro-registry/distro/internal/transport/clustergrpc"
)

// cluster is the clustered part of a server: member lookup and health, the
// Distro engine and the cluster gRPC listener.
type cluster struct {
	lookup  member.Lookup
	health  *member.Health
	engine  *distro.Engine
	client  *clustergrpc.Client
	grpcSrv *clustergrpc.Server
	ln      net.Listener

	mu      sync.Mutex
	members []string
	raft    *raftcp.Node
}

// clusterMux serves the cluster channel: Raft control calls go to the CP
// node, everything else to the Distro engine.
type clusterMux struct {
	*distro.Engine
	raft *raftcp.Node
}

func (m clusterMux) HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error) {
	if resp, ok := m.raft.HandleCall(ctx, from, req); ok {
		return resp, nil
	}
	return m.Engine.HandleCall(ctx, from, req)
}

// lookupFor builds the configured member lookup.
func (s *Server) lookupFor() (member.Lookup, error) {
	cfg := &s.cfg
	switch {
	case cfg.ClusterConf != "":
		return member.File(cfg.ClusterConf, cfg.Port, s.log), nil
	case cfg.Members != "":
		list, err := member.ParseMembers(cfg.Members, cfg.Port)
		if err != nil {
			return nil, fmt.Errorf("--members: %w", err)
		}
		return member.Static(list), nil
	case cfg.MembersDNS != "":
		l, err := member.DNS(member.DNSConfig{
			Name: cfg.MembersDNS, Interval: cfg.MembersDNSInterval, DefaultPort: cfg.Port, Logger: s.log,
			// A new pod's own record can reach DNS after the pod starts:
			// wait until this node finds itself, by the usual rules.
			Accept: func(list []string) error {
				_, err := member.ResolveSelf(cfg.Advertise, list, cfg.Port, member.InterfaceAddrs)
				return err
			},
		})
		if err != nil {
			return nil, err
		}
		return l, nil
	default:
		return member.AddressServer(cfg.AddressServer, cfg.AddressServerInterval, cfg.Port, nil, s.log), nil
	}
}

// resolveCluster reads the initial member list and this node's identity.
func (s *Server) resolveCluster(ctx context.Context) (*cluster, string, error) {
	lk, err := s.lookupFor()
	if err != nil {
		return nil, "", err
	}
	c := &cluster{lookup: lk}
	first := make(chan []string, 1)
	var once sync.Once
	err = lk.Start(ctx, func(list []string) {
		c.mu.Lock()
		c.members = slices.Clone(list)
		h, rn := c.health, c.raft
		c.mu.Unlock()
		once.Do(func() { first <- list })
		if h != nil {
			h.SetMembers(list)
		}
		if rn != nil {
			rn.SetMembers(list)
		}
	})
	if err != nil {
		return nil, "", fmt.Errorf("member lookup (%s): %w", lk.Name(), err)
	}
	var members []string
	select {
	case members = <-first:
	case <-time.After(30 * time.Second):
		return nil, "", fmt.Errorf("member lookup (%s) produced no member list", lk.Name())
	}
	self, err := member.ResolveSelf(s.cfg.Advertise, members, s.cfg.Port, member.InterfaceAddrs)
	if err != nil {
		return nil, "", err
	}
	return c, self, nil
}

// startCluster wires the engine between the store and the transport. It
// runs after the store and write path exist.
func (s *Server) startCluster(c *cluster, self string) error {
	cfg := &s.cfg
	var signer *clusterauth.Signer
	if cfg.InsecureCluster && cfg.ClusterSecret == "" {
		s.log.Warn("cluster calls are NOT authenticated (--insecure-cluster); never do this outside tests")
		signer = clusterauth.Insecure(self)
	} else {
		var err error
		if signer, err = clusterauth.New([]byte(cfg.ClusterSecret), self); err != nil {
			return fmt.Errorf("cluster-secret: %w", err)
		}
	}
	authFailures := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: "cluster",
		Name: "auth_failures_total", Help: "Cluster calls refused by authentication, by reason."}, []string{"reason"})
	memberStates := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: telemetry.Namespace, Subsystem: "cluster",
		Name: "members", Help: "Members by state, as this node sees them."}, []string{"state"})
	s.reg.MustRegister(authFailures, memberStates)
	onAuth := func(reason string) { authFailures.WithLabelValues(reason).Inc() }

	c.client = clustergrpc.NewClient(clustergrpc.ClientConfig{Signer: signer, PortOffset: cfg.ClusterPortOffset,
		Logger: s.log, OnAuthFailure: onAuth})
	var secret []byte
	if cfg.ClusterSecret != "" {
		secret = []byte(cfg.ClusterSecret)
	}
	c.mu.Lock()
	members := slices.Clone(c.members)
	c.mu.Unlock()
	if err := s.openCP(self, c.client, secret, members); err != nil {
		return err
	}
	c.mu.Lock()
	c.raft = s.cp
	s.cp.SetMembers(c.members)
	c.mu.Unlock()
	dc := distro.DefaultConfig(self)
	dc.SyncDelay, dc.RetryMax, dc.VerifyInterval = cfg.SyncDelay, cfg.SyncRetryMax, cfg.VerifyInterval
	dc.TombstoneRetention, dc.StartupTimeout, dc.ConnLease = cfg.TombstoneRetention, cfg.StartupTimeout, cfg.ConnLease
	dc.TombstoneHoldMax = cfg.TombstoneHoldMax
	dc.Limits = cfg.Limits()
	c.engine = distro.New(dc, s.store, s.local, c.client, s.clk, s.log, distro.NewMetrics(s.reg))

	mc := member.DefaultConfig()
	mc.Interval, mc.Timeout = cfg.ProbeInterval, cfg.ProbeTimeout
	c.health = member.NewHealth(self, mc, c.engine, s.clk, s.log)
	c.mu.Lock()
	c.health.SetMembers(c.members)
	c.mu.Unlock()
	c.engine.SetView(toView(c.health.View()))
	c.health.Subscribe(func(v member.View) {
		c.engine.SetView(toView(v))
		counts := map[member.State]int{member.StateUp: 0, member.StateSuspicious: 0, member.StateDown: 0}
		var peers []string
		for _, m := range v.Members {
			counts[m.State]++
			peers = append(peers, m.Address)
		}
		for st, n := range counts {
			memberStates.WithLabelValues(string(st)).Set(float64(n))
		}
		c.client.Retain(peers)
	})

	c.grpcSrv = clustergrpc.NewServer(clustergrpc.ServerConfig{Signer: signer, Logger: s.log, OnAuthFailure: onAuth,
		IsMember: func(m string) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return slices.Contains(c.members, m)
		}}, clusterMux{Engine: c.engine, raft: s.cp})
	ln, err := net.Listen("tcp", cfg.ClusterAddr())
	if err != nil {
		return fmt.Errorf("cluster listener: %w", err)
	}
	c.ln = ln
	s.cluster = c
	s.ap = c.engine
	s.loops = append(s.loops, c.engine.Run, c.health.Run, func(ctx context.Context) {
		go func() { <-ctx.Done(); c.grpcSrv.Stop() }()
		if err := c.grpcSrv.Serve(ln); err != nil && ctx.Err() == nil {
			s.log.Error("cluster listener stopped", "error", err)
		}
	})
	s.log.Info("cluster configured", "self", self, "lookup", c.lookup.Name(), "cluster_addr", ln.Addr().String())
	return nil
}

func toView(v member.View) *distro.View {
	ms := make([]distro.Member, 0, len(v.Members))
	for _, m := range v.Members {
		ms = append(ms, distro.Member{Addr: m.Address, State: distro.State(m.State)})
	}
	return distro.NewView(v.Self, ms)
}

// nodes serves GET /nacos/v1/core/cluster/nodes in the Nacos shape.
func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	var ms []member.MemberStatus
	if s.cluster != nil {
		ms = s.cluster.health.Snapshot()
	} else {
		ms = []member.MemberStatus{{Address: s.store.Self(), State: member.StateUp, LastContact: time.Now()}}
	}
	b, err := member.NodesJSON(ms, r.URL.Query().Get("keyword"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(b)
}

// openCP opens the data directory and starts the CP protocol: a
// single-voter Raft standalone (no network), the member list's voters in a
// cluster, reached through caller and authenticated with secret.
func (s *Server) openCP(self string, caller raftcp.Caller, secret []byte, members []string) error {
	cfg := &s.cfg
	rc := raftcp.DefaultConfig(self, cfg.DataDir)
	rc.Members = members
	rc.Standalone = caller == nil
	rc.Bind, rc.PortOffset, rc.Secret, rc.AnySource = cfg.Bind, cfg.RaftPortOffset, secret, cfg.RaftAnySource
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.RaftHeartbeatTimeout, cfg.RaftElectionTimeout
	if rc.Standalone {
		// One voter, no network: elect at once.
		rc.HeartbeatTimeout, rc.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
	}
	rc.SnapshotThreshold, rc.WriteTimeout = uint64(cfg.RaftSnapshotThreshold), cfg.RaftWriteTimeout
	rc.TrailingLogs, rc.SnapshotInterval = uint64(cfg.RaftTrailingLogs), cfg.RaftSnapshotInterval
	rc.StartupGrace, rc.Logger = cfg.StartupTimeout, s.log
	raftAuth := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: "raft",
		Name: "auth_failures_total", Help: "Raft connections refused by the handshake, by reason."}, []string{"reason"})
	s.reg.MustRegister(raftAuth)
	rc.OnAuthFailure = func(reason string) { raftAuth.WithLabelValues(reason).Inc() }
	// The auth store rides the log whether or not this node has client
	// auth on: every replica must apply every entry alike.
	s.authCP = authcp.New()
	rc.Extensions = map[string]raftcp.Extension{authcp.Name: s.authCP.Extension()}
	n, err := raftcp.Open(rc, s.store, caller)
	if err != nil {
		return err
	}
	s.authCP.Attach(n)
	s.cp = n
	s.kv = raftcp.KV{Node: n}
	s.loops = append(s.loops, n.Run)
	registerRaftMetrics(s.reg, n)
	return nil
}

func registerRaftMetrics(reg *prometheus.Registry, n *raftcp.Node) {
	ns := telemetry.Namespace
	gauge := func(name, help string, f func(raftcp.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "raft", Name: name, Help: help},
			func() float64 { return f(n.Status()) })
	}
	reg.MustRegister(
		gauge("leader", "1 if this node is the Raft leader.", func(s raftcp.Status) float64 {
			if s.State == "Leader" {
				return 1
			}
			return 0
		}),
		gauge("term", "Current Raft term.", func(s raftcp.Status) float64 { return float64(s.Term) }),
		gauge("applied_index", "Last Raft command applied to the persistent state.", func(s raftcp.Status) float64 { return float64(s.Applied) }),
		gauge("commit_index", "Raft commit index as this node knows it.", func(s raftcp.Status) float64 { return float64(s.Commit) }),
		gauge("voters", "Voters in the Raft configuration.", func(s raftcp.Status) float64 { return float64(s.Voters) }),
		gauge("leaderless_seconds", "How long this node has known no Raft leader (0 while it knows one); persistent writes fail meanwhile.",
			func(s raftcp.Status) float64 { return s.LeaderlessFor.Seconds() }),
		gauge("snapshot_index", "Log index of this node's newest Raft snapshot.", func(s raftcp.Status) float64 { return float64(s.SnapshotIndex) }),
	)
}
