// Package config defines distrod's configuration: one struct with defaults,
// loaded from a YAML file, DISTRO_* environment variables and command-line
// flags, in increasing order of precedence, then validated.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/distro-registry/distro/internal/addrpolicy"
	"github.com/distro-registry/distro/internal/model"
)

// Config is every setting of distrod. YAML keys and flag names are the same
// kebab-case words; the environment variable of a flag is DISTRO_ followed
// by its name in upper case with '-' as '_' (--cluster-conf → DISTRO_CLUSTER_CONF).
type Config struct {
	// Port is the HTTP port (Nacos v1 API). The client gRPC port is
	// Port+GRPCPortOffset and the cluster port Port+ClusterPortOffset.
	Port int `yaml:"port"`
	// Bind is the address every listener binds to.
	Bind string `yaml:"bind"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log-level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log-format"`

	// Advertise is this node's member identity ip:port; derived from the
	// member list when empty.
	Advertise string `yaml:"advertise"`
	// ClusterConf is a Nacos cluster.conf file, watched for changes.
	ClusterConf string `yaml:"cluster-conf"`
	// Members is a static comma-separated member list.
	Members string `yaml:"members"`
	// AddressServer is a URL answering the member list; polled.
	AddressServer         string        `yaml:"address-server"`
	AddressServerInterval time.Duration `yaml:"address-server-interval"`
	// MembersDNS is a DNS name (a Kubernetes headless Service) whose SRV or
	// A/AAAA records are the member list; re-resolved every MembersDNSInterval.
	MembersDNS         string        `yaml:"members-dns"`
	MembersDNSInterval time.Duration `yaml:"members-dns-interval"`
	// ClusterSecret authenticates every cluster call (≥ 32 bytes).
	ClusterSecret string `yaml:"cluster-secret"`
	// InsecureCluster allows a cluster without a secret. Never in production.
	InsecureCluster   bool `yaml:"insecure-cluster"`
	GRPCPortOffset    int  `yaml:"grpc-port-offset"`
	ClusterPortOffset int  `yaml:"cluster-port-offset"`

	// Request limits.
	MaxBodyBytes     int64 `yaml:"max-body-bytes"`
	MaxNameLen       int   `yaml:"max-name-len"`
	MaxMetadataKeys  int   `yaml:"max-metadata-keys"`
	MaxMetadataBytes int   `yaml:"max-metadata-bytes"`

	// UDPPush enables v1 UDP push to subscribers.
	UDPPush bool `yaml:"udp-push"`
	// PushMergeWindow merges changes to one service into one push.
	PushMergeWindow time.Duration `yaml:"push-merge-window"`
	// PushAckTimeout is how long a UDP push waits for its ack before a resend.
	PushAckTimeout time.Duration `yaml:"push-ack-timeout"`
	// CacheMillis is the cacheMillis clients are told.
	CacheMillis int64 `yaml:"cache-millis"`

	// ExpireMaxFraction caps heartbeat expiry per window (0 disables).
	ExpireMaxFraction float64 `yaml:"expire-max-fraction"`

	// Distro timings.
	SyncDelay          time.Duration `yaml:"sync-delay"`
	SyncRetryMax       time.Duration `yaml:"sync-retry-max"`
	VerifyInterval     time.Duration `yaml:"verify-interval"`
	ProbeInterval      time.Duration `yaml:"probe-interval"`
	ProbeTimeout       time.Duration `yaml:"probe-timeout"`
	TombstoneRetention time.Duration `yaml:"tombstone-retention"`
	// TombstoneHoldMax bounds how long tombstones are kept past the
	// retention for a member that has not acknowledged them (it was
	// unreachable); 0 keeps them until it returns.
	TombstoneHoldMax time.Duration `yaml:"tombstone-hold-max"`
	// StartupTimeout: a node that reaches no peer for this long starts as
	// the first node of the cluster (ready without a snapshot).
	StartupTimeout time.Duration `yaml:"startup-timeout"`
	// ConnLease bounds how long peers keep instances of gRPC connections
	// held by a node they can no longer reach.
	ConnLease time.Duration `yaml:"conn-lease"`

	// Server-side health checks of persistent instances.
	HealthChecks         bool          `yaml:"health-checks"`
	HealthCheckDefault   string        `yaml:"health-check-default"`
	HealthCheckInterval  time.Duration `yaml:"health-check-interval"`
	HealthCheckTimeout   time.Duration `yaml:"health-check-timeout"`
	HealthCheckThreshold int           `yaml:"health-check-threshold"`
	HealthCheckWorkers   int           `yaml:"health-check-workers"`
	// HealthCheckDeny and HealthCheckAllow are comma-separated CIDR lists
	// of the addresses checks must not, and (when not empty) may only,
	// connect to (addrpolicy). The default denies link-local and cloud
	// metadata addresses.
	HealthCheckDeny  string `yaml:"health-check-deny"`
	HealthCheckAllow string `yaml:"health-check-allow"`
	// DataDir holds what a node keeps on disk: the persistent (CP) data
	// (Raft log and snapshots), auth.json, the generated token key.
	DataDir string `yaml:"data-dir"`

	// Auth turns client authentication on or off; unset ("") means on in a
	// cluster and off standalone.
	Auth Toggle `yaml:"auth"`
	// AuthTokenSecret signs access tokens (≥ 32 bytes). Unset: derived from
	// ClusterSecret in a cluster, generated and kept in DataDir standalone.
	AuthTokenSecret string `yaml:"auth-token-secret"`
	// AuthTokenTTL is the lifetime of access tokens (Nacos: 18000 s).
	AuthTokenTTL time.Duration `yaml:"auth-token-ttl"`
	// AuthAdminUser and AuthAdminPassword define a global admin; without a
	// password a standalone node generates one at first start.
	AuthAdminUser     string `yaml:"auth-admin-user"`
	AuthAdminPassword string `yaml:"auth-admin-password"`
	// AuthMetrics makes /metrics need a global admin.
	AuthMetrics bool `yaml:"auth-metrics"`
	// Console serves the web console at /ui/ and /nacos/.
	Console bool `yaml:"console"`
	// ConsoleEdit lets the console change the registry when client
	// authentication is off (with auth on, users' permissions decide).
	ConsoleEdit bool `yaml:"console-edit"`
	// ConsoleAllowedHosts are the host names (comma-separated) the console
	// answers under besides IP addresses and localhost, while it is open
	// for edits without auth (a DNS rebinding defence).
	ConsoleAllowedHosts string `yaml:"console-allowed-hosts"`
	// RaftPortOffset places the Raft port at Port+RaftPortOffset (Nacos's
	// JRaft port is 7848 = 8848 - 1000).
	RaftPortOffset int `yaml:"raft-port-offset"`
	// Raft timings: a follower that hears no leader for the heartbeat
	// timeout starts an election; the leader steps down after half of it
	// without a quorum.
	RaftHeartbeatTimeout time.Duration `yaml:"raft-heartbeat-timeout"`
	RaftElectionTimeout  time.Duration `yaml:"raft-election-timeout"`
	// RaftSnapshotThreshold: log entries between state-machine snapshots.
	RaftSnapshotThreshold int `yaml:"raft-snapshot-threshold"`
	// RaftWriteTimeout bounds a persistent write (forwarding and commit).
	RaftWriteTimeout time.Duration `yaml:"raft-write-timeout"`
	// RaftTrailingLogs: log entries kept after a snapshot, so a slightly
	// lagging follower catches up from the log (hidden; tests lower it to
	// force snapshot installs).
	RaftTrailingLogs int `yaml:"raft-trailing-logs"`
	// RaftSnapshotInterval is how often the snapshot threshold is checked.
	RaftSnapshotInterval time.Duration `yaml:"raft-snapshot-interval"`
	// RaftAnySource accepts Raft connections from any source address. By
	// default, when every member is an IP literal, connections from other
	// addresses are refused before the handshake; members behind NAT need
	// this.
	RaftAnySource bool `yaml:"raft-any-source"`

	// NamespaceValidation refuses naming writes into namespaces that were
	// never created (Nacos: nacos.core.namespace.validation.enabled).
	NamespaceValidation bool `yaml:"namespace-validation"`
	// PprofAddr, when set, serves net/http/pprof on its own listener (for
	// profiling; keep it on loopback).
	PprofAddr string `yaml:"pprof-addr"`

	// DebugClockOffset shifts this node's wall clock, as its version stamps
	// and every other wall reading see it. It exists for fault-injection
	// tests of clock skew (hidden flag).
	DebugClockOffset time.Duration `yaml:"debug-clock-offset"`
}

