package clustergrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Client sends cluster traffic to peers. It implements the Distro engine's
// Transport interface and is safe for concurrent use.
//
// It keeps one long-lived grpc.ClientConn per peer, created on first use
// and reused by every later call (gRPC multiplexes concurrent calls over
// it and reconnects it after failures). Retain drops the connections of
// peers that left; Close drops all of them.
type Client struct {
	cfg     ClientConfig
	authLog rateLimiter

	mu     sync.Mutex
	peers  map[string]*peerConn
	closed bool
}

// peerConn is the cached connection to one peer.
type peerConn struct {
	addr    string
	cc      *grpc.ClientConn
	stub    clusterpb.ClusterClient
	refused atomic.Bool // the latest connection attempt was refused
}

// NewClient returns a Client. It dials nothing until the first call to a
// peer. It panics if cfg.Signer is nil.
func NewClient(cfg ClientConfig) *Client {
	cfg = cfg.withDefaults()
	if cfg.Signer.IsInsecure() {
		cfg.Logger.Warn("cluster client is INSECURE: peer messages are not authenticated")
	}
	return &Client{cfg: cfg, peers: make(map[string]*peerConn), authLog: rateLimiter{every: DefaultAuthLogInterval}}
}

// Call sends req to peer and returns its verified response. If ctx has no
// deadline, ClientConfig.CallTimeout applies. A refused connection yields
// an error for which IsRefused is true; gRPC errors keep their status
// (status.Code(err) works on the returned error).
func (c *Client) Call(ctx context.Context, peer string, req *clusterpb.Request) (*clusterpb.Response, error) {
	switch req.GetKind().(type) {
	case nil:
		return nil, fmt.Errorf("%w: request has no kind", ErrProtocol)
	case *clusterpb.Request_Snapshot:
		return nil, fmt.Errorf("%w: snapshots use Snapshot, not Call", ErrProtocol)
	}
	pc, err := c.peer(peer)
	if err != nil {
		return nil, err
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("clustergrpc: marshal request: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok && c.cfg.CallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	if _, probe := req.GetKind().(*clusterpb.Request_Probe); probe && pc.cc.GetState() == connectivity.TransientFailure {
		// Probes are how a peer that was unreachable is seen again: each
		// one tries to connect now, instead of failing fast until gRPC's
		// reconnect backoff (up to ReconnectMaxDelay) runs out, so a heal
		// is noticed within one probe interval.
		pc.cc.ResetConnectBackoff()
		wctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		pc.cc.WaitForStateChange(wctx, connectivity.TransientFailure)
		cancel()
	}
	out, err := pc.stub.Call(ctx, c.cfg.Signer.Sign(peer, body))
	if err != nil {
		return nil, c.callError(ctx, pc, peer, "call", err)
	}
	resp, err := c.open(peer, out)
	if err != nil {
		return nil, fmt.Errorf("clustergrpc: call %s: %w", peer, err)
	}
	if _, ok := resp.Kind.(*clusterpb.Response_Chunk); ok {
		return nil, fmt.Errorf("clustergrpc: call %s: %w: snapshot chunk in reply to a call", peer, ErrProtocol)
	}
	return resp, nil
}

// Snapshot asks peer for a full snapshot and calls fn with every chunk in
// order until the chunk marked last, fn's first error, a stream error, or
// ctx's end. Chunks are checked for authenticity and sequence; a stream
// that ends without its last chunk is an error (ErrProtocol wrapping
// io.ErrUnexpectedEOF). fn's own error is returned unwrapped. The stream is
// abandoned if no chunk arrives within ClientConfig.SnapshotIdleTimeout
// (the error then matches context.DeadlineExceeded).
func (c *Client) Snapshot(ctx context.Context, peer string, req *clusterpb.SnapshotRequest, fn func(*clusterpb.SnapshotChunk) error) error {
	pc, err := c.peer(peer)
	if err != nil {
		return err
	}
	if req == nil {
		req = &clusterpb.SnapshotRequest{}
	}
	body, err := proto.Marshal(&clusterpb.Request{Kind: &clusterpb.Request_Snapshot{Snapshot: req}})
	if err != nil {
		return fmt.Errorf("clustergrpc: marshal request: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errIdle := fmt.Errorf("clustergrpc: snapshot %s: no chunk for %v: %w", peer, c.cfg.SnapshotIdleTimeout, context.DeadlineExceeded)
	var idle *time.Timer
	if c.cfg.SnapshotIdleTimeout > 0 {
		idle = time.AfterFunc(c.cfg.SnapshotIdleTimeout, func() { cancel(errIdle) })
		defer idle.Stop()
	}
	stream, err := pc.stub.Snapshot(ctx, c.cfg.Signer.Sign(peer, body))
	if err != nil {
		return c.callError(ctx, pc, peer, "snapshot", err)
	}
	for seq := uint64(0); ; seq++ {
		if idle != nil {
			idle.Reset(c.cfg.SnapshotIdleTimeout) // the wait for a chunk, not fn's time, is bounded
		}
		out, err := stream.Recv()
		if idle != nil {
			idle.Stop()
		}
		if err == io.EOF {
			return fmt.Errorf("clustergrpc: snapshot %s: %w: stream ended before the last chunk: %w", peer, ErrProtocol, io.ErrUnexpectedEOF)
		}
		if err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errIdle) {
				return cause
			}
			return c.callError(ctx, pc, peer, "snapshot", err)
		}
		resp, err := c.open(peer, out)
		if err != nil {
			return fmt.Errorf("clustergrpc: snapshot %s: %w", peer, err)
		}
		chunk := resp.GetChunk()
		if chunk == nil {
			return fmt.Errorf("clustergrpc: snapshot %s: %w: response is not a chunk", peer, ErrProtocol)
		}
		if chunk.Seq != seq {
			return fmt.Errorf("clustergrpc: snapshot %s: %w: chunk %d where %d was due", peer, ErrProtocol, chunk.Seq, seq)
		}
		if err := fn(chunk); err != nil {
			return err
		}
		if chunk.Last {
			return nil
		}
	}
}

// open verifies a response envelope from peer and decodes its body.
func (c *Client) open(peer string, env *clusterpb.Envelope) (*clusterpb.Response, error) {
	from, body, err := c.cfg.Signer.Verify(env)
	if err != nil {
		c.authFailed(peer, clusterauth.Reason(err))
		return nil, fmt.Errorf("response: %w", err)
	}
	if from != peer {
		c.authFailed(peer, "wrong_peer")
		return nil, fmt.Errorf("%w: signed by %q", ErrWrongPeer, from)
	}
	resp := new(clusterpb.Response)
	if err := proto.Unmarshal(body, resp); err != nil {
		return nil, fmt.Errorf("%w: decode response: %v", ErrProtocol, err)
	}
	if resp.Kind == nil {
		return nil, fmt.Errorf("%w: response of unknown kind", ErrProtocol)
	}
	return resp, nil
}

func (c *Client) authFailed(peer, reason string) {
	if c.cfg.OnAuthFailure != nil {
		c.cfg.OnAuthFailure(reason)
	}
	if ok, suppressed := c.authLog.allow(time.Now()); ok {
		c.cfg.Logger.Warn("cluster response failed verification", "peer", peer, "reason", reason, "suppressed", suppressed)
	}
}

// callError wraps a gRPC error from peer. Refused connections also match
// syscall.ECONNREFUSED; errors caused by ctx's end also match ctx.Err(),
// and every codes.DeadlineExceeded matches context.DeadlineExceeded.
func (c *Client) callError(ctx context.Context, pc *peerConn, peer, op string, err error) error {
	cerr := ctx.Err()
	if cerr == nil && status.Code(err) == codes.DeadlineExceeded {
		cerr = context.DeadlineExceeded // gRPC's deadline timer can fire just before ctx's
	}
	if cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", err, cerr)
	}
	err = fmt.Errorf("clustergrpc: %s %s: %w", op, peer, err)
	if status.Code(err) == codes.Unavailable &&
		(pc.refused.Load() || strings.Contains(err.Error(), "connection refused")) {
		return &refusedError{err: err}
	}
	return err
}

