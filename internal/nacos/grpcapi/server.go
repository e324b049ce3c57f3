package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/distro-registry/distro/api/nacospb"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/pushq"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// ConnRegistry is the part of the write path that knows connection-held
// instances; *registry.Local implements it.
type ConnRegistry interface {
	// DropConn removes every instance conn registered in services.
	DropConn(conn string, services []model.ServiceKey) int
	// SetConnAlive installs the predicate telling whether a connection is
	// open on this node. It is called from store callbacks: it must be cheap.
	SetConnAlive(alive func(conn string) bool)
	// SweepConns drops instances recorded as held by this node for
	// connections that are not open (left over from a previous process).
	SweepConns(self string) int
}

// Config holds the server's dependencies and settings. Zero durations and
// limits take the defaults below.
type Config struct {
	// Store is read for queries and pushes; its change events drive pushes.
	Store *store.Store
	// Writer applies writes: the Distro engine in a cluster (it applies
	// connection-held writes locally), the local registry standalone.
	Writer registry.Writer
	// Conns removes a closed connection's instances.
	Conns ConnRegistry
	// Limits bound what requests may carry (as for the HTTP API).
	Limits model.Limits
	// CacheMillis is the cacheMillis written into ServiceInfos (default
	// render.DefaultCacheMillis).
	CacheMillis int64
	// Ready is closed once the node may serve clients (cluster: after the
	// startup load). Until then ServerCheck answers errorCode 300 and the
	// client tries another node. Nil means ready at once.
	Ready <-chan struct{}

	// MergeWindow: a subscribed service is pushed this long after its first
	// change; later changes in the window ride along. Default 20ms (Nacos:
	// 500ms).
	MergeWindow time.Duration
	// AckTimeout is how long a push waits for NotifySubscriberResponse
	// before it is resent. Default 1s.
	AckTimeout time.Duration
	// MaxRetries is how many times an unacknowledged push is resent before
	// the connection is given up as unresponsive and dropped. Default 5.
	MaxRetries int
	// IdleTimeout: a connection that sent nothing for this long is probed
	// with ClientDetectionRequest. Default 20s (Nacos KEEP_ALIVE_TIME).
	IdleTimeout time.Duration
	// ProbeTimeout: a probed connection that does not answer within this
	// long is dropped. Default 5s.
	ProbeTimeout time.Duration
	// ProbeInterval is how often idle connections are looked for. Default 3s.
	ProbeInterval time.Duration
	// ResetTimeout: a connection sent ConnectResetRequest that is still
	// open this long after is closed. Default 3s.
	ResetTimeout time.Duration

	// MaxSubscriptions bounds the subscriptions of one connection, and
	// MaxServices the services it may register instances in. Default 10000.
	MaxSubscriptions int
	MaxServices      int
	// MaxBatchInstances bounds a BatchInstanceRequest. Default 1000.
	MaxBatchInstances int
	// MaxQueued bounds the messages waiting to be written to one
	// connection's stream; a client that falls this far behind is dropped.
	// Default 1024.
	MaxQueued int

	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// ServerOptions are appended to the gRPC server's options.
	ServerOptions []grpc.ServerOption
	// Guard, if set, authorizes naming requests and pushes (auth on); nil
	// allows everything.
	Guard Guard
}

// Guard authorizes client requests; internal/nacos/authapi implements it.
type Guard interface {
	// Authorize checks a unary request of type typ (body is its JSON,
	// headers its metadata headers, remoteIP the transport's peer). It
	// returns the caller's name, or a Nacos error code (403 denied, 400
	// malformed) and message. Types it does not guard pass with code 0.
	Authorize(typ string, body []byte, headers map[string]string, remoteIP string) (who string, code int, msg string)
	// Epoch changes whenever a MayRead answer may have changed.
	Epoch() uint64
	// MayRead reports whether who may still read key (before a push).
	MayRead(who string, key model.ServiceKey) bool
}

// Defaults taken by zero Config fields.
const (
	DefaultMergeWindow       = 20 * time.Millisecond
	DefaultAckTimeout        = time.Second
	DefaultMaxRetries        = 5
	DefaultIdleTimeout       = 20 * time.Second
	DefaultProbeTimeout      = 5 * time.Second
	DefaultProbeInterval     = 3 * time.Second
	DefaultResetTimeout      = 3 * time.Second
	DefaultMaxSubscriptions  = 10000
	DefaultMaxServices       = 10000
	DefaultMaxBatchInstances = 1000
	DefaultMaxQueued         = 1024

	// keepaliveMinTime is the shortest client ping interval tolerated.
	// Nacos clients ping every 60s; grpc-go's default policy (5 min) would
	// answer them with GOAWAY too_many_pings.
	keepaliveMinTime = 10 * time.Second
	// writerStopTimeout bounds the wait for a stream writer stuck in Send
	// when its stream ends.
	writerStopTimeout = 2 * time.Second
)

