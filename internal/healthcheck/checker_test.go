package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/testutil"
)

var svcKey = model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "db"}

// fakeProber records probes and fails those whose address is down. It
// never touches the network, so tests may use any address.
type fakeProber struct {
	mu          sync.Mutex
	down        map[string]bool
	calls       map[string]int
	times       map[string][]time.Time
	last        map[string]Probe
	hold        time.Duration // each probe takes this long (virtual time)
	inflight    int
	maxInflight int
}

func newFakeProber() *fakeProber {
	return &fakeProber{down: map[string]bool{}, calls: map[string]int{}, times: map[string][]time.Time{}, last: map[string]Probe{}}
}

func (f *fakeProber) Probe(ctx context.Context, p *Probe) error {
	f.mu.Lock()
	addr := p.Addr()
	f.calls[addr]++
	f.times[addr] = append(f.times[addr], time.Now())
	f.last[addr] = *p
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	hold, down := f.hold, f.down[addr]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if hold > 0 {
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if down {
		return errors.New("connection refused")
	}
	return nil
}

func (f *fakeProber) setDown(addr string, down bool) {
	f.mu.Lock()
	f.down[addr] = down
	f.mu.Unlock()
}

func (f *fakeProber) count(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[addr]
}

func (f *fakeProber) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// countingWriter counts the writes that pass through it. With stall set,
// health writes hang until their context ends (a Raft without quorum);
// with fail set they fail at once.
type countingWriter struct {
	registry.Writer
	mu          sync.Mutex
	n           map[registry.OpKind]int
	stall, fail atomic.Bool
}

func (w *countingWriter) Apply(ctx context.Context, op *registry.Op) (registry.Result, error) {
	w.mu.Lock()
	w.n[op.Kind]++
	w.mu.Unlock()
	if op.Kind == registry.OpSetHealth {
		if w.stall.Load() {
			<-ctx.Done()
			return registry.Result{}, fmt.Errorf("no quorum: %w", ctx.Err())
		}
		if w.fail.Load() {
			return registry.Result{}, errors.New("no quorum")
		}
	}
	return w.Writer.Apply(ctx, op)
}

func (w *countingWriter) count(k registry.OpKind) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[k]
}

type env struct {
	t      *testing.T
	st     *store.Store
	local  *registry.Local
	w      *countingWriter
	prober *fakeProber
	c      *Checker
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

// newEnv builds a standalone node (store, registry.Local, checker) and
// runs the checker. Call it inside a synctest bubble.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	return newEnvLog(t, cfg, io.Discard)
}

// newEnvLog is newEnv with the node's log written to w.
func newEnvLog(t *testing.T, cfg Config, w io.Writer) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(w, nil))
	st := store.New("n1", hlc.New(time.Now))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, log)
	e := &env{t: t, st: st, local: local, w: &countingWriter{Writer: local, n: map[registry.OpKind]int{}},
		prober: newFakeProber(), reg: prometheus.NewRegistry(), done: make(chan struct{})}
	e.c = New(cfg, st, e.w, local, e.prober, clock.Real{}, log, e.reg)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.c.Run(ctx); close(e.done) }()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Interval, cfg.Timeout, cfg.Threshold = time.Second, 500*time.Millisecond, 3
	return cfg
}

func (e *env) apply(op *registry.Op) {
	e.t.Helper()
	if _, err := e.local.Apply(context.Background(), op); err != nil {
		e.t.Fatalf("%s: %v", op.Kind, err)
	}
}

func persistentInstance(ip string, port int) model.Instance {
	return model.Instance{IP: ip, Port: port, Cluster: model.DefaultCluster, Weight: 1, Healthy: true, Enabled: true}
}

func (e *env) register(k model.ServiceKey, in model.Instance) {
	e.t.Helper()
	e.apply(&registry.Op{Kind: registry.OpRegister, Key: k, Instance: in})
}