// Default returns the defaults.
func Default() Config {
	l := model.DefaultLimits()
	return Config{
		Port: 8848, Bind: "0.0.0.0", LogLevel: "info", LogFormat: "text",
		AddressServerInterval: 5 * time.Second, MembersDNSInterval: 5 * time.Second, GRPCPortOffset: 1000, ClusterPortOffset: 1001,
		MaxBodyBytes: l.MaxBodyBytes, MaxNameLen: l.MaxNameLen, MaxMetadataKeys: l.MaxMetadataKeys, MaxMetadataBytes: l.MaxMetadataBytes,
		UDPPush: true, PushMergeWindow: 20 * time.Millisecond, PushAckTimeout: time.Second, CacheMillis: 10000,
		ExpireMaxFraction: 0.15,
		SyncDelay:         20 * time.Millisecond, SyncRetryMax: 5 * time.Second, VerifyInterval: 5 * time.Second,
		ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, TombstoneRetention: 10 * time.Minute,
		TombstoneHoldMax: 24 * time.Hour, StartupTimeout: 15 * time.Second, ConnLease: 30 * time.Second,
		HealthChecks: true, HealthCheckDefault: "TCP", HealthCheckInterval: 5 * time.Second, HealthCheckTimeout: 2 * time.Second,
		HealthCheckThreshold: 3, HealthCheckWorkers: 32, HealthCheckDeny: addrpolicy.DefaultDeny,
		DataDir: "./data", AuthTokenTTL: 18000 * time.Second, AuthAdminUser: "nacos",
		Console:        true,
		RaftPortOffset: -1000, RaftHeartbeatTimeout: time.Second, RaftElectionTimeout: time.Second,
		RaftSnapshotThreshold: 8192, RaftWriteTimeout: 5 * time.Second, RaftTrailingLogs: 10240, RaftSnapshotInterval: 2 * time.Minute,
	}
}

