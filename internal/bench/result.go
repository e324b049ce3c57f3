package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// ResultSchema is the version of the JSON result format.
const ResultSchema = 1

// Result is the machine-readable outcome of one run (--json).
type Result struct {
	Schema int `json:"schema"`
	// Kind is "run" (a load run) or "memory" (see FillResult).
	Kind     string            `json:"kind"`
	Scenario string            `json:"scenario"`
	Driver   string            `json:"driver"`
	Targets  []string          `json:"targets"`
	Tags     map[string]string `json:"tags,omitempty"`
	RunID    string            `json:"run_id"`
	Started  time.Time         `json:"started"`

	// Mode is "closed" or "open".
	Mode                string  `json:"mode"`
	Concurrency         int     `json:"concurrency"`
	Rate                float64 `json:"rate,omitempty"`
	MaxOutstanding      int     `json:"max_outstanding,omitempty"`
	DurationS           float64 `json:"duration_s"`
	WarmupS             float64 `json:"warmup_s"`
	MaxRequests         int64   `json:"max_requests,omitempty"`
	Services            int     `json:"services"`
	InstancesPerService int     `json:"instances_per_service"`

	// ElapsedS is the measured loop's wall time (start to last completion).
	ElapsedS   float64          `json:"elapsed_s"`
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	// Backlog counts open-loop requests never sent (rate not sustained).
	Backlog int64 `json:"backlog,omitempty"`
	// Stopped is set when the scenario ran out of work before the bounds.
	Stopped          bool    `json:"stopped,omitempty"`
	ThroughputRPS    float64 `json:"throughput_rps"`
	Latency          Summary `json:"latency"`
	BytesPerResponse float64 `json:"bytes_per_response"`
	// StartLag is how late open-loop requests started (included in Latency).
	StartLag *Summary `json:"start_lag,omitempty"`
	// Metric is the scenario's own measurement (converge, push).
	Metric *MetricResult       `json:"metric,omitempty"`
	Ops    map[string]OpResult `json:"ops,omitempty"`
	Server *ServerResult       `json:"server,omitempty"`
	Client *CPUResult          `json:"client,omitempty"`
	Host   *HostResult         `json:"host,omitempty"`
	Extra  map[string]any      `json:"extra,omitempty"`
	// CleanupError reports a failed teardown (the figures stand).
	CleanupError string `json:"cleanup_error,omitempty"`
}

// MetricResult is a scenario-specific latency distribution.
type MetricResult struct {
	Name    string  `json:"name"`
	Latency Summary `json:"latency"`
}

// OpResult is one operation's share of a mixed run.
type OpResult struct {
	Requests         int64   `json:"requests"`
	Errors           int64   `json:"errors"`
	ThroughputRPS    float64 `json:"throughput_rps"`
	BytesPerResponse float64 `json:"bytes_per_response"`
	Latency          Summary `json:"latency"`
}

// ServerResult is what /proc says about the server processes during the
// measured loop.
type ServerResult struct {
	PIDs []int `json:"pids"`
	// CPUSeconds is the utime+stime delta over the measured loop.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUUtilization is CPUSeconds per wall second (1.0 = one core busy).
	CPUUtilization float64 `json:"cpu_utilization"`
	// RequestsPerCPUSecond is requests / CPUSeconds.
	RequestsPerCPUSecond float64 `json:"requests_per_cpu_second"`
	// RSSBytes (VmRSS) and HWMBytes (VmHWM) at the end, summed over PIDs.
	RSSBytes int64  `json:"rss_bytes"`
	HWMBytes int64  `json:"hwm_bytes"`
	Threads  int    `json:"threads"`
	Error    string `json:"error,omitempty"`
}

// CPUResult is the load generator's own CPU use.
type CPUResult struct {
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUUtilization float64 `json:"cpu_utilization"`
}