func (e *env) setCluster(k model.ServiceKey, cluster string, c model.ClusterMeta) {
	e.t.Helper()
	e.apply(&registry.Op{Kind: registry.OpUpdateCluster, Key: k, ClusterName: cluster, Cluster: c})
}

func tcpCluster() model.ClusterMeta { return model.DefaultClusterMeta(model.CheckTCP) }

// kind returns the stored kind of an instance.
func (e *env) kind(k model.ServiceKey, ip string, port int) store.Kind {
	e.t.Helper()
	recs, _ := e.st.Records(k, []model.InstanceKey{{IP: ip, Port: port, Cluster: model.DefaultCluster}})
	if len(recs) != 1 {
		e.t.Fatalf("instance %s:%d not stored", ip, port)
	}
	return recs[0].Kind
}

func (e *env) healthy(k model.ServiceKey, ip string, port int) bool {
	return e.kind(k, ip, port) == store.KindLive
}

// sleep lets virtual time pass and the bubble settle.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestCheckerMarksUnhealthyAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		const addr = "10.1.0.1:3306"
		e.register(svcKey, persistentInstance("10.1.0.1", 3306))
		sleep(10 * time.Second)
		if n := e.prober.count(addr); n != 0 {
			t.Fatalf("%d checks of a cluster nobody configured (the default is NONE)", n)
		}
		e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
		sleep(5 * time.Second)
		if n := e.prober.count(addr); n < 3 || n > 6 {
			t.Fatalf("%d checks in 5 intervals", n)
		}
		if !e.healthy(svcKey, "10.1.0.1", 3306) || e.w.count(registry.OpSetHealth) != 0 {
			t.Fatal("a passing instance changed state or was written")
		}
		e.prober.setDown(addr, true)
		sleep(2 * time.Second) // fewer than 3 failures
		if !e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("marked unhealthy before three consecutive failures")
		}
		sleep(2 * time.Second)
		if e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("still healthy after four failed checks")
		}
		sleep(20 * time.Second)
		if n := e.w.count(registry.OpSetHealth); n != 1 {
			t.Fatalf("%d health writes while the instance stayed down, want 1", n)
		}
		// The verdict shows in what clients read.
		if v := e.st.View(svcKey); v == nil || len(v.Instances) != 1 || v.Instances[0].Healthy {
			t.Fatalf("view after the verdict: %+v", v)
		}
		e.prober.setDown(addr, false)
		sleep(4 * time.Second)
		if !e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("not restored after the instance came back")
		}
		sleep(10 * time.Second)
		if n := e.w.count(registry.OpSetHealth); n != 2 {
			t.Fatalf("%d health writes for one down/up cycle, want 2", n)
		}
		if got := promtest.ToFloat64(e.c.m.changes.WithLabelValues("unhealthy")); got != 1 {
			t.Fatalf("state_changes_total{to=unhealthy} = %v", got)
		}
		if got := promtest.ToFloat64(e.c.m.failures.WithLabelValues("TCP")); got < 3 {
			t.Fatalf("failures_total = %v", got)
		}
		if got := promtest.ToFloat64(e.c.m.checks.WithLabelValues("TCP")); got != float64(e.prober.count(addr)) {
			t.Fatalf("checks_total = %v, prober saw %d", got, e.prober.count(addr))
		}
		if n, err := promtest.GatherAndCount(e.reg, "distro_healthcheck_check_latency_seconds"); err != nil || n != 2 {
			t.Fatalf("latency histogram: %d series (TCP and HTTP), %v", n, err)
		}
	})
}

func TestCheckerPortsAndDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.DefaultType = model.CheckTCP // Nacos's default
		e := newEnv(t, cfg)
		e.register(svcKey, persistentInstance("10.1.0.1", 3306))
		eph := persistentInstance("10.1.0.2", 8080)
		eph.Ephemeral = true
		e.register(svcKey, eph)
		sleep(3 * time.Second)
		if e.prober.count("10.1.0.1:3306") == 0 {
			t.Fatal("default TCP checker did not check the instance port")
		}
		if e.prober.count("10.1.0.2:8080") != 0 {
			t.Fatal("an ephemeral instance was health-checked")
		}
		c := tcpCluster()
		c.UseInstancePort, c.CheckPort = false, 9104
		e.setCluster(svcKey, model.DefaultCluster, c)
		before := e.prober.count("10.1.0.1:3306")
		sleep(3 * time.Second)
		if e.prober.count("10.1.0.1:3306") != before || e.prober.count("10.1.0.1:9104") == 0 {
			t.Fatalf("after checkPort 9104: %v", e.prober.calls)
		}
		// Per-cluster timeout and HTTP settings reach the probe.
		c = model.ClusterMeta{HealthChecker: model.HealthChecker{Type: model.CheckHTTP, Path: "/ready", ExpectedCode: 204, TimeoutMs: 50, IntervalMs: 200},
			UseInstancePort: true}
		e.setCluster(svcKey, model.DefaultCluster, c)
		n := e.prober.count("10.1.0.1:3306")
		sleep(2 * time.Second)
		// Periods of 200 ms ± 10 %, rounded up to the 100 ms tick: 180-320 ms.
		if got := e.prober.count("10.1.0.1:3306") - n; got < 6 || got > 12 {
			t.Fatalf("%d checks in 2 s with intervalMillis 200", got)
		}
		e.prober.mu.Lock()
		p := e.prober.last["10.1.0.1:3306"]
		e.prober.mu.Unlock()
		if p.Check != c.HealthChecker || p.Timeout != 50*time.Millisecond {
			t.Fatalf("probe %+v", p)
		}
	})
}

func TestCheckerNoneLiftsVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		e.register(svcKey, persistentInstance("10.1.0.1", 3306))
		e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
		e.prober.setDown("10.1.0.1:3306", true)
		sleep(6 * time.Second)
		if e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("not marked unhealthy")
		}
		e.setCluster(svcKey, model.DefaultCluster, model.DefaultClusterMeta(model.CheckNone))
		n := e.prober.count("10.1.0.1:3306")
		sleep(3 * time.Second)
		if !e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("switching the cluster to NONE left the checker's verdict in place")
		}
		if e.prober.count("10.1.0.1:3306") > n+1 {
			t.Fatal("a NONE cluster is still checked")
		}
		if e.c.Scheduled() != 0 {
			t.Fatalf("%d targets scheduled for a NONE cluster", e.c.Scheduled())
		}
	})
}

func TestCheckerFollowsClientWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		in := persistentInstance("10.1.0.1", 3306)
		e.register(svcKey, in)
		e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
		e.prober.setDown("10.1.0.1:3306", true)
		sleep(6 * time.Second)
		if e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("not marked unhealthy")
		}
		// A client registers it again (new data): it is live until the next
		// failed check, which marks it again at once (still down).
		in.Metadata = map[string]string{"v": "2"}
		e.register(svcKey, in)
		if !e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("a re-registration did not outrank the verdict")
		}
		sleep(2 * time.Second)
		if e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("a re-registered instance that is still down was not marked again")
		}
		// Deregistration stops its checks.
		e.apply(&registry.Op{Kind: registry.OpDeregister, Key: svcKey, Instance: in})
		n := e.prober.total()
		sleep(5 * time.Second)
		if e.prober.total() > n+1 || e.c.Scheduled() != 0 {
			t.Fatalf("checks after deregistration: %d → %d, %d scheduled", n, e.prober.total(), e.c.Scheduled())
		}
		// An instance registered again as ephemeral is no longer checked.
		e.register(svcKey, persistentInstance("10.1.0.4", 1))
		sleep(2 * time.Second)
		eph := persistentInstance("10.1.0.4", 1)
		eph.Ephemeral = true
		e.register(svcKey, eph)
		sleep(2 * time.Second)
		n = e.prober.count("10.1.0.4:1")
		sleep(5 * time.Second)
		if e.prober.count("10.1.0.4:1") != n || e.c.Scheduled() != 0 {
			t.Fatalf("an instance that became ephemeral is still checked (%d scheduled)", e.c.Scheduled())
		}
		// A service update keeps the cluster settings.
		e.register(svcKey, persistentInstance("10.1.0.3", 1))
		e.apply(&registry.Op{Kind: registry.OpUpdateService, Key: svcKey, Service: model.ServiceMeta{ProtectThreshold: 0.5}})
		sleep(3 * time.Second)
		if e.prober.count("10.1.0.3:1") == 0 {
			t.Fatal("a service update dropped the cluster's checker")
		}
	})
}

