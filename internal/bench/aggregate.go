package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Collection is every result of a benchmark session, read from a
// directory of JSON files.
type Collection struct {
	Runs   []*Result
	Memory []*FillResult
	// Conns are connected-client measurements (distrobench conns).
	Conns []*ConnsResult
	// Meta is the session description (meta.json): machine, mode,
	// repetitions, commit; free-form strings.
	Meta map[string]string
	// Excluded lists run files left out of every figure, with the reason:
	// no request completed, or a server process vanished during the run.
	Excluded []string
}

// LoadCollection reads every *.json file of dir: run results, memory
// results and meta.json.
func LoadCollection(dir string) (*Collection, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	c := &Collection{Meta: map[string]string{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if filepath.Base(f) == "meta.json" {
			if err := json.Unmarshal(b, &c.Meta); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			continue
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		switch head.Kind {
		case "run":
			var r Result
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			switch {
			case r.Requests == 0:
				c.Excluded = append(c.Excluded, filepath.Base(f)+" (no request completed)")
				continue
			case r.Server != nil && r.Server.Error != "":
				c.Excluded = append(c.Excluded, filepath.Base(f)+" (the server died during the run)")
				continue
			}
			c.Runs = append(c.Runs, &r)
		case "memory":
			var r FillResult
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			c.Memory = append(c.Memory, &r)
		case "connections":
			var r ConnsResult
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			c.Conns = append(c.Conns, &r)
		}
	}
	return c, nil
}

// Stat is the median, minimum and maximum of repeated measurements.
type Stat struct {
	Median, Min, Max float64
	N                int
}

// StatOf summarises vals (the median of an even count is the mean of the
// two middle values).
func StatOf(vals []float64) Stat {
	if len(vals) == 0 {
		return Stat{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// Group is the repetitions of one scenario on one server in one series.
type Group struct {
	Scenario string
	// Server is the "server" tag (distrod, ceiling, peer, ...).
	Server string
	// Series is the "series" tag, or the loop mode.
	Series string
	Runs   []*Result
}

// Tag returns a tag of r ("" if absent).
func (r *Result) Tag(k string) string { return r.Tags[k] }

// Groups partitions the runs by scenario, server and series.
func (c *Collection) Groups() []*Group {
	idx := map[string]*Group{}
	var out []*Group
	for _, r := range c.Runs {
		series := r.Tag("series")
		if series == "" {
			series = r.Mode
		}
		server := r.Tag("server")
		if server == "" {
			server = "server"
		}
		k := r.Scenario + "\x00" + server + "\x00" + series
		g := idx[k]
		if g == nil {
			g = &Group{Scenario: r.Scenario, Server: server, Series: series}
			idx[k] = g
			out = append(out, g)
		}
		g.Runs = append(g.Runs, r)
	}
	return out
}

// Find returns the group of scenario, server and series, or nil.
func (c *Collection) Find(scenario, server, series string) *Group {
	for _, g := range c.Groups() {
		if g.Scenario == scenario && g.Server == server && g.Series == series {
			return g
		}
	}
	return nil
}

// Stat summarises f over the group's runs.
func (g *Group) Stat(f func(*Result) float64) Stat {
	if g == nil {
		return Stat{}
	}
	vals := make([]float64, 0, len(g.Runs))
	for _, r := range g.Runs {
		if v := f(r); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	return StatOf(vals)
}

// Sum adds f over the group's runs.
func (g *Group) Sum(f func(*Result) float64) float64 {
	var s float64
	if g == nil {
		return 0
	}
	for _, r := range g.Runs {
		s += f(r)
	}
	return s
}

// Field extractors for Stat.
var (
	FThroughput = func(r *Result) float64 { return r.ThroughputRPS }
	FP50        = func(r *Result) float64 { return r.Latency.P50 }
	FP90        = func(r *Result) float64 { return r.Latency.P90 }
	FP99        = func(r *Result) float64 { return r.Latency.P99 }
	FP999       = func(r *Result) float64 { return r.Latency.P999 }
	FBytes      = func(r *Result) float64 { return r.BytesPerResponse }
	FErrors     = func(r *Result) float64 { return float64(r.Errors) }
	FRequests   = func(r *Result) float64 { return float64(r.Requests) }
	FPerCPU     = func(r *Result) float64 {
		if r.Server == nil || r.Server.RequestsPerCPUSecond == 0 {
			return math.NaN()
		}
		return r.Server.RequestsPerCPUSecond
	}
	FServerUtil = func(r *Result) float64 {
		if r.Server == nil {
			return math.NaN()
		}
		return r.Server.CPUUtilization
	}
	FClientUtil = func(r *Result) float64 {
		if r.Client == nil {
			return math.NaN()
		}
		return r.Client.CPUUtilization
	}
	FHostBusy = func(r *Result) float64 {
		if r.Host == nil || r.Host.BusyBeforePct < 0 {
			return math.NaN()
		}
		return r.Host.BusyBeforePct
	}
	FOtherCPU = func(r *Result) float64 {
		if r.Host == nil {
			return math.NaN()
		}
		return r.Host.OtherCPUSeconds
	}
	FRate = func(r *Result) float64 { return r.Rate }
	// Metric percentiles (converge, push).
	FMetricP50 = func(r *Result) float64 { return metricOr(r, func(s Summary) float64 { return s.P50 }) }
	FMetricP90 = func(r *Result) float64 { return metricOr(r, func(s Summary) float64 { return s.P90 }) }
	FMetricP99 = func(r *Result) float64 { return metricOr(r, func(s Summary) float64 { return s.P99 }) }
	FMetricMax = func(r *Result) float64 { return metricOr(r, func(s Summary) float64 { return s.Max }) }
	FMetricN   = func(r *Result) float64 { return metricOr(r, func(s Summary) float64 { return float64(s.Count) }) }
)

func metricOr(r *Result, f func(Summary) float64) float64 {
	if r.Metric == nil {
		return math.NaN()
	}
	return f(r.Metric.Latency)
}

// ExtraFloat reads a numeric Extra entry (NaN if absent).
func ExtraFloat(r *Result, k string) float64 {
	switch v := r.Extra[k].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return math.NaN()
}

// ServerOrder sorts server names: distrod first, then peers, the ceiling
// last.
func ServerOrder(names []string) []string {
	rank := func(s string) int {
		switch {
		case strings.HasPrefix(s, "distrod"):
			return 0
		case s == "ceiling":
			return 2
		}
		return 1
	}
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}

// ScenarioOrder sorts scenario names as Scenarios lists them.
func ScenarioOrder(names []string) []string {
	out := slices.Clone(names)
	idx := func(s string) int {
		if i := slices.Index(Scenarios, s); i >= 0 {
			return i
		}
		return len(Scenarios)
	}
	slices.SortStableFunc(out, func(a, b string) int {
		if d := idx(a) - idx(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}
