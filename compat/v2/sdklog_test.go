package v2

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/common/logger"
)

// sdkLog captures the v2 SDK's (process-global) log in memory. At debug
// level the SDK logs every gRPC request it sends with the response it got
// ("grpc request nacos server success, request=..., response=..."), each
// cache update from a response or push ("service key:... was updated
// to:..."), stale data it drops ("out of date data received") and its
// connection changes. A failing test prints the lines that concern it:
// that is the record of what the SDK sent and what distrod answered.
var sdkLog = &captureLogger{}

type logLine struct {
	at    time.Time
	level string
	msg   string
}

type captureLogger struct {
	mu    sync.Mutex
	lines []logLine
}

const maxLogLines = 50000

func (l *captureLogger) add(level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{at: time.Now(), level: level, msg: msg})
	if len(l.lines) > maxLogLines {
		l.lines = append([]logLine(nil), l.lines[len(l.lines)-maxLogLines/2:]...)
	}
}

func (l *captureLogger) Info(args ...any)             { l.add("INFO", fmt.Sprint(args...)) }
func (l *captureLogger) Warn(args ...any)             { l.add("WARN", fmt.Sprint(args...)) }
func (l *captureLogger) Error(args ...any)            { l.add("ERROR", fmt.Sprint(args...)) }
func (l *captureLogger) Debug(args ...any)            { l.add("DEBUG", fmt.Sprint(args...)) }
func (l *captureLogger) Infof(f string, args ...any)  { l.add("INFO", fmt.Sprintf(f, args...)) }
func (l *captureLogger) Warnf(f string, args ...any)  { l.add("WARN", fmt.Sprintf(f, args...)) }
func (l *captureLogger) Errorf(f string, args ...any) { l.add("ERROR", fmt.Sprintf(f, args...)) }
func (l *captureLogger) Debugf(f string, args ...any) { l.add("DEBUG", fmt.Sprintf(f, args...)) }
func (l *captureLogger) Close() error                 { return nil }
func (l *captureLogger) since(t time.Time) (out []logLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.lines {
		if !ln.at.Before(t) {
			out = append(out, ln)
		}
	}
	return out
}

// installSDKLogger makes the SDK log into sdkLog. The SDK keeps a logger
// that is already set (NewNamingClient only initialises a missing one).
func installSDKLogger() { logger.SetLogger(sdkLog) }

// dumpSDKLogOnFailure logs, if t fails, the SDK log lines written while t
// ran that mention one of tokens (service names, client labels) or, at
// warn/error level, anything (connection trouble is logged without names).
func dumpSDKLogOnFailure(t *testing.T, tokens func() []string) {
	start := time.Now()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		toks := tokens()
		var kept []logLine
		for _, ln := range sdkLog.since(start) {
			keep := ln.level == "WARN" || ln.level == "ERROR" ||
				strings.Contains(ln.msg, "connect") || strings.Contains(ln.msg, "stream")
			for _, tok := range toks {
				if tok != "" && strings.Contains(ln.msg, tok) {
					keep = true
					break
				}
			}
			if keep {
				kept = append(kept, ln)
			}
		}
		// Too many: keep every warning and error (up to 300) and the
		// latest other lines.
		const maxLines = 600
		if len(kept) > maxLines {
			var warn int
			for _, ln := range kept {
				if ln.level == "WARN" || ln.level == "ERROR" {
					warn++
				}
			}
			warn = min(warn, 300)
			others := maxLines - warn
			var cut []logLine
			for i := len(kept) - 1; i >= 0; i-- {
				ln := kept[i]
				if ln.level == "WARN" || ln.level == "ERROR" {
					if warn > 0 {
						cut = append(cut, ln)
						warn--
					}
				} else if others > 0 {
					cut = append(cut, ln)
					others--
				}
			}
			slices.Reverse(cut)
			kept = cut
		}
		var b strings.Builder
		n := len(kept)
		for _, ln := range kept {
			msg := ln.msg
			if len(msg) > 3000 {
				msg = msg[:3000] + "...(truncated)"
			}
			fmt.Fprintf(&b, "%s %-5s %s\n", ln.at.Format("15:04:05.000"), ln.level, msg)
		}
		if n == 0 {
			b.WriteString("(no matching SDK log lines)\n")
		}
		t.Logf("--- nacos-sdk-go v2 log while %s ran (its requests with distrod's answers, pushes, connection events; other parallel tests' warnings included) ---\n%s", t.Name(), b.String())
	})
}
