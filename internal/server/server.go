package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/authcp"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/config"
	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/console"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/healthcheck"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/httproute"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/authapi"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
	"github.com/distro-registry/distro/internal/nacos/udppush"
	"github.com/distro-registry/distro/internal/namespace"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/telemetry"
)

// Server is one distrod process.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	clk   clock.Clock
	reg   *prometheus.Registry
	store *store.Store
	local *registry.Local
	api   *httpapi.API
	// writer is the write path entry points use: the consistency router,
	// which hands ephemeral writes to the Distro engine (the local registry
	// standalone) and persistent ones to Raft.
	writer registry.Writer
	ap     registry.Writer
	// cp is the CP protocol (Raft) for persistent data; kv its tables.
	cp *raftcp.Node
	kv consistency.KV
	ns *namespace.Registry
	// console is the web console (nil with --console=false).
	console *console.Console
	// writes counts the client writes (it is the outer layer of writer).
	writes  *registry.Counting
	cluster *cluster
	push    *udppush.Pusher
	life    context.Context
	stop    context.CancelFunc

	ready    atomic.Bool
	readyMsg atomic.Pointer[string]

	httpLn  net.Listener
	httpSrv *http.Server
	mux     *httproute.Mux

	// grpcAPI serves Nacos 2 clients on grpcLn (HTTP port + GRPCPortOffset).
	grpcAPI *grpcapi.Server
	grpcLn  net.Listener

	// edgeLoops serve clients (gRPC, push); loops are the core (engine,
	// health, expiry). On shutdown the edge stops first, so that the
	// removals of departing gRPC clients still reach peers.
	edgeLoops []func(ctx context.Context)
	loops     []func(ctx context.Context)

	// auth decides client access; nil with auth off. authCP is the auth
	// data on the CP protocol (always replicated, even with auth off).
	auth      *auth.Authority
	authCP    *authcp.Store
	authStore string
	// authSeed is the interim store's auth.json, until it is seeded.
	authSeed *auth.State
	handler  http.Handler
}

