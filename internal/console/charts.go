package console

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distro-registry/distro/internal/distro"
)

// sampleWindow is how many one-second samples the charts span.
const sampleWindow = 120

// point is one sample of the cumulative figures.
type point struct {
	at    time.Time
	c     Counters
	peers map[string]peerPoint
}

type peerPoint struct {
	synced  uint64
	latency time.Duration
}

// sampler keeps the last n+1 samples (n intervals) in a ring.
type sampler struct {
	mu   sync.Mutex
	n    int
	pts  []point
	next int
}

func newSampler(n int) *sampler { return &sampler{n: n} }

func (s *sampler) add(at time.Time, c Counters, peers []distro.PeerStatus) {
	p := point{at: at, c: c, peers: make(map[string]peerPoint, len(peers))}
	for _, ps := range peers {
		p.peers[ps.Addr] = peerPoint{synced: ps.Synced, latency: ps.SyncLatency}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pts) < s.n+1 {
		s.pts = append(s.pts, p)
		return
	}
	s.pts[s.next] = p
	s.next = (s.next + 1) % len(s.pts)
}

// points returns the samples oldest first.
func (s *sampler) points() []point {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]point, 0, len(s.pts))
	out = append(out, s.pts[s.next:]...)
	return append(out, s.pts[:s.next]...)
}

// series is one line of a chart: a value per interval, NaN for no value.
type series struct {
	Name string
	vals []float64
}

// rates turns the counter samples into per-second rates.
func rates(pts []point) []series {
	defs := []struct {
		name string
		get  func(Counters) uint64
	}{
		{"registrations", func(c Counters) uint64 { return c.Registrations }},
		{"deregistrations", func(c Counters) uint64 { return c.Deregistrations }},
		{"heartbeats", func(c Counters) uint64 { return c.Beats }},
		{"marked unhealthy", func(c Counters) uint64 { return c.MarkedUnhealthy }},
		{"expired", func(c Counters) uint64 { return c.Expired }},
	}
	out := make([]series, len(defs))
	for i, d := range defs {
		out[i].Name = d.name
		for j := 1; j < len(pts); j++ {
			dt := pts[j].at.Sub(pts[j-1].at).Seconds()
			v := math.NaN()
			if dt > 0 {
				v = float64(d.get(pts[j].c)-d.get(pts[j-1].c)) / dt
			}
			out[i].vals = append(out[i].vals, v)
		}
	}
	return out
}

// syncLatency gives each peer's mean change-to-ack latency (ms) per
// interval; intervals without acknowledged changes have no value.
func syncLatency(pts []point) []series {
	var addrs []string
	for _, p := range pts {
		for a := range p.peers {
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	slices.Sort(addrs)
	out := make([]series, len(addrs))
	for i, a := range addrs {
		out[i].Name = a
		for j := 1; j < len(pts); j++ {
			prev, ok1 := pts[j-1].peers[a]
			cur, ok2 := pts[j].peers[a]
			v := math.NaN()
			if ok1 && ok2 && cur.synced > prev.synced {
				v = float64(cur.latency-prev.latency) / float64(cur.synced-prev.synced) / float64(time.Millisecond)
			}
			out[i].vals = append(out[i].vals, v)
		}
	}
	return out
}

// Chart geometry, in SVG user units. The plot stretches to its box
// (strokes do not scale); the axis labels are HTML around it.
const chartW, chartH = 600, 100

// chart is what the chart template draws.
type chart struct {
	ID, Title, Unit string
	W, H            int
	YMax, YMid      string
	YMidPos         int
	XLeft           string
	Lines           []chartLine
	// Summary is the text alternative: every series' latest and peak value.
	Summary string
	Empty   bool
}

type chartLine struct {
	Name string
	// Class picks the colour and dash pattern (s0…s5).
	Class string
	// Paths are the polylines' points, one per unbroken run of values.
	Paths      []string
	Last, Peak string
}

// buildChart lays out series spanning window intervals, newest at the right.
func buildChart(id, title, unit string, ss []series, window int) chart {
	ch := chart{ID: id, Title: title, Unit: unit, W: chartW, H: chartH, YMidPos: chartH / 2, XLeft: fmt.Sprintf("−%d s", window)}
	peak := 0.0
	for _, s := range ss {
		for _, v := range s.vals {
			if !math.IsNaN(v) && v > peak {
				peak = v
			}
		}
	}
	top := niceCeil(peak)
	ch.YMax, ch.YMid = fmtNum(top), fmtNum(top/2)
	w, h := float64(chartW), float64(chartH-2) // 1 unit margin keeps a flat line at the top or bottom visible
	var summary []string
	ch.Empty = true
	for i, s := range ss {
		ln := chartLine{Name: s.Name, Class: "s" + strconv.Itoa(i%6), Last: "–", Peak: "–"}
		off := window - len(s.vals) // fewer samples than the window: start right of the left edge
		step := w / float64(window)
		var run []string
		flush := func(lastX, lastY float64) {
			if len(run) == 1 {
				// A lone value: draw it as a step-wide flat dash so it shows.
				run = append([]string{pt(lastX-step, lastY)}, run...)
			}
			if len(run) > 0 {
				ln.Paths = append(ln.Paths, strings.Join(run, " "))
			}
			run = nil
		}
		lineMax := math.NaN()
		var x, y float64
		for j, v := range s.vals {
			if math.IsNaN(v) {
				flush(x, y)
				continue
			}
			ch.Empty = false
			x = step * float64(off+j+1)
			y = 1 + h - h*v/top
			run = append(run, pt(x, y))
			if math.IsNaN(lineMax) || v > lineMax {
				lineMax = v
			}
			ln.Last = fmtNum(v)
		}
		flush(x, y)
		if !math.IsNaN(lineMax) {
			ln.Peak = fmtNum(lineMax)
		}
		summary = append(summary, fmt.Sprintf("%s: latest %s, peak %s", s.Name, ln.Last, ln.Peak))
		ch.Lines = append(ch.Lines, ln)
	}
	ch.Summary = fmt.Sprintf("%s over the last %d seconds, in %s. ", title, window, unit) + strings.Join(summary, "; ") + "."
	return ch
}

func pt(x, y float64) string {
	return strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