func TestCheckerFollowsOwnership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		other := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "other"}
		for _, k := range []model.ServiceKey{svcKey, other} {
			e.register(k, persistentInstance("10.1.0.1", 3306))
			e.setCluster(k, model.DefaultCluster, tcpCluster())
		}
		sleep(3 * time.Second)
		if e.c.Scheduled() != 2 {
			t.Fatalf("%d scheduled, want 2", e.c.Scheduled())
		}
		// Lose svcKey: its checks stop, other's go on.
		notDB := func(k model.ServiceKey) bool { return k != svcKey }
		e.local.SetOwnership(notDB, nil, []model.ServiceKey{svcKey})
		synctest.Wait()
		before := e.prober.total()
		e.prober.setDown("10.1.0.1:3306", true) // both are down now
		sleep(5 * time.Second)
		if e.c.Scheduled() != 1 {
			t.Fatalf("%d scheduled after losing a service", e.c.Scheduled())
		}
		if !e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("a service this node no longer owns was marked by it")
		}
		if e.healthy(other, "10.1.0.1", 3306) {
			t.Fatal("the owned service was not checked")
		}
		if got := e.prober.total() - before; got > 7 {
			t.Fatalf("%d checks in 5 s for one owned instance", got)
		}
		// Gain it back: checked again.
		all := func(model.ServiceKey) bool { return true }
		e.local.SetOwnership(all, []model.ServiceKey{svcKey}, nil)
		sleep(5 * time.Second)
		if e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("a regained service was not checked")
		}
	})
}

// TestCheckerBoundsWork: a slow prober never has more than Workers checks
// in flight, every instance is still checked, and checks spread over the
// interval instead of bunching.
func TestCheckerBoundsWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Workers, cfg.Interval, cfg.Timeout = 4, 10*time.Second, 5*time.Second
		e := newEnv(t, cfg)
		e.prober.hold = time.Second
		e.setClusterFor(50)
		sleep(30 * time.Second)
		e.prober.mu.Lock()
		defer e.prober.mu.Unlock()
		if e.prober.maxInflight > cfg.Workers {
			t.Fatalf("%d checks in flight with %d workers", e.prober.maxInflight, cfg.Workers)
		}
		if len(e.prober.calls) != 50 {
			t.Fatalf("%d of 50 instances checked", len(e.prober.calls))
		}
		// 50 checks of 1 s on 4 workers need 12.5 s per 10 s round: checks
		// start late, none is skipped.
		if promtest.ToFloat64(e.c.m.late) == 0 {
			t.Fatal("a saturated pool reported no late checks")
		}
	})
}

func (e *env) setClusterFor(n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		e.register(svcKey, persistentInstance(fmt.Sprintf("10.2.%d.%d", i/250, i%250+1), 5432))
	}
	e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
}

func TestCheckerJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Interval, cfg.Workers = 10*time.Second, 200
		e := newEnv(t, cfg)
		start := time.Now()
		e.setClusterFor(200)
		sleep(60 * time.Second)
		e.prober.mu.Lock()
		defer e.prober.mu.Unlock()
		var firstSecond int
		for addr, ts := range e.prober.times {
			if ts[0].Sub(start) < time.Second {
				firstSecond++
			}
			for i := 1; i < len(ts); i++ {
				gap := ts[i].Sub(ts[i-1])
				// Interval ± 10 %, plus at most one scheduler tick.
				if gap < 9*time.Second || gap > 11*time.Second+cfg.Tick {
					t.Fatalf("%s: %v between checks with a 10 s interval", addr, gap)
				}
			}
		}
		// First checks are spread over the first interval: about 20 of 200
		// in its first second, never all of them.
		if firstSecond > 60 {
			t.Fatalf("%d of 200 first checks in the first second", firstSecond)
		}
	})
}

