package harness

import (
	"sync"
)

// maxLogBytes caps what a node keeps of its output; older bytes are dropped.
const maxLogBytes = 16 << 20

// logBuffer is a concurrency-safe, size-capped byte log with stable offsets
// (marks) so a test can print only what was written while it ran.
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int // bytes discarded from the head
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - maxLogBytes; over > 0 {
		l.buf = append([]byte(nil), l.buf[over:]...)
		l.dropped += over
	}
	return len(p), nil
}

// mark is the offset of the next byte written.
func (l *logBuffer) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped + len(l.buf)
}

// since returns what was written after mark (what is still kept of it).
func (l *logBuffer) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := mark - l.dropped
	prefix := ""
	if i < 0 {
		i = 0
		prefix = "[... earlier output dropped ...]\n"
	}
	if i > len(l.buf) {
		i = len(l.buf)
	}
	return prefix + string(l.buf[i:])
}