// HealthCheckAddrs is the address policy of health checks (valid after
// Validate).
func (c *Config) HealthCheckAddrs() addrpolicy.Policy {
	p, _ := addrpolicy.Parse(c.HealthCheckDeny, c.HealthCheckAllow)
	return p
}

// Limits returns the request limits.
func (c *Config) Limits() model.Limits {
	return model.Limits{MaxNameLen: c.MaxNameLen, MaxMetadataKeys: c.MaxMetadataKeys, MaxMetadataBytes: c.MaxMetadataBytes, MaxBodyBytes: c.MaxBodyBytes}
}

// RaftAddr is the Raft listen address (cluster mode).
func (c *Config) RaftAddr() string {
	return net.JoinHostPort(c.Bind, fmt.Sprint(c.Port+c.RaftPortOffset))
}

// Clustered reports whether any member source is configured.
func (c *Config) Clustered() bool {
	return c.ClusterConf != "" || c.Members != "" || c.AddressServer != "" || c.MembersDNS != ""
}

// AuthEnabled resolves --auth: explicit, else on exactly in a cluster.
func (c *Config) AuthEnabled() bool {
	if v, ok := c.Auth.Get(); ok {
		return v
	}
	return c.Clustered()
}

// HTTPAddr, GRPCAddr and ClusterAddr are the listen addresses.
func (c *Config) HTTPAddr() string { return net.JoinHostPort(c.Bind, fmt.Sprint(c.Port)) }

// GRPCAddr is the client gRPC (Nacos 2) listen address.
func (c *Config) GRPCAddr() string {
	return net.JoinHostPort(c.Bind, fmt.Sprint(c.Port+c.GRPCPortOffset))
}