func (c Config) withDefaults() Config {
	if c.CacheMillis <= 0 {
		c.CacheMillis = render.DefaultCacheMillis
	}
	if c.Limits.MaxNameLen == 0 {
		c.Limits = model.DefaultLimits()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MergeWindow, DefaultMergeWindow)
	def(&c.AckTimeout, DefaultAckTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ProbeTimeout, DefaultProbeTimeout)
	def(&c.ProbeInterval, DefaultProbeInterval)
	def(&c.ResetTimeout, DefaultResetTimeout)
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&c.MaxRetries, DefaultMaxRetries)
	defInt(&c.MaxSubscriptions, DefaultMaxSubscriptions)
	defInt(&c.MaxServices, DefaultMaxServices)
	defInt(&c.MaxBatchInstances, DefaultMaxBatchInstances)
	defInt(&c.MaxQueued, DefaultMaxQueued)
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is the Nacos 2 gRPC API of one node. Build it with New, then call
// Serve once.
type Server struct {
	cfg   Config
	st    *store.Store
	self  string
	log   *slog.Logger
	clk   clock.Clock
	gs    *grpc.Server
	m     *metrics
	epoch time.Time
	tick  time.Duration

	// connMu guards conns (every open transport, by id) and nets (accepted
	// sockets by remote address, so that a transport can be closed).
	connMu sync.RWMutex
	conns  map[string]*conn
	nets   map[string]*acceptedSock

	// mu guards subscriptions, pending pushes, probes and per-connection
	// client info and outboxes. Lock order: conn.opMu, then mu, then qmu,
	// then an outbox's lock.
	mu     sync.Mutex
	subs   map[model.ServiceKey]*serviceSubs
	nsubs  int
	retryQ subList

	// qmu guards the dirty queue; the store callback takes only this lock.
	qmu     sync.Mutex
	watched map[model.ServiceKey]struct{}
	queue   *pushq.Queue[model.ServiceKey]
	// kick wakes the dispatcher when the dirty queue stops being empty.
	kick chan struct{}

	reqSeq     atomic.Uint64
	registered atomic.Int64
	running    atomic.Bool

	// Dispatcher scratch, used only by the dispatcher goroutine.
	nextProbe time.Time
	dueKeys   []model.ServiceKey
	scratch   []*subscription
	connList  []*conn
}

// housekeepingTick is the dispatcher's period for resends, probes and
// resets: a tenth of the shortest of their timeouts, within [1ms, 100ms]
// (pushes have a timer of their own). With the defaults it wakes 10 times
// a second, and a resend is at most 10% late.
func housekeepingTick(c Config) time.Duration {
	d := min(c.AckTimeout, c.ProbeInterval, c.ProbeTimeout, c.ResetTimeout) / 10
	return min(max(d, time.Millisecond), 100*time.Millisecond)
}

// Flow-control windows of a client connection and of each of its streams
// (see TransportOptions).
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// TransportOptions are the gRPC server options of the client API's
// transport: keepalive policy, message and buffer sizes, flow-control
// windows. They are exported so that distrobench's gRPC ceiling server
// runs on exactly the same transport and measures only what the handlers
// add.
func TransportOptions(maxBodyBytes int64) []grpc.ServerOption {
	if maxBodyBytes <= 0 {
		maxBodyBytes = model.DefaultLimits().MaxBodyBytes
	}
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		// Server pings find transports whose peer vanished without a FIN.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.MaxRecvMsgSize(int(min(maxBodyBytes, 64<<20)) + 64<<10),
		grpc.MaxConcurrentStreams(256),
		// Static flow-control windows: with the default dynamic ones,
		// grpc-go answers every message that arrives while no estimate is
		// running with a window update and a bandwidth-estimation ping, so
		// a push's ack costs a ping round trip on top (a write, and a read
		// of the ping's ack, per connection and push). Nacos traffic is
		// small messages; the windows bound what one client can have
		// buffered (dynamic windows grow up to 16 MiB).
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		// Idle clients hold no write buffer; this is most of the memory of a
		// connected client otherwise.
		grpc.SharedWriteBuffer(true),
		grpc.ReadBufferSize(8 << 10),
		codecOption(),
	}
}

