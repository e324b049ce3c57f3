package clustergrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Handler serves cluster traffic on the receiving side. It is the Distro
// engine's Handler interface; implementations must be safe for concurrent
// use. from is always a verified member identity.
type Handler interface {
	// HandleCall answers one request (never a snapshot request). It must
	// return a non-nil Response of a known kind, or an error; an error
	// that carries a gRPC status (status.Error) is passed to the caller
	// as is, any other becomes codes.Internal.
	HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error)
	// HandleSnapshot streams a snapshot through send, one bounded chunk at
	// a time (see clusterpb.Chunker). send stamps each chunk's Seq, signs
	// and sends it; it fails once ctx is done, for a chunk above
	// ServerConfig.MaxChunkBytes (ErrChunkTooLarge), or for a chunk after
	// the one marked Last. If the handler returns nil without having sent
	// a Last chunk, an empty Last chunk is sent for it. send must not be
	// called after HandleSnapshot returns.
	HandleSnapshot(ctx context.Context, from string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error
}

// Server serves the Cluster gRPC service for a Handler.
type Server struct {
	cfg     ServerConfig
	h       Handler
	gs      *grpc.Server
	authLog rateLimiter
}

// NewServer returns a Server for h. It panics if cfg.Signer or h is nil.
func NewServer(cfg ServerConfig, h Handler) *Server {
	cfg = cfg.withDefaults()
	if h == nil {
		panic("clustergrpc: NewServer needs a Handler")
	}
	if cfg.Signer.IsInsecure() {
		cfg.Logger.Warn("cluster server is INSECURE: peer messages are not authenticated")
	}
	s := &Server{cfg: cfg, h: h, authLog: rateLimiter{every: cfg.AuthLogInterval}}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxMsgBytes),
		grpc.MaxSendMsgSize(cfg.MaxMsgBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}),
		// Clients ping idle connections every 10 s by default; the gRPC
		// default policy (5 min) would answer that with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	if cfg.Credentials != nil {
		opts = append(opts, grpc.Creds(cfg.Credentials))
	}
	s.gs = grpc.NewServer(append(opts, cfg.ServerOptions...)...)
	clusterpb.RegisterClusterServer(s.gs, service{s: s})
	return s
}

// Serve accepts connections on lis until Stop or GracefulStop; see
// grpc.Server.Serve.
func (s *Server) Serve(lis net.Listener) error { return s.gs.Serve(lis) }

// GracefulStop stops accepting connections and waits for in-flight calls,
// including snapshot streams, to finish.
func (s *Server) GracefulStop() { s.gs.GracefulStop() }

// Stop closes every connection and cancels in-flight calls at once.
func (s *Server) Stop() { s.gs.Stop() }

// service adapts Server to the generated clusterpb.ClusterServer, keeping
// the generated methods off Server's exported API.
type service struct {
	clusterpb.UnimplementedClusterServer
	s *Server
}

func (v service) Call(ctx context.Context, env *clusterpb.Envelope) (_ *clusterpb.Envelope, err error) {
	s := v.s
	defer s.recoverHandler(&err)
	from, req, err := s.decode(ctx, env)
	if err != nil {
		return nil, err
	}
	if _, ok := req.Kind.(*clusterpb.Request_Snapshot); ok {
		return nil, status.Error(codes.InvalidArgument, "snapshot requests use the Snapshot method")
	}
	resp, err := s.h.HandleCall(ctx, from, req)
	if err != nil {
		return nil, handlerStatus(err)
	}
	if resp.GetKind() == nil {
		s.cfg.Logger.Error("cluster handler returned no response", "from", from)
		return nil, status.Error(codes.Internal, "handler returned no response")
	}
	body, err := proto.Marshal(resp)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "marshal response: %v", err)
	}
	return s.cfg.Signer.Sign(from, body), nil
}