// TestStateChangeLogsAreRateLimited: 200 instances going down at once log a
// burst of lines, not 200; a later line says how many were left out.
func TestStateChangeLogsAreRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Workers = 200
		var logs testutil.SyncBuffer
		e := newEnvLog(t, cfg, &logs)
		e.setClusterFor(200)
		sleep(2 * time.Second)
		e.prober.mu.Lock()
		for addr := range e.prober.calls {
			e.prober.down[addr] = true
		}
		e.prober.mu.Unlock()
		sleep(5 * time.Second) // every instance fails three times within ~4 s
		if n := e.w.count(registry.OpSetHealth); n != 200 {
			t.Fatalf("%d verdicts written, want 200", n)
		}
		lines := strings.Count(logs.String(), "persistent instance is now unhealthy")
		// A burst of 20, then 5 a second over the seconds the verdicts took.
		if lines < 20 || lines > 45 {
			t.Fatalf("%d log lines for 200 state changes", lines)
		}
		sleep(10 * time.Second)
		e.prober.setDown("10.2.0.1:5432", false)
		sleep(5 * time.Second)
		if !strings.Contains(logs.String(), "suppressed_lines=") {
			t.Fatalf("no line reports the suppressed ones:\n%s", logs.String())
		}
	})
}

// TestStalledWritesDoNotStallChecks: while verdict writes hang (a Raft
// without quorum answers after WriteTimeout), checks keep their schedule on
// a single worker, the waiting verdict is retried with growing pauses
// rather than once per check, and it is written once writes work again.
func TestStalledWritesDoNotStallChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Workers = 1
		e := newEnv(t, cfg)
		e.register(svcKey, persistentInstance("10.1.0.1", 3306))
		e.register(svcKey, persistentInstance("10.1.0.2", 3306))
		e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
		e.w.stall.Store(true)
		e.prober.setDown("10.1.0.1:3306", true)
		sleep(4 * time.Second) // three failures: a verdict is waiting, its write hangs
		if e.w.count(registry.OpSetHealth) == 0 {
			t.Fatal("no verdict write was attempted")
		}
		up, down := e.prober.count("10.1.0.2:3306"), e.prober.count("10.1.0.1:3306")
		sleep(20 * time.Second)
		if n := e.prober.count("10.1.0.2:3306") - up; n < 17 {
			t.Fatalf("%d checks of a healthy instance in 20 intervals while a verdict write hung", n)
		}
		if n := e.prober.count("10.1.0.1:3306") - down; n < 17 {
			t.Fatalf("%d checks of the down instance in 20 intervals while its verdict write hung", n)
		}
		// Each attempt hangs for WriteTimeout (5 s), then the writer waits
		// 0.5, 1, 2 … s: about four attempts in 24 s, not one per check.
		if n := e.w.count(registry.OpSetHealth); n > 5 {
			t.Fatalf("%d write attempts of one verdict in 24 s", n)
		}
		if !e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("the verdict was stored although every write failed")
		}
		e.w.stall.Store(false)
		sleep(writeRetryMax + 5*time.Second + time.Second)
		if e.healthy(svcKey, "10.1.0.1", 3306) {
			t.Fatal("the waiting verdict was not written once writes worked again")
		}
	})
}