// ClusterAddr is the cluster gRPC listen address.
func (c *Config) ClusterAddr() string {
	return net.JoinHostPort(c.Bind, fmt.Sprint(c.Port+c.ClusterPortOffset))
}

// Validate checks every field and names the offending one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Port < 1 || c.Port+c.ClusterPortOffset > 65535 || c.Port+c.GRPCPortOffset > 65535 {
		bad("port", "%d leaves no room for the gRPC (+%d) and cluster (+%d) ports", c.Port, c.GRPCPortOffset, c.ClusterPortOffset)
	}
	if c.Clustered() {
		if rp := c.Port + c.RaftPortOffset; rp < 1 || rp > 65535 || c.RaftPortOffset == 0 || c.RaftPortOffset == c.GRPCPortOffset || c.RaftPortOffset == c.ClusterPortOffset {
			bad("raft-port-offset", "port %d%+d = %d is not a free, valid port", c.Port, c.RaftPortOffset, rp)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data-dir", "must not be empty")
	}
	if c.RaftSnapshotThreshold < 1 || c.RaftTrailingLogs < 0 {
		bad("raft-snapshot-threshold", "must be positive")
	}
	if c.RaftElectionTimeout < c.RaftHeartbeatTimeout {
		bad("raft-election-timeout", "must be at least raft-heartbeat-timeout")
	}
	if net.ParseIP(c.Bind) == nil && c.Bind != "localhost" {
		bad("bind", "%q is not an IP address", c.Bind)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			bad("pprof-addr", "%q is not host:port", c.PprofAddr)
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q is not text or json", c.LogFormat)
	}
	n := 0
	for _, s := range []string{c.ClusterConf, c.Members, c.AddressServer, c.MembersDNS} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		bad("cluster-conf/members/address-server/members-dns", "give only one member source")
	}
	if c.Clustered() && !c.InsecureCluster {
		switch {
		case c.ClusterSecret == "":
			bad("cluster-secret", "a cluster needs a secret of at least 32 bytes (or --insecure-cluster for tests)")
		case len(c.ClusterSecret) < 32:
			bad("cluster-secret", "is %d bytes; at least 32 are required", len(c.ClusterSecret))
		}
	}
	if c.MaxBodyBytes < 1024 {
		bad("max-body-bytes", "%d is below 1024", c.MaxBodyBytes)
	}
	if c.MaxNameLen < 1 || c.MaxMetadataKeys < 0 || c.MaxMetadataBytes < 0 {
		bad("limits", "must be positive")
	}
	if pl := model.ProtocolLimits(); c.MaxNameLen > pl.MaxNameLen || c.MaxMetadataKeys > pl.MaxMetadataKeys || c.MaxMetadataBytes > pl.MaxMetadataBytes {
		bad("limits", "max-name-len, max-metadata-keys and max-metadata-bytes may be at most %d, %d and %d (the protocol's fixed maxima)",
			pl.MaxNameLen, pl.MaxMetadataKeys, pl.MaxMetadataBytes)
	}
	if c.ExpireMaxFraction < 0 || c.ExpireMaxFraction > 1 {
		bad("expire-max-fraction", "%v is not in 0-1", c.ExpireMaxFraction)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"push-merge-window", c.PushMergeWindow}, {"push-ack-timeout", c.PushAckTimeout}, {"sync-delay", c.SyncDelay},
		{"sync-retry-max", c.SyncRetryMax}, {"verify-interval", c.VerifyInterval}, {"probe-interval", c.ProbeInterval},
		{"probe-timeout", c.ProbeTimeout}, {"tombstone-retention", c.TombstoneRetention}, {"startup-timeout", c.StartupTimeout},
		{"conn-lease", c.ConnLease}, {"address-server-interval", c.AddressServerInterval},
		{"members-dns-interval", c.MembersDNSInterval},
		{"raft-heartbeat-timeout", c.RaftHeartbeatTimeout}, {"raft-election-timeout", c.RaftElectionTimeout}, {"raft-write-timeout", c.RaftWriteTimeout}, {"raft-snapshot-interval", c.RaftSnapshotInterval}} {
		if d.v <= 0 {
			bad(d.name, "must be positive")
		}
	}
	if !strings.EqualFold(c.HealthCheckDefault, "NONE") && !strings.EqualFold(c.HealthCheckDefault, "TCP") {
		bad("health-check-default", "%q is not NONE or TCP", c.HealthCheckDefault)
	}
	if c.HealthCheckInterval < 100*time.Millisecond {
		bad("health-check-interval", "%v is below 100ms", c.HealthCheckInterval)
	}
	if c.HealthCheckTimeout <= 0 {
		bad("health-check-timeout", "must be positive")
	}
	if c.HealthCheckThreshold < 1 || c.HealthCheckThreshold > 100 {
		bad("health-check-threshold", "%d is not in 1-100", c.HealthCheckThreshold)
	}
	if c.HealthCheckWorkers < 1 || c.HealthCheckWorkers > 4096 {
		bad("health-check-workers", "%d is not in 1-4096", c.HealthCheckWorkers)
	}
	if _, err := addrpolicy.ParseList(c.HealthCheckDeny); err != nil {
		bad("health-check-deny", "%v", err)
	}
	if _, err := addrpolicy.ParseList(c.HealthCheckAllow); err != nil {
		bad("health-check-allow", "%v", err)
	}
	if c.AuthEnabled() {
		switch {
		case c.AuthTokenSecret != "" && len(c.AuthTokenSecret) < 32:
			bad("auth-token-secret", "is %d bytes; at least 32 are required", len(c.AuthTokenSecret))
		case c.AuthTokenSecret == "" && c.Clustered() && c.ClusterSecret == "":
			bad("auth-token-secret", "a cluster with --auth and without --cluster-secret needs --auth-token-secret (the same on every node)")
		}
		if c.AuthTokenTTL < time.Second {
			bad("auth-token-ttl", "must be at least 1s")
		}
		if c.AuthAdminPassword != "" && len(c.AuthAdminPassword) < 8 {
			bad("auth-admin-password", "is %d characters; at least 8 are required", len(c.AuthAdminPassword))
		}
		if c.AuthAdminPassword != "" && len(c.AuthAdminPassword) > 72 {
			bad("auth-admin-password", "is longer than 72 bytes (bcrypt's limit)")
		}
		if c.DataDir == "" {
			bad("data-dir", "must be set with --auth")
		}
	}
	if c.TombstoneRetention < 2*c.VerifyInterval {
		bad("tombstone-retention", "must be at least twice verify-interval")
	}
	if c.TombstoneHoldMax < 0 || (c.TombstoneHoldMax > 0 && c.TombstoneHoldMax < c.TombstoneRetention) {
		bad("tombstone-hold-max", "must be 0 (no limit) or at least tombstone-retention")
	}
	return errors.Join(errs...)
}