// New builds a server from cfg. Listeners are opened by Start.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, clk: clock.Real{}, reg: telemetry.NewRegistry(), mux: httproute.New()}
	s.life, s.stop = context.WithCancel(context.Background())
	self := cfg.Advertise
	if self == "" {
		self = fmt.Sprintf("127.0.0.1:%d", cfg.Port)
	}
	var cl *cluster
	if cfg.Clustered() {
		var err error
		if cl, self, err = s.resolveCluster(s.life); err != nil {
			s.stop()
			return nil, err
		}
	}
	wall := time.Now
	if off := cfg.DebugClockOffset; off != 0 {
		// As on a machine whose clock is off: version stamps and every
		// wall reading the node takes (durations are unchanged).
		log.Warn("clock shifted for fault injection", "offset", off)
		wall = func() time.Time { return time.Now().Add(off) }
		s.clk = clock.Shifted{Offset: off}
	}
	s.store = store.New(self, hlc.New(wall))
	hcfg := health.DefaultConfig()
	hcfg.ExpireMaxFraction = cfg.ExpireMaxFraction
	s.local = registry.NewLocal(s.store, hcfg, s.clk, log)
	s.local.SetUnconfirmedLimit(cfg.TombstoneRetention)
	s.ap = s.local
	s.loops = append(s.loops, s.local.Run, s.gcLoop)
	if cfg.PprofAddr != "" {
		s.loops = append(s.loops, s.pprofLoop)
	}
	if cl != nil {
		if err := s.startCluster(cl, self); err != nil {
			s.stop()
			return nil, err
		}
	} else if err := s.openCP(self, nil, nil, nil); err != nil {
		s.stop()
		return nil, err
	}
	s.ns = &namespace.Registry{KV: s.kv}
	router := &consistency.Router{AP: s.ap, CP: &raftcp.Writer{Node: s.cp, Store: s.store}, Store: s.store}
	if cfg.NamespaceValidation {
		router.CheckNamespace = s.ns.Check
	}
	s.writer = router
	hcInfo := httpapi.HealthCheckInfo{Disabled: !cfg.HealthChecks, DefaultType: strings.ToUpper(cfg.HealthCheckDefault), CheckTimes: cfg.HealthCheckThreshold}
	if cfg.HealthChecks {
		s.startHealthChecks()
	}
	s.countWrites()

	if err := s.newAuth(); err != nil {
		s.stop()
		return nil, err
	}
	var pushGuard udppush.Guard
	var grpcGuard grpcapi.Guard
	var identity func(*http.Request) string
	if s.auth != nil {
		g := &authapi.GRPC{Auth: s.auth, Limits: cfg.Limits()}
		pushGuard, grpcGuard, identity = g, g, authapi.IdentityOf
	}
	var sub httpapi.Subscriber
	if cfg.UDPPush {
		p, err := udppush.New(udppush.Config{Listen: net.JoinHostPort(cfg.Bind, "0"), MergeWindow: cfg.PushMergeWindow,
			AckTimeout: cfg.PushAckTimeout, CacheMillis: cfg.CacheMillis, Guard: pushGuard}, s.store, s.clk, log)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("udp push: %w", err)
		}
		s.push, sub = p, p
		s.edgeLoops = append(s.edgeLoops, func(ctx context.Context) {
			if err := p.Run(ctx); err != nil {
				log.Error("udp push stopped", "error", err)
			}
		})
	}
	s.api = httpapi.New(httpapi.Config{
		Store: s.store, Writer: s.writer, Push: sub, Limits: cfg.Limits(), CacheMillis: cfg.CacheMillis, Logger: log,
		Extra: s.extraMetrics, Ready: s.Ready, HealthChecks: hcInfo, Identity: identity, Sync: s.kv.Sync, Namespaces: s.ns,
	})
	var ready <-chan struct{} // nil: ready at once
	if s.cluster != nil {
		ready = s.cluster.engine.ReadyCh()
	}
	g, err := grpcapi.New(grpcapi.Config{Store: s.store, Writer: s.writer, Conns: s.local, Limits: cfg.Limits(),
		CacheMillis: cfg.CacheMillis, MergeWindow: cfg.PushMergeWindow, Ready: ready, Clock: s.clk, Logger: log, Registerer: s.reg,
		Guard: grpcGuard})
	if err != nil {
		s.stop()
		return nil, err
	}
	s.grpcAPI = g
	g.Mount(s.mux)
	s.edgeLoops = append(s.edgeLoops, func(ctx context.Context) {
		if err := g.Serve(ctx, s.grpcLn); err != nil {
			log.Error("client gRPC listener stopped", "error", err)
		}
	})
	if err := s.mountConsole(); err != nil {
		s.stop()
		return nil, err
	}
	s.registerMetrics()
	s.mux.Handle("/nacos/", s.api.Handler())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /nacos/v1/core/cluster/nodes", s.nodes)
	h, err := s.mountAuth()
	if err != nil {
		s.stop()
		return nil, err
	}
	s.handler = h
	s.setReady(true, "standalone")
	return s, nil
}

// startHealthChecks runs server-side checks of persistent instances on the
// owner of their service, writing results through the node's write path.
func (s *Server) startHealthChecks() {
	hc := healthcheck.DefaultConfig()
	hc.Interval, hc.Timeout, hc.Threshold = s.cfg.HealthCheckInterval, s.cfg.HealthCheckTimeout, s.cfg.HealthCheckThreshold
	hc.Workers, hc.DefaultType = s.cfg.HealthCheckWorkers, strings.ToUpper(s.cfg.HealthCheckDefault)
	hc.Addrs = s.cfg.HealthCheckAddrs()
	if hc.DefaultType != model.CheckTCP {
		hc.DefaultType = model.CheckNone
	}
	c := healthcheck.New(hc, s.store, s.writer, s.local, nil, s.clk, s.log, s.reg)
	s.loops = append(s.loops, c.Run)
}

// Ready reports readiness: cluster nodes once their Distro startup load is
// done, and every node once its persistent data has caught up with the
// Raft leader (or the startup grace has passed).
func (s *Server) Ready() (bool, string) {
	if ok, why := s.cp.Ready(); !ok {
		return ok, why
	}
	if s.cluster != nil {
		return s.cluster.engine.Ready()
	}
	return s.ready.Load(), *s.readyMsg.Load()
}

// Store exposes the store (tests, benchmarks).
func (s *Server) Store() *store.Store { return s.store }