// New builds the server and subscribes it to the store's change events, so
// call it while wiring, before the store is shared.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Writer == nil || cfg.Conns == nil {
		return nil, errors.New("grpcapi: Store, Writer and Conns are required")
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg: cfg, st: cfg.Store, self: cfg.Store.Self(), log: cfg.Logger, clk: cfg.Clock,
		epoch:   cfg.Clock.Now(),
		tick:    housekeepingTick(cfg),
		conns:   make(map[string]*conn),
		nets:    make(map[string]*acceptedSock),
		subs:    make(map[model.ServiceKey]*serviceSubs),
		watched: make(map[model.ServiceKey]struct{}),
		queue:   pushq.New[model.ServiceKey](),
		kick:    make(chan struct{}, 1),
	}
	s.m = newMetrics(s, cfg.Registerer)
	opts := append(TransportOptions(cfg.Limits.MaxBodyBytes),
		grpc.StatsHandler(statsHandler{s}),
		// Stop waits for handlers, so Serve returns after every connection
		// was torn down.
		grpc.WaitForHandlers(true),
	)
	s.gs = grpc.NewServer(append(opts, cfg.ServerOptions...)...)
	s.gs.RegisterService(&requestServiceDesc, s)
	nacospb.RegisterBiRequestStreamServer(s.gs, streamService{s: s})
	cfg.Store.OnChange(s.onChange)
	cfg.Conns.SetConnAlive(s.connAlive)
	return s, nil
}

// Serve serves gRPC on ln and runs the push dispatcher until ctx ends; then
// it closes every connection (their instances are removed as on any
// disconnect) and returns. Once the node is ready it sweeps instances that
// a previous process on this node left behind. Call it once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("grpcapi: Serve called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.gs.Serve(trackingListener{Listener: ln, s: s}) }()
	var wg sync.WaitGroup
	wg.Go(func() { s.dispatchLoop(ctx) })
	wg.Go(func() {
		select {
		case <-ctx.Done():
			return
		case <-s.readyCh():
		}
		if n := s.cfg.Conns.SweepConns(s.self); n > 0 {
			s.log.Info("dropped instances of client connections held by a previous process", "instances", n)
		}
	})
	var err error
	select {
	case <-ctx.Done():
		s.gs.Stop()
		err = <-errc
	case err = <-errc: // the listener failed
		s.gs.Stop()
	}
	cancel()
	wg.Wait()
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

func (s *Server) readyCh() <-chan struct{} {
	if s.cfg.Ready == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return s.cfg.Ready
}

func (s *Server) isReady() bool {
	if s.cfg.Ready == nil {
		return true
	}
	select {
	case <-s.cfg.Ready:
		return true
	default:
		return false
	}
}

// since returns the time elapsed since the server started (a monotonic
// reading, stored in atomics).
func (s *Server) since(now time.Time) int64 { return int64(now.Sub(s.epoch)) }

// nextRequestID returns a new server request id: a growing decimal number,
// never empty.
func (s *Server) nextRequestID() string { return strconv.FormatUint(s.reqSeq.Add(1), 10) }

// connKey is the context key of a transport's *conn.
type connKey struct{}

func connFrom(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// statsHandler gives every transport connection its record and id, and
// tears it down when the transport ends.
type statsHandler struct{ s *Server }

func (h statsHandler) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, h.s.openConn(info.RemoteAddr))
}

func (h statsHandler) HandleConn(ctx context.Context, st stats.ConnStats) {
	if _, ok := st.(*stats.ConnEnd); ok {
		if c := connFrom(ctx); c != nil {
			h.s.closeConn(c)
		}
	}
}

func (statsHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (statsHandler) HandleRPC(context.Context, stats.RPCStats)                       {}

// trackingListener records accepted sockets by remote address, so that the
// server can close a client's transport (grpc-go has no per-connection
// close). It hands grpc-go the socket itself, not a wrapper: grpc-go then
// reads with a buffer borrowed only while data is waiting, instead of a
// read buffer held by every idle connection.
type trackingListener struct {
	net.Listener
	s *Server
}

// acceptedSock is a socket accepted and not yet closed by its transport.
type acceptedSock struct {
	nc net.Conn
	at time.Time
	// tagged is set once the socket's transport has its conn record;
	// closeConn then forgets the socket.
	tagged bool
}

// untaggedMaxAge: a socket whose transport never started (the handshake
// failed, and grpc-go closed it) is forgotten after this long.
const untaggedMaxAge = 3 * time.Minute

func (l trackingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.connMu.Lock()
	l.s.nets[nc.RemoteAddr().String()] = &acceptedSock{nc: nc, at: l.s.clk.Now()}
	l.s.connMu.Unlock()
	return nc, nil
}

// forgetUntagged drops sockets whose transport never started.
func (s *Server) forgetUntagged(now time.Time) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for k, a := range s.nets {
		if !a.tagged && now.Sub(a.at) > untaggedMaxAge {
			delete(s.nets, k)
		}
	}
}

