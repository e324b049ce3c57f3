package healthcheck

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/telemetry"
)

// metrics are the checker's Prometheus metrics.
type metrics struct {
	checks      *prometheus.CounterVec
	failures    *prometheus.CounterVec
	changes     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	late        prometheus.Counter
	writeErrors prometheus.Counter
	// byType caches the children of the known check types.
	byType map[string]typeMetrics
}

type typeMetrics struct {
	checks, failures prometheus.Counter
	latency          prometheus.Observer
}

// observe counts one check of type typ.
func (m *metrics) observe(typ string, took time.Duration, err error) {
	tm, ok := m.byType[typ]
	if !ok {
		tm = typeMetrics{m.checks.WithLabelValues(typ), m.failures.WithLabelValues(typ), m.latency.WithLabelValues(typ)}
	}
	tm.checks.Inc()
	tm.latency.Observe(took.Seconds())
	if err != nil {
		tm.failures.Inc()
	}
}

func newMetrics(reg prometheus.Registerer, c *Checker) *metrics {
	ns, sub := telemetry.Namespace, "healthcheck"
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "checks_total",
			Help: "Health checks of persistent instances run, by type."}, []string{"type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "failures_total",
			Help: "Health checks that failed, by type."}, []string{"type"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "state_changes_total",
			Help: "Health states written for persistent instances, by new state."}, []string{"to"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "check_latency_seconds",
			Help: "Duration of health checks, by type.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"type"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "late_total",
			Help: "Checks started more than two scheduler ticks after they were due (the worker pool was busy)."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "write_errors_total",
			Help: "Health state writes that failed (retried after a pause)."}),
	}
	m.byType = map[string]typeMetrics{}
	for _, typ := range []string{model.CheckTCP, model.CheckHTTP} {
		m.byType[typ] = typeMetrics{m.checks.WithLabelValues(typ), m.failures.WithLabelValues(typ), m.latency.WithLabelValues(typ)}
	}
	if reg != nil {
		reg.MustRegister(m.checks, m.failures, m.changes, m.latency, m.late, m.writeErrors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "targets",
				Help: "Persistent instances this node checks (owned services, a checker other than NONE)."},
				func() float64 { return float64(c.Scheduled()) }))
	}
	return m
}
