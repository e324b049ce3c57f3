package clustergrpc

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Defaults applied to zero-valued config fields.
const (
	// DefaultPortOffset is added to a member's HTTP port to get its
	// cluster gRPC port (Nacos uses the same offset).
	DefaultPortOffset = 1001
	// DefaultMaxMsgBytes bounds any single gRPC message in either
	// direction. Snapshots never come near it: they are chunked.
	DefaultMaxMsgBytes = 64 << 20
	// DefaultKeepaliveTime is how often an idle connection is pinged.
	DefaultKeepaliveTime = 10 * time.Second
	// DefaultKeepaliveTimeout is how long a ping may go unanswered before
	// the connection is closed.
	DefaultKeepaliveTimeout = 3 * time.Second
	// DefaultDialTimeout bounds one connection attempt.
	DefaultDialTimeout = 3 * time.Second
	// DefaultConnectTimeout bounds the TCP connect of one attempt. A SYN
	// lost to a partition is otherwise retransmitted only after a second
	// (Linux), which delays noticing the heal; a probe then starts a new
	// attempt at once (see Call).
	DefaultConnectTimeout = 500 * time.Millisecond
	// DefaultReconnectMaxDelay caps the backoff between reconnection
	// attempts, so that a peer that comes back is reached quickly.
	DefaultReconnectMaxDelay = 2 * time.Second
	// DefaultCallTimeout applies to a Call whose context has no deadline.
	DefaultCallTimeout = 5 * time.Second
	// DefaultSnapshotIdleTimeout aborts a snapshot stream when no chunk
	// arrives for this long.
	DefaultSnapshotIdleTimeout = 30 * time.Second
	// DefaultMaxConcurrentStreams bounds concurrent RPCs per connection
	// on the server.
	DefaultMaxConcurrentStreams = 1024
	// DefaultAuthLogInterval is the least time between two auth-failure
	// log lines; failures in between are summarized as a count.
	DefaultAuthLogInterval = time.Second
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Signer signs requests and verifies responses. Required. Use the same
	// Signer as the node's Server so one replay cache sees every nonce.
	Signer *clusterauth.Signer
	// PortOffset is added to a peer's HTTP port to reach its cluster port
	// (0 means DefaultPortOffset).
	PortOffset int
	// MaxMsgBytes bounds a message sent or received (0 means
	// DefaultMaxMsgBytes).
	MaxMsgBytes int
	// KeepaliveTime and KeepaliveTimeout set the HTTP/2 ping cadence of
	// idle connections (0 means the defaults). The server permits pings
	// as often as every 5 s.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// DialTimeout bounds one connection attempt (0 means
	// DefaultDialTimeout).
	DialTimeout time.Duration
	// ConnectTimeout bounds the TCP connect of one attempt (0 means
	// DefaultConnectTimeout; never more than DialTimeout).
	ConnectTimeout time.Duration
	// ReconnectMaxDelay caps reconnection backoff (0 means
	// DefaultReconnectMaxDelay).
	ReconnectMaxDelay time.Duration
	// CallTimeout applies to a Call whose context has no deadline (0
	// means DefaultCallTimeout; negative means none).
	CallTimeout time.Duration
	// SnapshotIdleTimeout aborts a snapshot when no chunk arrives for this
	// long (0 means DefaultSnapshotIdleTimeout; negative means never).
	SnapshotIdleTimeout time.Duration
	// Credentials secures the connection (e.g. TLS). Nil means plaintext:
	// envelopes are still authenticated, but not encrypted.
	Credentials credentials.TransportCredentials
	// OnAuthFailure, if set, is called with a clusterauth.Reason (or
	// "wrong_peer") whenever a response fails verification.
	OnAuthFailure func(reason string)
	// Logger receives diagnostics (slog.Default() if nil).
	Logger *slog.Logger
	// DialOptions are appended to the client's own dial options.
	DialOptions []grpc.DialOption
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Signer == nil {
		panic("clustergrpc: ClientConfig.Signer is required")
	}
	c.PortOffset = orDefault(c.PortOffset, DefaultPortOffset)
	c.MaxMsgBytes = orDefault(c.MaxMsgBytes, DefaultMaxMsgBytes)
	c.KeepaliveTime = orDefault(c.KeepaliveTime, DefaultKeepaliveTime)
	c.KeepaliveTimeout = orDefault(c.KeepaliveTimeout, DefaultKeepaliveTimeout)
	c.DialTimeout = orDefault(c.DialTimeout, DefaultDialTimeout)
	c.ConnectTimeout = min(orDefault(c.ConnectTimeout, DefaultConnectTimeout), c.DialTimeout)
	c.ReconnectMaxDelay = orDefault(c.ReconnectMaxDelay, DefaultReconnectMaxDelay)
	c.CallTimeout = orDefault(c.CallTimeout, DefaultCallTimeout)
	c.SnapshotIdleTimeout = orDefault(c.SnapshotIdleTimeout, DefaultSnapshotIdleTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Signer verifies requests and signs responses. Required.
	Signer *clusterauth.Signer
	// IsMember, if set, must accept the verified sender; calls from
	// non-members are refused with codes.PermissionDenied and counted as
	// auth failures ("not_member").
	IsMember func(member string) bool
	// OnAuthFailure, if set, is called with a short reason
	// (clusterauth.Reason, or "not_member") for every refused call. Wire
	// it to a counter, e.g. a prometheus CounterVec labelled by reason.
	OnAuthFailure func(reason string)
	// Logger receives auth-failure lines (rate-limited) and diagnostics
	// (slog.Default() if nil).
	Logger *slog.Logger
	// AuthLogInterval is the least time between two auth-failure log
	// lines (0 means DefaultAuthLogInterval).
	AuthLogInterval time.Duration
	// MaxMsgBytes bounds a message sent or received (0 means
	// DefaultMaxMsgBytes).
	MaxMsgBytes int
	// MaxChunkBytes bounds the serialized size of one snapshot chunk; a
	// Handler that sends a larger one gets an error from send (0 means
	// clusterpb.MaxChunkBytes).
	MaxChunkBytes int
	// MaxConcurrentStreams bounds concurrent RPCs per connection (0 means
	// DefaultMaxConcurrentStreams).
	MaxConcurrentStreams uint32
	// KeepaliveTime and KeepaliveTimeout set the server's own pings of
	// idle connections (0 means the defaults).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Credentials secures the listener (e.g. TLS). Nil means plaintext.
	Credentials credentials.TransportCredentials
	// ServerOptions are appended to the server's own options.
	ServerOptions []grpc.ServerOption
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Signer == nil {
		panic("clustergrpc: ServerConfig.Signer is required")
	}
	c.AuthLogInterval = orDefault(c.AuthLogInterval, DefaultAuthLogInterval)
	c.MaxMsgBytes = orDefault(c.MaxMsgBytes, DefaultMaxMsgBytes)
	c.MaxChunkBytes = orDefault(c.MaxChunkBytes, clusterpb.MaxChunkBytes)
	c.MaxConcurrentStreams = orDefault(c.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	c.KeepaliveTime = orDefault(c.KeepaliveTime, DefaultKeepaliveTime)
	c.KeepaliveTimeout = orDefault(c.KeepaliveTimeout, DefaultKeepaliveTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func orDefault[T int | uint32 | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// ClusterAddr returns the cluster gRPC address of member (ip:httpPort or
// host:httpPort): the same host, port httpPort+offset.
func ClusterAddr(member string, offset int) (string, error) {
	host, p, err := net.SplitHostPort(member)
	if err != nil {
		return "", fmt.Errorf("clustergrpc: member %q: %w", member, err)
	}
	port, err := strconv.Atoi(p)
	if host == "" || err != nil || port < 1 || port > 65535 {
		return "", fmt.Errorf("clustergrpc: member %q: want host:port with port 1..65535", member)
	}
	cp := port + offset
	if cp < 1 || cp > 65535 {
		return "", fmt.Errorf("clustergrpc: member %q: cluster port %d+%d out of range", member, port, offset)
	}
	return net.JoinHostPort(host, strconv.Itoa(cp)), nil
}
