package bench

import (
	"maps"
	"slices"
	"sync/atomic"
	"time"
)

// Stats accumulates the outcomes of one worker (or, merged, of a run).
type Stats struct {
	// Latency is the request latency: from the request's start (closed
	// loop) or its scheduled start (open loop).
	Latency *Histogram
	// Metric holds the scenario's own samples (Outcome.Sample); nil if none.
	Metric *Histogram
	// Lag is how late open-loop requests started after their scheduled
	// time; nil in closed loop.
	Lag *Histogram
	// OK and Failed count outcomes; Kinds counts failures by kind.
	OK, Failed int64
	Kinds      map[string]int64
	// Bytes is the total size of the response bodies.
	Bytes int64
	// Ops breaks the outcomes down by operation.
	Ops map[string]*OpStats
}

// OpStats is the per-operation part of Stats.
type OpStats struct {
	OK, Failed int64
	Bytes      int64
	Latency    *Histogram
}

// NewStats returns empty stats.
func NewStats() *Stats {
	return &Stats{Latency: NewHistogram(), Kinds: map[string]int64{}, Ops: map[string]*OpStats{}}
}

// Add records one outcome with its latency. op names the operation when
// the outcome does not.
func (s *Stats) Add(o Outcome, op string, lat time.Duration) {
	if o.Op != "" {
		op = o.Op
	}
	ops := s.Ops[op]
	if ops == nil {
		ops = &OpStats{Latency: NewHistogramExact(0)}
		s.Ops[op] = ops
	}
	s.Latency.Record(lat)
	ops.Latency.Record(lat)
	s.Bytes += o.Bytes
	ops.Bytes += o.Bytes
	if o.Kind == "" {
		s.OK++
		ops.OK++
	} else {
		s.Failed++
		ops.Failed++
		s.Kinds[o.Kind]++
	}
	if o.HasSample || len(o.Samples) > 0 {
		if s.Metric == nil {
			s.Metric = NewHistogram()
		}
		if o.HasSample {
			s.Metric.Record(o.Sample)
		}
		for _, d := range o.Samples {
			s.Metric.Record(d)
		}
	}
}

// addLag records an open-loop start lag.
func (s *Stats) addLag(d time.Duration) {
	if s.Lag == nil {
		s.Lag = NewHistogramExact(0)
	}
	s.Lag.Record(d)
}

// Requests is OK plus Failed.
func (s *Stats) Requests() int64 { return s.OK + s.Failed }

// Merge adds o to s.
func (s *Stats) Merge(o *Stats) {
	s.Latency.Merge(o.Latency)
	if o.Metric != nil {
		if s.Metric == nil {
			s.Metric = NewHistogram()
		}
		s.Metric.Merge(o.Metric)
	}
	if o.Lag != nil {
		if s.Lag == nil {
			s.Lag = NewHistogramExact(0)
		}
		s.Lag.Merge(o.Lag)
	}
	s.OK += o.OK
	s.Failed += o.Failed
	s.Bytes += o.Bytes
	for k, n := range o.Kinds {
		s.Kinds[k] += n
	}
	for _, name := range slices.Sorted(maps.Keys(o.Ops)) {
		src := o.Ops[name]
		dst := s.Ops[name]
		if dst == nil {
			dst = &OpStats{Latency: NewHistogramExact(0)}
			s.Ops[name] = dst
		}
		dst.OK += src.OK
		dst.Failed += src.Failed
		dst.Bytes += src.Bytes
		dst.Latency.Merge(src.Latency)
	}
}

// Live is the running count a progress display reads while a loop runs.
type Live struct {
	Done, Failed atomic.Int64
}

func (l *Live) add(o Outcome) {
	if l == nil {
		return
	}
	l.Done.Add(1)
	if o.Kind != "" {
		l.Failed.Add(1)
	}
}
