// Package telemetry sets up structured logging and the Prometheus registry
// that every component registers its metrics with. Nothing here is global:
// the server builds one Registry and one logger and passes them down.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger builds the process logger.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors. Besides the defaults, the Go collector exports the heap the
// last GC marked live (go_gc_heap_live_bytes): next_gc is not a measure of
// it, since the GC's goal also grows with the goroutine stacks (many with
// many connected clients).
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Namespace prefixes every metric name.
const Namespace = "distro"