// peer returns the cached connection to peer, creating it on first use.
func (c *Client) peer(peer string) (*peerConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if pc, ok := c.peers[peer]; ok {
		return pc, nil
	}
	addr, err := ClusterAddr(peer, c.cfg.PortOffset)
	if err != nil {
		return nil, err
	}
	pc := &peerConn{addr: addr}
	cc, err := grpc.NewClient(addr, c.dialOptions(pc)...)
	if err != nil {
		return nil, fmt.Errorf("clustergrpc: peer %s: %w", peer, err)
	}
	pc.cc, pc.stub = cc, clusterpb.NewClusterClient(cc)
	c.peers[peer] = pc
	return pc, nil
}

func (c *Client) dialOptions(pc *peerConn) []grpc.DialOption {
	creds := c.cfg.Credentials
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	dialer := &net.Dialer{}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("distro-cluster"),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(c.cfg.MaxMsgBytes),
			grpc.MaxCallSendMsgSize(c.cfg.MaxMsgBytes),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                c.cfg.KeepaliveTime,
			Timeout:             c.cfg.KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   c.cfg.ReconnectMaxDelay,
			},
			MinConnectTimeout: c.cfg.DialTimeout,
		}),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
			defer cancel()
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			pc.refused.Store(errors.Is(err, syscall.ECONNREFUSED))
			return conn, err
		}),
	}
	return append(opts, c.cfg.DialOptions...)
}

// Retain closes the connections of every peer not in peers (typically the
// current member list). Calls in flight to a dropped peer fail.
func (c *Client) Retain(peers []string) {
	keep := make(map[string]bool, len(peers))
	for _, p := range peers {
		keep[p] = true
	}
	var drop []*peerConn
	c.mu.Lock()
	for name, pc := range c.peers {
		if !keep[name] {
			drop = append(drop, pc)
			delete(c.peers, name)
		}
	}
	c.mu.Unlock()
	for _, pc := range drop {
		_ = pc.cc.Close()
	}
}

// Close closes every connection. Later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	peers := c.peers
	c.peers, c.closed = nil, true
	c.mu.Unlock()
	var errs []error
	for _, pc := range peers {
		if err := pc.cc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
