package bench

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// Histogram layout: values (nanoseconds) below 2^subBits are counted
// exactly; above, every power of two is split into 2^subBits linear
// sub-buckets, as in HdrHistogram. A bucket's width is at most 1/128 of its
// lower bound, so a percentile read from the midpoint of its bucket is
// within 0.4% of the true sample.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	// maxExp bounds the range: values of 2^maxExp ns (about 18 minutes) or
	// more land in the last bucket (their exact maximum is kept anyway).
	maxExp     = 40
	numBuckets = (maxExp - subBits + 1) * subBuckets
	// DefaultExactSamples is how many raw samples a histogram keeps: while
	// its count is at most this, percentiles are exact.
	DefaultExactSamples = 4096
)

// Histogram records durations in log-linear buckets (HDR-like, ≤ 0.4%
// relative error) and, while they are few, the exact samples too. It is not
// safe for concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
	samples  []int64
	// exactCap is how many samples are kept; once n exceeds it the samples
	// are dropped and percentiles come from the buckets.
	exactCap int
}

// NewHistogram returns an empty histogram that keeps up to
// DefaultExactSamples exact samples.
func NewHistogram() *Histogram { return NewHistogramExact(DefaultExactSamples) }

// NewHistogramExact returns an empty histogram that keeps up to exact raw
// samples (0: buckets only).
func NewHistogramExact(exact int) *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64, exactCap: exact}
}

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	u := uint64(v)
	e := bits.Len64(u) - subBits - 1 // shift that brings u into [2^subBits, 2^(subBits+1))
	if e > maxExp-subBits-1 {
		return numBuckets - 1
	}
	return (e+1)*subBuckets + int(u>>uint(e)) - subBuckets
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*subBuckets {
		return int64(i), 1
	}
	e := i/subBuckets - 1
	sub := int64(i%subBuckets + subBuckets)
	return sub << uint(e), int64(1) << uint(e)
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) { h.RecordValue(int64(d)) }

// RecordValue adds one value (nanoseconds for durations).
func (h *Histogram) RecordValue(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
	if h.samples != nil || h.n == 1 {
		if int(h.n) <= h.exactCap {
			h.samples = append(h.samples, v)
		} else {
			h.samples = nil
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Exact reports whether percentiles are computed from every raw sample.
func (h *Histogram) Exact() bool { return h.n > 0 && len(h.samples) == int(h.n) }

// Min, Max and Mean summarise the values (zero when empty).
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the arithmetic mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank rule: the
// smallest value with at least ⌈q·n⌉ values at or below it. From buckets it
// is the bucket midpoint, clamped to the exact min and max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if h.Exact() {
		s := slices.Clone(h.samples)
		slices.Sort(s)
		return time.Duration(s[rank-1])
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Merge adds o's values to h. Exact samples survive while the combined
// count fits.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	exact := h.n == 0 || h.Exact()
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
	if exact && o.Exact() && int(h.n) <= h.exactCap {
		h.samples = append(h.samples, o.samples...)
	} else {
		h.samples = nil
	}
}

// Summary is a histogram's digest in milliseconds, as results carry it.
type Summary struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	// Exact is true when the percentiles come from every raw sample.
	Exact bool `json:"exact"`
}

// Summarize digests h.
func (h *Histogram) Summarize() Summary {
	if h == nil || h.n == 0 {
		return Summary{}
	}
	return Summary{
		Count: h.n, Min: ms(h.Min()), Mean: ms(h.Mean()),
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)),
		Max: ms(h.Max()), Exact: h.Exact(),
	}
}

// ms converts a duration to fractional milliseconds rounded to 1 µs.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