// HostResult records how busy the machine was: before the run (anything
// but idle means a noisy neighbour) and, during the measured loop, the CPU
// time used by processes other than the server and this tool.
type HostResult struct {
	BusyBeforePct   float64 `json:"busy_before_pct"`
	BusyCPUSeconds  float64 `json:"busy_cpu_seconds"`
	OtherCPUSeconds float64 `json:"other_cpu_seconds,omitempty"`
}

// WriteJSON writes v as indented JSON to path ("-" for stdout).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// WriteTable prints r for humans.
func WriteTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	mode := fmt.Sprintf("closed loop, concurrency %d", r.Concurrency)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop, %.0f req/s, ≤ %d outstanding", r.Rate, r.MaxOutstanding)
	}
	p("scenario", "%s (%s) → %s", r.Scenario, r.Driver, strings.Join(r.Targets, ","))
	p("mode", "%s; %.1fs measured after %.1fs warmup", mode, r.ElapsedS, r.WarmupS)
	p("requests", "%d (ok %d, errors %d)", r.Requests, r.OK, r.Errors)
	if len(r.ErrorKinds) > 0 {
		p("errors by kind", "%s", kindsString(r.ErrorKinds))
	}
	if r.Backlog > 0 {
		p("backlog", "%d requests never sent: the rate was not sustained", r.Backlog)
	}
	if r.Stopped {
		p("stopped", "the scenario ran out of work before the bounds")
	}
	p("throughput", "%.1f req/s", r.ThroughputRPS)
	p("latency", "%s", summaryLine(r.Latency))
	if r.StartLag != nil {
		p("start lag", "p50 %s  p99 %s  max %s", fmtMS(r.StartLag.P50), fmtMS(r.StartLag.P99), fmtMS(r.StartLag.Max))
	}
	p("bytes/response", "%.0f", r.BytesPerResponse)
	if r.Metric != nil {
		p(r.Metric.Name, "%s  (n=%d)", summaryLine(r.Metric.Latency), r.Metric.Latency.Count)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Ops)) {
		o := r.Ops[name]
		p("  op "+name, "%d req (%d err) %.1f req/s  p50 %s  p99 %s  %.0f B/resp", o.Requests, o.Errors, o.ThroughputRPS,
			fmtMS(o.Latency.P50), fmtMS(o.Latency.P99), o.BytesPerResponse)
	}
	if s := r.Server; s != nil {
		if s.Error != "" {
			p("server", "%s", s.Error)
		}
		p("server cpu", "%.2f s (%.0f%% of a core); %.0f req per CPU-second", s.CPUSeconds, 100*s.CPUUtilization, s.RequestsPerCPUSecond)
		p("server memory", "rss %s  hwm %s  threads %d", fmtBytes(s.RSSBytes), fmtBytes(s.HWMBytes), s.Threads)
	}
	if c := r.Client; c != nil {
		p("client cpu", "%.2f s (%.0f%% of a core)", c.CPUSeconds, 100*c.CPUUtilization)
	}
	if h := r.Host; h != nil {
		line := fmt.Sprintf("%.1f%% busy before the run", h.BusyBeforePct)
		if h.OtherCPUSeconds > 0 {
			line += fmt.Sprintf("; %.2f CPU-s used by other processes during it", h.OtherCPUSeconds)
		}
		p("host", "%s", line)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		v := r.Extra[k]
		if s, ok := v.(Summary); ok {
			v = summaryLine(s)
		}
		p("  "+k, "%v", v)
	}
	if r.CleanupError != "" {
		p("cleanup", "%s", r.CleanupError)
	}
	return tw.Flush()
}

func summaryLine(s Summary) string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s", fmtMS(s.P50), fmtMS(s.P90), fmtMS(s.P99),
		fmtMS(s.P999), fmtMS(s.Max), fmtMS(s.Mean))
}

// fmtMS formats milliseconds with 3 significant digits and a unit.
func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	case v >= 1:
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.0fµs", v*1000)
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
