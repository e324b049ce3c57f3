package member

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects a test's log output; it is dumped if the test fails.
// Logs are not sent to t.Log because lookup goroutines may log briefly after
// the test returns.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines that contain every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	var out []string
	for l := range strings.SplitSeq(b.String(), "\n") {
		match := l != ""
		for _, s := range subs {
			match = match && strings.Contains(l, s)
		}
		if match {
			out = append(out, l)
		}
	}
	return out
}

// waitForLines polls until at least n log lines contain every one of subs,
// failing after a generous deadline.
func (b *logBuffer) waitForLines(t *testing.T, n int, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(b.lines(subs...)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d log lines containing %q within 10 s", n, subs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log output:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