// streamService serves /BiRequestStream/requestBiStream.
type streamService struct {
	nacospb.UnimplementedBiRequestStreamServer
	s *Server
}

func (r streamService) RequestBiStream(stream nacospb.BiRequestStream_RequestBiStreamServer) error {
	return r.s.serveStream(stream)
}

// handleUnary answers one unary request. It always answers with a Payload
// (an ErrorResponse on failure), as Nacos does, and never panics.
func (s *Server) handleUnary(ctx context.Context, p *nacospb.Payload) *nacospb.Payload {
	rep := s.answer(ctx, p)
	return rep.payload()
}

// answer is handleUnary without building the Payload: the transport
// encodes the reply's parts itself (see reply).
func (s *Server) answer(ctx context.Context, p *nacospb.Payload) (out *reply) {
	var f Frame
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("grpc request handler panicked", "type", f.Type, "panic", r, "stack", string(debug.Stack()))
			s.m.request(f.Type, CodeServerError)
			rep := simpleReply(TypeErrorResponse, errorBody(requestID(f.Body), CodeServerError, "internal server error"))
			out = &rep
		}
	}()
	c := connFrom(ctx)
	if c != nil {
		c.touch(s.since(s.clk.Now()))
	}
	f, err := DecodePayload(p, int(s.cfg.Limits.MaxBodyBytes))
	if err != nil {
		s.m.request(f.Type, CodeInvalidParam)
		rep := simpleReply(TypeErrorResponse, errorBody("", CodeInvalidParam, err.Error()))
		return &rep
	}
	rep, err := s.route(ctx, c, f)
	if err != nil {
		code, msg := errorCode(err)
		s.m.request(f.Type, code)
		if code >= CodeServerError {
			s.log.Warn("grpc request failed", "type", f.Type, "code", code, "error", msg)
		}
		rep = simpleReply(errorType(err), errorBody(requestID(f.Body), code, msg))
		return &rep
	}
	s.m.request(f.Type, 0)
	return &rep
}

// errUnregistered answers requests on connections that did not (or no
// longer) complete ConnectionSetupRequest; the client reconnects.
var errUnregistered = &rpcError{code: CodeUnregistered, msg: "Connection is unregistered."}

// route answers a unary request by type.
func (s *Server) route(ctx context.Context, c *conn, f Frame) (reply, error) {
	if f.Type == TypeServerCheckRequest {
		var r baseRequest
		if err := decodeBase(f, &r); err != nil {
			return reply{}, err
		}
		if !s.isReady() {
			return reply{}, &rpcError{code: CodeServerStarting, msg: "server is starting; try later or another server"}
		}
		if c == nil {
			return reply{}, &rpcError{code: CodeServerError, msg: "no connection record"}
		}
		return simpleReply(TypeServerCheckResponse, serverCheckBody(r.RequestID, c.id)), nil
	}
	if c == nil || c.state.Load() != stateRegistered {
		return reply{}, errUnregistered
	}
	var who string
	if g := s.cfg.Guard; g != nil {
		var code int
		var msg string
		if who, code, msg = g.Authorize(f.Type, f.Body, f.Headers, c.remoteIP); code != 0 {
			// Nacos answers a refused request with the handler's own
			// response type: an ErrorResponse would make the SDKs retry and
			// switch servers.
			return reply{}, &rpcError{code: code, msg: msg, typ: responseTypeOf(f.Type)}
		}
	}
	switch f.Type {
	case TypeHealthCheckRequest:
		var r baseRequest
		if err := decodeBase(f, &r); err != nil {
			return reply{}, err
		}
		return okReply(TypeHealthCheckResponse, r.RequestID, ""), nil
	case TypeInstanceRequest:
		return s.instanceRequest(ctx, c, f, false)
	case TypePersistentInstanceRequest:
		return s.instanceRequest(ctx, c, f, true)
	case TypeBatchInstanceRequest:
		return s.batchRequest(ctx, c, f)
	case TypeServiceQueryRequest:
		return s.queryRequest(f)
	case TypeSubscribeServiceRequest:
		return s.subscribeRequest(c, f, who)
	case TypeServiceListRequest:
		return s.serviceListRequest(f)
	}
	return reply{}, &rpcError{code: CodeNoHandler, msg: "RequestHandler Not Found: no handler for " + f.Type}
}