// RegisterFlags binds every setting to a flag on fs, with c's values as defaults.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file")
	fs.IntVar(&c.Port, "port", c.Port, "HTTP port; client gRPC is port+1000, cluster gRPC port+1001")
	fs.StringVar(&c.Bind, "bind", c.Bind, "address to bind every listener to")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "this node's member identity ip:port (default: derived from the member list)")
	fs.StringVar(&c.ClusterConf, "cluster-conf", c.ClusterConf, "Nacos cluster.conf member file, watched for changes")
	fs.StringVar(&c.Members, "members", c.Members, "static member list ip:port,ip:port,...")
	fs.StringVar(&c.AddressServer, "address-server", c.AddressServer, "URL that answers the member list; polled")
	fs.DurationVar(&c.AddressServerInterval, "address-server-interval", c.AddressServerInterval, "address server poll period")
	fs.StringVar(&c.MembersDNS, "members-dns", c.MembersDNS, "DNS name whose SRV (_service._proto.name) or A/AAAA records are the members, e.g. a Kubernetes headless Service; re-resolved")
	fs.DurationVar(&c.MembersDNSInterval, "members-dns-interval", c.MembersDNSInterval, "members-dns re-resolution period")
	fs.StringVar(&c.ClusterSecret, "cluster-secret", c.ClusterSecret, "shared secret (≥ 32 bytes) authenticating cluster calls")
	fs.BoolVar(&c.InsecureCluster, "insecure-cluster", c.InsecureCluster, "run a cluster without a secret (tests only)")
	fs.IntVar(&c.GRPCPortOffset, "grpc-port-offset", c.GRPCPortOffset, "client gRPC port = port + offset")
	fs.IntVar(&c.ClusterPortOffset, "cluster-port-offset", c.ClusterPortOffset, "cluster gRPC port = port + offset")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest accepted request body (413 beyond)")
	fs.IntVar(&c.MaxNameLen, "max-name-len", c.MaxNameLen, "longest namespace, group, service or cluster name")
	fs.IntVar(&c.MaxMetadataKeys, "max-metadata-keys", c.MaxMetadataKeys, "most metadata entries per instance or service")
	fs.IntVar(&c.MaxMetadataBytes, "max-metadata-bytes", c.MaxMetadataBytes, "largest total metadata size")
	fs.BoolVar(&c.UDPPush, "udp-push", c.UDPPush, "push changes to v1 subscribers over UDP")
	fs.DurationVar(&c.PushMergeWindow, "push-merge-window", c.PushMergeWindow, "changes within this window become one push")
	fs.DurationVar(&c.PushAckTimeout, "push-ack-timeout", c.PushAckTimeout, "UDP push resend timeout")
	fs.Int64Var(&c.CacheMillis, "cache-millis", c.CacheMillis, "cacheMillis told to clients")
	fs.Float64Var(&c.ExpireMaxFraction, "expire-max-fraction", c.ExpireMaxFraction, "most of the owned instances that may expire per 30 s window (0 disables the cap)")
	fs.DurationVar(&c.SyncDelay, "sync-delay", c.SyncDelay, "delay that merges changes before they are sent to peers")
	fs.DurationVar(&c.SyncRetryMax, "sync-retry-max", c.SyncRetryMax, "longest backoff between sync retries")
	fs.DurationVar(&c.VerifyInterval, "verify-interval", c.VerifyInterval, "anti-entropy digest period")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", c.ProbeInterval, "peer health probe period")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", c.ProbeTimeout, "peer health probe timeout")
	fs.DurationVar(&c.TombstoneRetention, "tombstone-retention", c.TombstoneRetention, "how long deletions are remembered")
	fs.DurationVar(&c.TombstoneHoldMax, "tombstone-hold-max", c.TombstoneHoldMax, "longest that deletions are kept past the retention for an unreachable member (0: until it returns)")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", c.StartupTimeout, "start as the first node if no peer answers for this long")
	fs.DurationVar(&c.ConnLease, "conn-lease", c.ConnLease, "lifetime of gRPC-client instances held by an unreachable node")
	fs.BoolVar(&c.HealthChecks, "health-checks", c.HealthChecks, "check persistent instances from the server (TCP/HTTP, per-cluster healthChecker)")
	fs.StringVar(&c.HealthCheckDefault, "health-check-default", c.HealthCheckDefault, "checker of clusters without explicit settings: TCP (Nacos's default: every persistent instance is checked) or NONE")
	fs.DurationVar(&c.HealthCheckInterval, "health-check-interval", c.HealthCheckInterval, "period of each persistent instance's check (a cluster can set its own)")
	fs.DurationVar(&c.HealthCheckTimeout, "health-check-timeout", c.HealthCheckTimeout, "timeout of one check (a cluster can set its own)")
	fs.IntVar(&c.HealthCheckThreshold, "health-check-threshold", c.HealthCheckThreshold, "consecutive failures (successes) that mark an instance unhealthy (healthy again)")
	fs.IntVar(&c.HealthCheckWorkers, "health-check-workers", c.HealthCheckWorkers, "most health checks in flight at once")
	fs.StringVar(&c.HealthCheckDeny, "health-check-deny", c.HealthCheckDeny, "comma-separated CIDRs health checks never connect to (default: link-local and cloud metadata addresses; loopback is allowed unless listed)")
	fs.StringVar(&c.HealthCheckAllow, "health-check-allow", c.HealthCheckAllow, "comma-separated CIDRs health checks may only connect to (empty: any address not denied)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for what the node keeps on disk (Raft log and snapshots, auth.json, generated token key)")
	fs.Var(&c.Auth, "auth", "authenticate and authorize clients (default: on in a cluster, off standalone)")
	fs.Lookup("auth").NoOptDefVal = "true"
	fs.StringVar(&c.AuthTokenSecret, "auth-token-secret", c.AuthTokenSecret, "key (≥ 32 bytes) signing access tokens; same on every node (default: derived from --cluster-secret, or generated in --data-dir standalone)")
	fs.DurationVar(&c.AuthTokenTTL, "auth-token-ttl", c.AuthTokenTTL, "lifetime of access tokens")
	fs.StringVar(&c.AuthAdminUser, "auth-admin-user", c.AuthAdminUser, "name of the global admin user")
	fs.StringVar(&c.AuthAdminPassword, "auth-admin-password", c.AuthAdminPassword, "password of the global admin (prefer DISTRO_AUTH_ADMIN_PASSWORD; default: generated and printed once at first start)")
	fs.BoolVar(&c.AuthMetrics, "auth-metrics", c.AuthMetrics, "require a global admin for /metrics")
	fs.BoolVar(&c.Console, "console", c.Console, "serve the web console at /ui/ and /nacos/")
	fs.BoolVar(&c.ConsoleEdit, "console-edit", c.ConsoleEdit, "allow changes from the web console while client auth is off (default read-only)")
	fs.StringVar(&c.ConsoleAllowedHosts, "console-allowed-hosts", c.ConsoleAllowedHosts, "with --console-edit and auth off: host names (comma-separated) the console answers under besides IP addresses and localhost")
	fs.IntVar(&c.RaftPortOffset, "raft-port-offset", c.RaftPortOffset, "Raft port = port + offset (cluster mode)")
	fs.DurationVar(&c.RaftHeartbeatTimeout, "raft-heartbeat-timeout", c.RaftHeartbeatTimeout, "Raft follower timeout before an election; the leader steps down after half of it without a quorum")
	fs.DurationVar(&c.RaftElectionTimeout, "raft-election-timeout", c.RaftElectionTimeout, "Raft candidate timeout")
	fs.IntVar(&c.RaftSnapshotThreshold, "raft-snapshot-threshold", c.RaftSnapshotThreshold, "Raft log entries between state snapshots")
	fs.DurationVar(&c.RaftWriteTimeout, "raft-write-timeout", c.RaftWriteTimeout, "longest wait for a persistent write to commit")
	fs.BoolVar(&c.RaftAnySource, "raft-any-source", c.RaftAnySource, "accept Raft connections from addresses that are no member's (members behind NAT)")
	fs.BoolVar(&c.NamespaceValidation, "namespace-validation", c.NamespaceValidation, "refuse naming writes into namespaces that were never created")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "serve net/http/pprof on this address, e.g. 127.0.0.1:6060 (default off)")
	fs.DurationVar(&c.DebugClockOffset, "debug-clock-offset", c.DebugClockOffset, "shift this node's wall clock (fault-injection tests only)")
	fs.IntVar(&c.RaftTrailingLogs, "raft-trailing-logs", c.RaftTrailingLogs, "Raft log entries kept after a snapshot")
	_ = fs.MarkHidden("debug-clock-offset")
	fs.DurationVar(&c.RaftSnapshotInterval, "raft-snapshot-interval", c.RaftSnapshotInterval, "how often the Raft snapshot threshold is checked")
	_ = fs.MarkHidden("raft-trailing-logs")
	_ = fs.MarkHidden("raft-snapshot-interval")
}

// Load resolves the final configuration after fs has parsed the command
// line: defaults, then the YAML file (--config or DISTRO_CONFIG), then
// DISTRO_* variables, then flags given on the command line.
func Load(fs *pflag.FlagSet, c *Config, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	given := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = f.Value.String() })
	path := given["config"]
	if path == "" {
		path = getenv("DISTRO_CONFIG")
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file sets nothing
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" {
			return
		}
		if v, ok := given[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
			}
			return
		}
		env := "DISTRO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.Validate()
}
