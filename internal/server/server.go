package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/config"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
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

	ready    atomic.Bool
	readyMsg atomic.Pointer[string]

	httpLn  net.Listener
	httpSrv *http.Server
	mux     *http.ServeMux

	loops []func(ctx context.Context)
}

// New builds a server from cfg. Listeners are opened by Start.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, clk: clock.Real{}, reg: telemetry.NewRegistry(), mux: http.NewServeMux()}
	self := cfg.Advertise
	if self == "" {
		self = fmt.Sprintf("127.0.0.1:%d", cfg.Port)
	}
	s.store = store.New(self, hlc.New(nil))
	hcfg := health.DefaultConfig()
	hcfg.ExpireMaxFraction = cfg.ExpireMaxFraction
	s.local = registry.NewLocal(s.store, hcfg, s.clk, log)
	s.loops = append(s.loops, s.local.Run, s.gcLoop)

	s.api = httpapi.New(httpapi.Config{
		Store: s.store, Writer: s.local, Limits: cfg.Limits(), CacheMillis: cfg.CacheMillis, Logger: log,
	})
	s.registerMetrics()
	s.mux.Handle("/nacos/", s.api.Handler())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	// Standalone nodes are ready at once; a cluster node becomes ready when
	// its startup load is done.
	s.setReady(true, "standalone")
	return s, nil
}

// Store exposes the store (tests, benchmarks).
func (s *Server) Store() *store.Store { return s.store }

func (s *Server) setReady(ok bool, msg string) {
	s.readyMsg.Store(&msg)
	s.ready.Store(ok)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	msg := *s.readyMsg.Load()
	if !s.ready.Load() {
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
			if n := s.store.GC(s.cfg.TombstoneRetention); n > 0 {
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
	s.httpSrv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	return nil
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
	loopCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, loop := range s.loops {
		wg.Go(func() { loop(loopCtx) })
	}
	errc := make(chan error, 1)
	go func() { errc <- s.httpSrv.Serve(s.httpLn) }()
	s.log.Info("distrod serving", "http", s.HTTPAddr(), "self", s.store.Self())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.setReady(false, "shutting down")
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = s.httpSrv.Shutdown(shutCtx)
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.log.Info("distrod stopped")
	return err
}
