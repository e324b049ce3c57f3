package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestBucketLayout(t *testing.T) {
	// Every value falls inside its bucket, buckets are contiguous and
	// ordered, and widths respect the 1/128 relative bound.
	prevEnd := int64(0)
	for i := range numBuckets {
		lo, w := bucketRange(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevEnd)
		}
		if i >= subBuckets && float64(w)/float64(lo) > 1.0/subBuckets+1e-12 {
			t.Fatalf("bucket %d: width %d too wide for %d", i, w, lo)
		}
		if bucketOf(lo) != i || bucketOf(lo+w-1) != i {
			t.Fatalf("bucket %d [%d,%d) maps to %d/%d", i, lo, lo+w, bucketOf(lo), bucketOf(lo+w-1))
		}
		prevEnd = lo + w
	}
	if got := bucketOf(math.MaxInt64); got != numBuckets-1 {
		t.Fatalf("huge value in bucket %d", got)
	}
}

func TestHistogramExactWhenSmall(t *testing.T) {
	h := NewHistogram()
	for _, v := range []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6} {
		h.Record(v * time.Millisecond)
	}
	if !h.Exact() {
		t.Fatal("10 samples should be exact")
	}
	cases := map[float64]time.Duration{0.5: 5, 0.9: 9, 0.99: 10, 0.1: 1, 1: 10, 0.05: 1}
	for q, want := range cases {
		if got := h.Quantile(q); got != want*time.Millisecond {
			t.Errorf("q%.2f = %v, want %v", q, got, want*time.Millisecond)
		}
	}
	if h.Min() != time.Millisecond || h.Max() != 10*time.Millisecond || h.Mean() != 5500*time.Microsecond {
		t.Errorf("min/max/mean = %v/%v/%v", h.Min(), h.Max(), h.Mean())
	}
}

func TestHistogramBucketAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogramExact(0)
	var vals []int64
	for range 200000 {
		// Log-normal-ish latencies from 20 µs to seconds.
		v := int64(math.Exp(r.NormFloat64()*1.5+13)) + 20000
		vals = append(vals, v)
		h.RecordValue(v)
	}
	if h.Exact() {
		t.Fatal("exact cap 0 must not keep samples")
	}
	slices.Sort(vals)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := exactQuantile(vals, q)
		got := int64(h.Quantile(q))
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.004 {
			t.Errorf("q%v: got %d, exact %d (%.3f%% off)", q, got, want, 100*rel)
		}
	}
	if int64(h.Max()) != vals[len(vals)-1] || int64(h.Min()) != vals[0] {
		t.Error("min/max must be exact")
	}
}

func TestHistogramMerge(t *testing.T) {
	a, b := NewHistogramExact(8), NewHistogramExact(8)
	for i := range 4 {
		a.RecordValue(int64(i))
		b.RecordValue(int64(100 + i))
	}
	a.Merge(b)
	if !a.Exact() || a.Count() != 8 || a.Quantile(1) != 103 || a.Quantile(0.5) != 3 {
		t.Fatalf("merged exact: count %d exact %v q1 %v q.5 %v", a.Count(), a.Exact(), a.Quantile(1), a.Quantile(0.5))
	}
	a.Merge(b) // 12 > cap 8: falls back to buckets
	if a.Exact() || a.Count() != 12 || a.Max() != 103 {
		t.Fatalf("over cap: exact %v count %d", a.Exact(), a.Count())
	}
	// Bucket fallback still gives values within the bucket resolution.
	if q := a.Quantile(0.5); q != 100 {
		t.Errorf("q.5 after fallback = %v", q)
	}
	empty := NewHistogram()
	empty.Merge(NewHistogram())
	if empty.Count() != 0 || empty.Quantile(0.5) != 0 || empty.Min() != 0 {
		t.Error("empty merge")
	}
}

func TestHistogramOverflowSamplesDropped(t *testing.T) {
	h := NewHistogramExact(3)
	for i := range 5 {
		h.RecordValue(int64(i * 1000))
	}
	if h.Exact() || h.samples != nil {
		t.Fatal("samples must be dropped past the cap")
	}
	h.RecordValue(-5) // negative counts as zero
	if h.Min() != 0 {
		t.Fatalf("min %v", h.Min())
	}
}

func TestSummarize(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Summarize()
	if s.Count != 1000 || s.P50 != 0.5 || s.P90 != 0.9 || s.P99 != 0.99 || s.P999 != 0.999 || s.Max != 1 || !s.Exact {
		t.Fatalf("summary %+v", s)
	}
	if (*Histogram)(nil).Summarize() != (Summary{}) {
		t.Fatal("nil summary")
	}
}
