package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/console"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/telemetry"
)

// countWrites wraps the write path in counters of the writes this node's
// clients make, exported as client_writes_total{op} (and charted by the
// console). It runs before any entry point takes s.writer.
func (s *Server) countWrites() {
	s.writes = registry.NewCounting(s.writer)
	s.writer = s.writes
	for _, k := range registry.Kinds() {
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: telemetry.Namespace, Name: "client_writes_total",
			Help: "Client writes accepted by this node (wherever their owner applied them), by operation.", ConstLabels: prometheus.Labels{"op": k.String()}},
			func() float64 { return float64(s.writes.Count(k)) }))
	}
}

// mountConsole serves the web console on the HTTP mux (unless --console=false).
func (s *Server) mountConsole() error {
	if !s.cfg.Console {
		return nil
	}
	cfg := console.Config{Store: s.store, Writer: s.writer, Limits: s.cfg.Limits(), Auth: console.Open{AllowEdit: s.cfg.ConsoleEdit},
		Ready: s.Ready, Clock: s.clk, Logger: s.log.With("component", "console"),
		LastBeat: func(k model.ServiceKey, ik model.InstanceKey) (time.Time, bool) {
			return s.local.Tracker().LastBeat(health.Ref{Service: k, Instance: ik})
		},
		Subscribers:  s.subscribers,
		DefaultCheck: model.CheckNone,
		Counters: func() console.Counters {
			expired, unhealthy, _ := s.local.Stats()
			return console.Counters{Registrations: s.writes.Count(registry.OpRegister) + s.writes.Count(registry.OpBatchRegister),
				Deregistrations: s.writes.Count(registry.OpDeregister), Beats: s.writes.Count(registry.OpBeat),
				Expired: expired, MarkedUnhealthy: unhealthy}
		},
	}
	if s.cfg.HealthChecks {
		cfg.DefaultCheck = strings.ToUpper(s.cfg.HealthCheckDefault)
	}
	if s.cfg.ConsoleEdit && s.auth == nil {
		// Anyone may change the registry from the console: answer only
		// hosts DNS rebinding cannot fake.
		cfg.CheckHost = true
		for _, h := range strings.Split(s.cfg.ConsoleAllowedHosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.AllowedHosts = append(cfg.AllowedHosts, h)
			}
		}
	}
	if s.cluster != nil {
		cfg.Cluster = consoleCluster{s.cluster}
	}
	if s.auth != nil {
		cfg.Auth = consoleAuth{s.auth}
	}
	c, err := console.New(cfg)
	if err != nil {
		return err
	}
	c.Mount(s.mux)
	s.console = c
	s.edgeLoops = append(s.edgeLoops, c.Run)
	if s.cfg.ConsoleEdit && s.auth == nil {
		s.log.Warn("the web console may change the registry (--console-edit) and client authentication is off: anyone who reaches the HTTP port can")
	}
	return nil
}

// consoleAuth lets the console log users in, and check their permissions,
// with the node's Authority: the same users, tokens and rules as the Nacos
// API (resource namespace:group:naming/service, actions r and w).
type consoleAuth struct{ a *auth.Authority }

func (consoleAuth) Enabled() bool { return true }

func (c consoleAuth) Login(_ context.Context, user, password, remote string) (string, time.Duration, error) {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		remote = h // throttled per address, as the API's login is
	}
	sess, err := c.a.Login(user, password, remote)
	switch {
	case err == nil:
		return sess.Token, sess.TTL, nil
	case errors.Is(err, auth.ErrThrottled):
		return "", 0, errors.New("too many failed logins: wait a minute and try again")
	}
	return "", 0, console.ErrBadCredentials
}

func (c consoleAuth) Verify(token string) (console.Principal, error) {
	user, err := c.a.Authenticate(auth.Credentials{Token: token}, "")
	if err != nil {
		return console.Principal{}, err
	}
	return console.Principal{Name: user, Admin: c.a.IsAdmin(user)}, nil
}

func (c consoleAuth) CanRead(p console.Principal, k model.ServiceKey) bool {
	return c.a.Allowed(p.Name, auth.NamingResource(k), auth.Read)
}

func (c consoleAuth) CanWrite(p console.Principal, k model.ServiceKey) bool {
	return c.a.Allowed(p.Name, auth.NamingResource(k), auth.Write)
}

// subscribers lists a service's UDP and gRPC subscribers on this node.
func (s *Server) subscribers(k model.ServiceKey) []console.Subscriber {
	var out []console.Subscriber
	if s.push != nil {
		for _, sub := range s.push.Subscribers(k) {
			out = append(out, console.Subscriber{Protocol: "UDP push (v1)", Client: sub.Addr.String(), Clusters: sub.Clusters,
				LastSeen: sub.LastSeen, Pending: sub.Pending})
		}
	}
	if s.grpcAPI != nil {
		for _, sub := range s.grpcAPI.Subscribers(k) {
			client := sub.RemoteAddr
			if sub.ClientIP != "" {
				client = sub.ClientIP + " (" + sub.RemoteAddr + ")"
			}
			out = append(out, console.Subscriber{Protocol: "gRPC (v2)", Client: client, Clusters: sub.Clusters,
				Version: sub.ClientVersion, Conn: sub.ConnID, Pending: sub.Pending})
		}
	}
	return out
}

// consoleCluster adapts the cluster parts to console.Cluster.
type consoleCluster struct{ c *cluster }

func (cc consoleCluster) Members() []member.MemberStatus  { return cc.c.health.Snapshot() }
func (cc consoleCluster) Peers() []distro.PeerStatus      { return cc.c.engine.PeerStatuses() }
func (cc consoleCluster) Owner(k model.ServiceKey) string { return cc.c.engine.Owner(k) }
func (cc consoleCluster) ViewID() string                  { return cc.c.engine.View().ID() }