func (s *Server) setReady(ok bool, msg string) {
	s.readyMsg.Store(&msg)
	s.ready.Store(ok)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, msg := s.Ready()
	if !s.ready.Load() {
		ok, msg = false, *s.readyMsg.Load()
	}
	if !ok {
		http.Error(w, "not ready: "+msg, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok: " + msg))
}

func (s *Server) registerMetrics() {
	ns := telemetry.Namespace
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "services", Help: "Services with at least one instance or explicit settings."},
			func() float64 { n, _ := s.store.Counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "instances", Help: "Registered instances."},
			func() float64 { _, n := s.store.Counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "heartbeat_tracked_instances", Help: "Instances whose heartbeats this node checks."},
			func() float64 { return float64(s.local.Tracker().Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "instances_expired_total", Help: "Instances removed by heartbeat expiry."},
			func() float64 { n, _, _ := s.local.Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "instances_marked_unhealthy_total", Help: "Instances marked unhealthy by heartbeat timeout."},
			func() float64 { _, n, _ := s.local.Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "expiry_refuted_total", Help: "Remote heartbeat timeouts answered with a fresher local heartbeat."},
			func() float64 { _, _, n := s.local.Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "expiry_throttled_total", Help: "Expirations deferred by the self-preservation cap."},
			func() float64 { n, _ := s.local.Tracker().Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "pauses_detected_total", Help: "Times the expiry loop found its own process paused and skipped the lost time."},
			func() float64 { _, n := s.local.Tracker().Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "timeouts_unconfirmed", Help: "Heartbeat timeouts applied to this node's listing only, waiting for a majority of the members to confirm them."},
			func() float64 { return float64(s.local.Unconfirmed()) }),
	)
}

// gcLoop drops old tombstones.
func (s *Server) gcLoop(ctx context.Context) {
	t := s.clk.NewTicker(s.cfg.TombstoneRetention / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			var n int
			if s.cluster != nil {
				// Held back while a member has not acknowledged them.
				n = s.store.GCBefore(s.cluster.engine.TombstoneHorizon())
			} else {
				n = s.store.GC(s.cfg.TombstoneRetention)
			}
			if n > 0 {
				s.log.Debug("tombstones collected", "count", n)
			}
		}
	}
}

// Start opens the listeners. After it returns, the HTTP address is bound.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr())
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	s.httpLn = ln
	if s.grpcLn, err = net.Listen("tcp", s.cfg.GRPCAddr()); err != nil {
		_ = ln.Close()
		return fmt.Errorf("client gRPC listener: %w", err)
	}
	h := s.handler
	if s.auth == nil {
		// No middleware in front of the mux: the API's exact routes can
		// skip its pattern matching.
		h = s.api.Front(s.mux.ServeMux)
	}
	s.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	return nil
}

// extraMetrics adds server-wide figures to operator/metrics?onlyStatus=false.
func (s *Server) extraMetrics() map[string]any {
	out := map[string]any{}
	if s.grpcAPI != nil {
		out["connectionCount"] = s.grpcAPI.Clients()
	}
	if s.cluster != nil {
		out["responsibleServiceCount"] = s.cluster.engine.OwnedKeys()
		ok, _ := s.cluster.engine.Ready()
		out["ready"] = ok
	}
	return out
}

// drainSync gives pending replication (such as the removals of gRPC clients
// that just disconnected) a bounded moment to reach peers.
func (s *Server) drainSync(ctx context.Context) {
	if s.cluster == nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.cluster.engine.QueueDepth() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// HTTPAddr returns the bound HTTP address (after Start).
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if s.httpLn == nil {
		if err := s.Start(); err != nil {
			return err
		}
	}
	coreCtx, cancelCore := context.WithCancel(context.Background())
	edgeCtx, cancelEdge := context.WithCancel(context.Background())
	var core, edge sync.WaitGroup
	for _, loop := range s.loops {
		core.Go(func() { loop(coreCtx) })
	}
	for _, loop := range s.edgeLoops {
		edge.Go(func() { loop(edgeCtx) })
	}
	errc := make(chan error, 1)
	go func() { errc <- s.httpSrv.Serve(s.httpLn) }()
	s.log.Info("distrod serving", "http", s.HTTPAddr(), "grpc", s.grpcLn.Addr().String(), "self", s.store.Self())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.setReady(false, "shutting down")
	s.stop()
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = s.httpSrv.Shutdown(shutCtx)
	cancelEdge()
	edge.Wait()
	s.drainSync(shutCtx)
	cancelCore()
	core.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.log.Info("distrod stopped")
	return err
}