// responseTypeOf is the response type of a request type's handler.
func responseTypeOf(reqType string) string {
	switch reqType {
	case TypeInstanceRequest, TypePersistentInstanceRequest:
		return TypeInstanceResponse
	case TypeBatchInstanceRequest:
		return TypeBatchInstanceResponse
	case TypeServiceQueryRequest:
		return TypeQueryServiceResponse
	case TypeSubscribeServiceRequest:
		return TypeSubscribeServiceResponse
	case TypeServiceListRequest:
		return TypeServiceListResponse
	}
	return TypeErrorResponse
}

// errorType is the response type an error is answered with.
func errorType(err error) string {
	var re *rpcError
	if errors.As(err, &re) && re.typ != "" {
		return re.typ
	}
	return TypeErrorResponse
}

// errorCode maps an error to the Nacos error code and message a client sees.
func errorCode(err error) (int, string) {
	var re *rpcError
	if errors.As(err, &re) {
		return re.code, re.msg
	}
	st := registry.StatusOf(err)
	var ue *registry.Error
	switch {
	case st == 503 && errors.As(err, &ue):
		// No Raft quorum for a persistent write: the message says whether
		// it was applied; the client retries on another server.
		return CodeServerError, ue.Msg
	case st == 503:
		return CodeServerError, "request timed out or was canceled: " + err.Error()
	case st >= 400 && st < 500:
		return st, err.Error()
	}
	return CodeServerError, err.Error()
}

// serveStream runs one bi-stream: this goroutine reads the client's setup
// and its answers to server requests until the stream ends, then tears the
// connection down; what the server queues for the connection is sent by
// its outbox.
func (s *Server) serveStream(stream nacospb.BiRequestStream_RequestBiStreamServer) error {
	c := connFrom(stream.Context())
	if c == nil {
		return status.Error(codes.Internal, "no connection record")
	}
	ob := newOutbox(s.cfg.MaxQueued, stream.SendMsg)
	s.mu.Lock()
	switch {
	case c.state.Load() == stateClosed:
		s.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "connection was closed; reconnect")
	case c.out != nil:
		s.mu.Unlock()
		return status.Error(codes.AlreadyExists, "connection already has a stream")
	}
	c.out = ob
	s.mu.Unlock()

	for {
		p, err := stream.Recv()
		if err != nil {
			break
		}
		c.touch(s.since(s.clk.Now()))
		s.onStreamPayload(c, p)
	}
	s.teardown(c, "stream closed")
	// A send must not outlive the handler.
	idle := ob.close()
	select {
	case <-idle:
	case <-time.After(writerStopTimeout):
		// The sender is stuck in Send on a client that stopped reading.
		c.closeNet()
		select {
		case <-idle:
		case <-time.After(writerStopTimeout):
		}
	}
	return nil
}

// onStreamPayload handles one message the client sent on its stream.
func (s *Server) onStreamPayload(c *conn, p *nacospb.Payload) {
	var f Frame
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("grpc stream handler panicked", "type", f.Type, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f, err := DecodePayload(p, int(s.cfg.Limits.MaxBodyBytes))
	if err != nil {
		s.m.request(f.Type, CodeInvalidParam)
		s.log.Debug("bad stream message", "conn", c.id, "error", err)
		return
	}
	switch f.Type {
	case TypeConnectionSetupRequest:
		err = s.setup(c, f)
	case TypeNotifySubscriberResponse, TypeClientDetectionResponse, TypeConnectResetResponse:
		err = s.settle(c, f)
	default:
		err = &rpcError{code: CodeNoHandler, msg: "unsupported stream message " + f.Type}
	}
	code := 0
	if err != nil {
		code, _ = errorCode(err)
		s.log.Debug("stream message refused", "conn", c.id, "type", f.Type, "error", err)
	}
	s.m.request(f.Type, code)
}

// transportCount returns the number of open transports.
func (s *Server) transportCount() int {
	s.connMu.RLock()
	defer s.connMu.RUnlock()
	return len(s.conns)
}

// subscriptionCount returns the number of subscriptions.
func (s *Server) subscriptionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nsubs
}

// Clients returns the number of connected (set up) clients.
func (s *Server) Clients() int { return int(s.registered.Load()) }
