package grpcapi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distro-registry/distro/internal/telemetry"
)

// metrics are the gRPC API's Prometheus metrics.
type metrics struct {
	requests  *prometheus.CounterVec
	pushes    prometheus.Counter
	acks      prometheus.Counter
	retries   prometheus.Counter
	failures  prometheus.Counter
	ackTime   prometheus.Histogram
	dropped   *prometheus.CounterVec
	probes    prometheus.Counter
	resets    prometheus.Counter
	collector []prometheus.Collector
	// okCount are the requests_total children of successful requests by
	// type, resolved once: the hot path skips the label lookup.
	okCount map[string]prometheus.Counter
}

// knownTypes bounds the "type" label: anything else counts as "other".
var knownTypes = map[string]bool{
	TypeServerCheckRequest: true, TypeConnectionSetupRequest: true, TypeHealthCheckRequest: true,
	TypeInstanceRequest: true, TypeBatchInstanceRequest: true, TypePersistentInstanceRequest: true,
	TypeServiceQueryRequest: true, TypeSubscribeServiceRequest: true, TypeServiceListRequest: true,
	TypeNotifySubscriberResponse: true, TypeClientDetectionResponse: true, TypeConnectResetResponse: true,
}

func newMetrics(s *Server, reg prometheus.Registerer) *metrics {
	ns, sub := telemetry.Namespace, "grpc"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Client requests and stream messages by type and result (ok, or the Nacos error code)."}, []string{"type", "result"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pushes_total",
			Help: "NotifySubscriberRequest pushes sent (one per subscription per change, resends not included)."}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "push_acks_total",
			Help: "Pushes acknowledged by the client."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "push_retries_total",
			Help: "Pushes resent because their ack did not arrive in time."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "push_failures_total",
			Help: "Pushes given up after every resend (their connection is dropped)."}),
		ackTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "push_ack_seconds",
			Help:    "Time from sending a push to its acknowledgement.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connections_dropped_total",
			Help: "Client connections closed by the server, by reason."}, []string{"reason"}),
		probes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "client_detections_total",
			Help: "ClientDetectionRequest probes sent to idle connections."}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connect_resets_total",
			Help: "ConnectResetRequest messages sent (operator moved clients away)."}),
	}
	m.collector = []prometheus.Collector{m.requests, m.pushes, m.acks, m.retries, m.failures, m.ackTime, m.dropped, m.probes, m.resets,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "clients",
			Help: "Connected clients: connections that completed ConnectionSetupRequest."},
			func() float64 { return float64(s.registered.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "transports",
			Help: "Open client transport (HTTP/2) connections, set up or not."},
			func() float64 { return float64(s.transportCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "subscriptions",
			Help: "Service subscriptions of connected clients."},
			func() float64 { return float64(s.subscriptionCount()) }),
	}
	if reg != nil {
		reg.MustRegister(m.collector...)
	}
	m.okCount = make(map[string]prometheus.Counter, len(knownTypes))
	for t := range knownTypes {
		m.okCount[t] = m.requests.WithLabelValues(t, "ok")
	}
	return m
}

// request counts one request of type typ answered with Nacos error code
// code (0: success).
func (m *metrics) request(typ string, code int) {
	if code == 0 {
		if c := m.okCount[typ]; c != nil {
			c.Inc()
			return
		}
	}
	if !knownTypes[typ] {
		typ = "other"
	}
	result := "ok"
	if code != 0 {
		result = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(typ, result).Inc()
}
