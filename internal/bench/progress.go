package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress draws a one-line progress bar (on stderr, usually) while a
// phase runs. A nil *Progress draws nothing, so callers need no checks.
type Progress struct {
	w      io.Writer
	period time.Duration

	mu    sync.Mutex
	stop  chan struct{}
	done  chan struct{}
	phase string
	start time.Time
	dur   time.Duration
	max   int64
	live  *Live
}

// NewProgress returns a progress bar writing to w, or nil when disabled.
func NewProgress(w io.Writer, enabled bool) *Progress {
	if !enabled {
		return nil
	}
	return &Progress{w: w, period: 200 * time.Millisecond}
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Phase starts drawing a phase bounded by dur (time) and/or max (count).
func (p *Progress) Phase(name string, dur time.Duration, max int64, live *Live) {
	if p == nil {
		return
	}
	p.End()
	p.mu.Lock()
	p.phase, p.start, p.dur, p.max, p.live = name, time.Now(), dur, max, live
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	stop, done := p.stop, p.done
	p.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(p.period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				p.draw(true)
				return
			case <-t.C:
				p.draw(false)
			}
		}
	}()
}

// End finishes the current phase, leaving its final line.
func (p *Progress) End() {
	if p == nil {
		return
	}
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (p *Progress) draw(final bool) {
	p.mu.Lock()
	line := renderProgress(p.phase, time.Since(p.start), p.dur, p.max, p.live, 30)
	p.mu.Unlock()
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s%s", line, end)
}

// renderProgress builds the bar text: phase, bar, percent, elapsed,
// requests, rate and errors.
func renderProgress(phase string, el, dur time.Duration, maxN int64, live *Live, width int) string {
	var done, failed int64
	if live != nil {
		done, failed = live.Done.Load(), live.Failed.Load()
	}
	frac := 0.0
	if dur > 0 {
		frac = el.Seconds() / dur.Seconds()
	}
	if maxN > 0 {
		frac = max(frac, float64(done)/float64(maxN))
	}
	frac = min(max(frac, 0), 1)
	fill := int(frac * float64(width))
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	rate := 0.0
	if s := el.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	return fmt.Sprintf("%-8s %s %3.0f%% %6.1fs %9d req %8.0f/s err %d", phase, bar, 100*frac, el.Seconds(), done, rate, failed)
}