// TestFailedWritesAreRetriedAndLogLimited: when every verdict write fails,
// the writer backs off (a few attempts, not one per instance and check)
// and the warnings share the state-change log budget.
func TestFailedWritesAreRetriedAndLogLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testutil.SyncBuffer
		e := newEnvLog(t, testConfig(), &logs)
		e.w.fail.Store(true)
		for i := range 100 {
			ip := fmt.Sprintf("10.2.0.%d", i+1)
			e.register(svcKey, persistentInstance(ip, 3306))
			e.prober.setDown(ip+":3306", true)
		}
		e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
		sleep(30 * time.Second)
		lines := strings.Count(logs.String(), "could not record the instance's health")
		attempts := e.w.count(registry.OpSetHealth)
		if attempts == 0 || attempts > 12 {
			t.Fatalf("%d write attempts for 100 verdicts in 30 s of failures", attempts)
		}
		if lines == 0 || lines > attempts {
			t.Fatalf("%d warning lines for %d failed writes", lines, attempts)
		}
		if got := promtest.ToFloat64(e.c.m.writeErrors); int(got) != attempts {
			t.Fatalf("write_errors_total = %v, want %d", got, attempts)
		}
		e.w.fail.Store(false)
		sleep(writeRetryMax + 2*time.Second)
		for i := range 100 {
			if e.healthy(svcKey, fmt.Sprintf("10.2.0.%d", i+1), 3306) {
				t.Fatalf("instance %d not marked unhealthy once writes worked", i)
			}
		}
		if n := strings.Count(logs.String(), "persistent instance is now unhealthy"); n > 21 {
			t.Fatalf("%d state-change lines in one burst: the limit is 20 (then 5/s)", n)
		}
	})
}

// TestCheckerKeepsNothingForNone: persistent instances of a NONE cluster
// without a verdict have no target (they cost the checker nothing), and a
// later change of the cluster to TCP finds them in the store.
func TestCheckerKeepsNothingForNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		e.register(svcKey, persistentInstance("10.1.0.1", 3306))
		e.register(svcKey, persistentInstance("10.1.0.2", 3306))
		e.c.mu.Lock()
		n := len(e.c.services)
		e.c.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d services tracked for NONE instances", n)
		}
		e.setCluster(svcKey, model.DefaultCluster, tcpCluster())
		if e.c.Scheduled() != 2 {
			t.Fatalf("%d targets after the cluster became TCP, want 2", e.c.Scheduled())
		}
		e.setCluster(svcKey, model.DefaultCluster, model.DefaultClusterMeta(model.CheckNone))
		e.c.mu.Lock()
		n = len(e.c.services)
		e.c.mu.Unlock()
		if e.c.Scheduled() != 0 || n != 0 {
			t.Fatalf("after NONE again: %d scheduled, %d services", e.c.Scheduled(), n)
		}
	})
}

// TestCheckerKeepsNothingForNoneCP: the same with the instances and the
// settings in the store's persistent part, where the CP side (Raft) keeps
// them: a settings change finds the instances there.
func TestCheckerKeepsNothingForNoneCP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig())
		put := func(fn func(*store.PTx)) {
			t.Helper()
			if err := e.st.UpdatePersistent(svcKey, func(p *store.PTx) error { fn(p); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		for _, ip := range []string{"10.1.0.1", "10.1.0.2"} {
			in := persistentInstance(ip, 3306)
			put(func(p *store.PTx) { p.Put(&in) })
		}
		services := func() int {
			e.c.mu.Lock()
			defer e.c.mu.Unlock()
			return len(e.c.services)
		}
		if n := services(); n != 0 {
			t.Fatalf("%d services tracked for NONE instances", n)
		}
		settings := func(typ string) *model.ServiceMeta {
			return &model.ServiceMeta{Clusters: map[string]model.ClusterMeta{model.DefaultCluster: model.DefaultClusterMeta(typ)}}
		}
		put(func(p *store.PTx) { p.SetSettings(settings(model.CheckTCP)) })
		if e.c.Scheduled() != 2 {
			t.Fatalf("%d targets after the cluster became TCP, want 2", e.c.Scheduled())
		}
		put(func(p *store.PTx) { p.SetSettings(settings(model.CheckNone)) })
		if n := services(); e.c.Scheduled() != 0 || n != 0 {
			t.Fatalf("after NONE again: %d scheduled, %d services", e.c.Scheduled(), n)
		}
	})
}