func (v service) Snapshot(env *clusterpb.Envelope, stream grpc.ServerStreamingServer[clusterpb.Envelope]) (err error) {
	s := v.s
	defer s.recoverHandler(&err)
	ctx := stream.Context()
	from, req, err := s.decode(ctx, env)
	if err != nil {
		return err
	}
	sr, ok := req.Kind.(*clusterpb.Request_Snapshot)
	if !ok {
		return status.Error(codes.InvalidArgument, "the Snapshot method takes only snapshot requests")
	}
	snapReq := sr.Snapshot
	if snapReq == nil {
		snapReq = &clusterpb.SnapshotRequest{}
	}
	var (
		mu       sync.Mutex
		seq      uint64
		lastSent bool
		finished bool
	)
	send := func(ch *clusterpb.SnapshotChunk) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case finished:
			return errors.New("clustergrpc: snapshot send after HandleSnapshot returned")
		case lastSent:
			return fmt.Errorf("%w: chunk after the last one", ErrProtocol)
		case ch == nil:
			return errors.New("clustergrpc: nil snapshot chunk")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if n := clusterpb.SizeSnapshotChunk(ch); n > s.cfg.MaxChunkBytes {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrChunkTooLarge, n, s.cfg.MaxChunkBytes)
		}
		ch.Seq = seq
		// The Response{chunk} encoding, by hand (see clusterpb.AppendChunkResponse).
		body, err := clusterpb.AppendChunkResponse(nil, ch)
		if err != nil {
			return fmt.Errorf("clustergrpc: marshal chunk: %w", err)
		}
		if err := stream.Send(s.cfg.Signer.Sign(from, body)); err != nil {
			return err
		}
		seq++
		lastSent = ch.Last
		return nil
	}
	herr := s.h.HandleSnapshot(ctx, from, snapReq, send)
	if herr == nil {
		mu.Lock()
		needLast := !lastSent
		mu.Unlock()
		if needLast {
			herr = send(&clusterpb.SnapshotChunk{Last: true})
		}
	}
	mu.Lock()
	finished = true
	mu.Unlock()
	if herr != nil {
		return handlerStatus(herr)
	}
	return nil
}

// decode authenticates env and decodes its Request. Every failure is
// already a gRPC status error; auth failures are counted and logged and
// never reach the Handler.
func (s *Server) decode(ctx context.Context, env *clusterpb.Envelope) (string, *clusterpb.Request, error) {
	from, body, err := s.cfg.Signer.Verify(env)
	if err != nil {
		reason := clusterauth.Reason(err)
		s.authFailed(ctx, reason, "")
		return "", nil, status.Error(codes.Unauthenticated, "cluster authentication failed: "+reason)
	}
	if s.cfg.IsMember != nil && !s.cfg.IsMember(from) {
		s.authFailed(ctx, "not_member", from)
		return "", nil, status.Error(codes.PermissionDenied, "sender is not a cluster member")
	}
	req := new(clusterpb.Request)
	if err := proto.Unmarshal(body, req); err != nil {
		return "", nil, status.Error(codes.InvalidArgument, "malformed request")
	}
	if req.Kind == nil {
		return "", nil, status.Error(codes.InvalidArgument, "unknown or empty request kind")
	}
	return from, req, nil
}

// authFailed counts a refused call and logs it at a bounded rate. from is
// set only when it is verified.
func (s *Server) authFailed(ctx context.Context, reason, from string) {
	if s.cfg.OnAuthFailure != nil {
		s.cfg.OnAuthFailure(reason)
	}
	ok, suppressed := s.authLog.allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"reason", reason}
	if p, found := peer.FromContext(ctx); found && p.Addr != nil {
		attrs = append(attrs, "remote", p.Addr.String())
	}
	if from != "" {
		attrs = append(attrs, "from", from)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	s.cfg.Logger.Warn("cluster call refused", attrs...)
}

// recoverHandler turns a Handler panic into codes.Internal. A message that
// crashes the handler is typically sent to every member; letting it take
// the process down would turn one bad message into a cluster-wide outage.
func (s *Server) recoverHandler(err *error) {
	if r := recover(); r != nil {
		s.cfg.Logger.Error("cluster handler panicked", "panic", r, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "handler panicked")
	}
}

// handlerStatus maps a Handler error to a gRPC status error.
func handlerStatus(err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// rateLimiter lets one event through per interval and counts the rest.
type rateLimiter struct {
	every      time.Duration
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether an event at now may be logged, and how many were
// suppressed since the last one that was.
func (r *rateLimiter) allow(now time.Time) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Before(r.next) {
		r.suppressed++
		return false, 0
	}
	r.next = now.Add(r.every)
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}
