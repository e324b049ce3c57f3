package distro

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/telemetry"
)

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	syncLatency     prometheus.Histogram
	syncRetries     *prometheus.CounterVec
	syncMessages    prometheus.Counter
	syncRecords     prometheus.Counter
	syncBytes       prometheus.Counter
	queueDropped    *prometheus.CounterVec
	digestMismatch  prometheus.Counter
	repairedKeys    prometheus.Counter
	forgotten       prometheus.Counter
	forwarded       prometheus.Counter
	forwardFallback prometheus.Counter
	forwardServed   prometheus.Counter
	forwardLate     prometheus.Counter
	rejected        *prometheus.CounterVec
	snapshotRecords prometheus.Counter
	leaseExpired    prometheus.Counter
	confirmRounds   *prometheus.CounterVec
	confirmRefuted  prometheus.Counter
	confirmRelayed  prometheus.Counter

	reg prometheus.Registerer
}

// NewMetrics creates the metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ns, sub := telemetry.Namespace, "distro"
	m := &Metrics{
		syncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "sync_latency_seconds",
			Help:    "Time from a local change to its acknowledgement by a peer.",
			Buckets: []float64{.005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}}),
		syncRetries:     prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sync_retries_total", Help: "Failed sync batches put back for retry."}, []string{"peer"}),
		syncMessages:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sync_messages_total", Help: "Sync messages acknowledged by peers."}),
		syncRecords:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sync_records_total", Help: "Records sent in acknowledged sync messages."}),
		syncBytes:       prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sync_bytes_total", Help: "Payload bytes of acknowledged sync messages (before envelope and gRPC framing)."}),
		queueDropped:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "queue_dropped_total", Help: "Sync tasks dropped because a peer queue was full (verification repairs them)."}, []string{"peer"}),
		digestMismatch:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "digest_mismatches_total", Help: "Keys found different by verification."}),
		repairedKeys:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "repaired_keys_total", Help: "Keys repaired from a peer's full state."}),
		forgotten:       prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forgotten_records_total", Help: "Stale records dropped because their owner no longer has them."}),
		forwarded:       prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forwarded_writes_total", Help: "Client writes handed to the owner."}),
		forwardFallback: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forward_fallback_total", Help: "Client writes applied locally because the owner was unreachable."}),
		forwardServed:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forwarded_writes_served_total", Help: "Writes handed to this node by peers."}),
		forwardLate:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forwarded_writes_declined_total", Help: "Handed-on writes declined (arrived after the sender's timeout, or this node was still loading)."}),
		rejected:        prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_messages_total", Help: "Peer messages rejected as invalid."}, []string{"kind"}),
		snapshotRecords: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshot_records_loaded_total", Help: "Records merged from startup snapshots."}),
		leaseExpired:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "conn_lease_expired_total", Help: "Connection-held instances dropped because their node stayed unreachable."}),
		confirmRounds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "timeout_confirm_rounds_total",
			Help: "Rounds asking the members about heartbeat timeouts before applying them, by result (quorum: a majority answered)."}, []string{"result"}),
		confirmRefuted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "timeout_confirm_refuted_total",
			Help: "Heartbeat timeouts a member refuted with a real heartbeat it handled within the timeout."}),
		confirmRelayed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "timeout_confirm_relayed_total",
			Help: "Heartbeat timeouts of a peer this node asked the owner it sees about (the peer's view missed that owner)."}),
		reg: reg,
	}
	if reg != nil {
		reg.MustRegister(m.syncLatency, m.syncRetries, m.syncMessages, m.syncRecords, m.syncBytes, m.queueDropped, m.digestMismatch,
			m.repairedKeys, m.forgotten, m.forwarded, m.forwardFallback, m.forwardServed, m.forwardLate, m.rejected, m.snapshotRecords, m.leaseExpired,
			m.confirmRounds, m.confirmRefuted, m.confirmRelayed)
	}
	return m
}

// bind registers gauges that read engine state.
func (m *Metrics) bind(e *Engine) {
	if m.reg == nil {
		return
	}
	ns, sub := telemetry.Namespace, "distro"
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ready", Help: "1 once the startup load is done."},
			func() float64 {
				if ok, _ := e.Ready(); ok {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "queue_depth", Help: "Pending sync keys summed over peers."},
			func() float64 { return float64(e.QueueDepth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "owned_keys", Help: "Services this node is responsible for."},
			func() float64 { return float64(e.OwnedKeys()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "tombstone_hold_seconds",
			Help: "How far tombstone collection is held back beyond the retention, for members that have not acknowledged the tombstones."},
			func() float64 { return e.TombstoneHeld().Seconds() }),
	)
}

// QueueDepth returns the pending sync keys summed over peers.
func (e *Engine) QueueDepth() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, p := range e.peers {
		n += p.depth()
	}
	return n
}

// OwnedKeys counts the services this node owns in its current view.
func (e *Engine) OwnedKeys() int {
	n := 0
	elig := e.view.Load().Eligible()
	e.store.RangeKeys(func(k model.ServiceKey, _ uint64) bool {
		if Owner(k, elig) == e.cfg.Self {
			n++
		}
		return true
	})
	return n
}
