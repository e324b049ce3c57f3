// Package hlc implements a hybrid logical clock. Replicated records are
// versioned by HLC timestamps, so versions follow causality (a node that has
// seen version v only issues versions above v) while staying close to wall
// time, and a node whose wall clock jumps back never issues a smaller version.
package hlc

import (
	"strconv"
	"sync"
	"time"
)

// logicalBits is the width of the logical counter in a Timestamp.
const logicalBits = 16

// Timestamp packs wall milliseconds (high 48 bits) and a logical counter
// (low 16 bits). Comparing two Timestamps as integers orders them.
type Timestamp uint64

// Make builds a Timestamp from wall milliseconds and a logical counter.
func Make(wallMillis int64, logical uint16) Timestamp {
	return Timestamp(uint64(wallMillis)<<logicalBits | uint64(logical))
}

// WallMillis returns the wall-clock part in Unix milliseconds.
func (t Timestamp) WallMillis() int64 { return int64(uint64(t) >> logicalBits) }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t) }

// String formats as "millis.logical".
func (t Timestamp) String() string {
	return strconv.FormatInt(t.WallMillis(), 10) + "." + strconv.Itoa(int(t.Logical()))
}

// Clock issues strictly increasing timestamps. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	last Timestamp
	wall func() time.Time
}

// New returns a clock reading wall time from wall (time.Now when nil).
func New(wall func() time.Time) *Clock {
	if wall == nil {
		wall = time.Now
	}
	return &Clock{wall: wall}
}

// Now returns a timestamp greater than every timestamp issued or observed so far.
func (c *Clock) Now() Timestamp {
	w := Make(c.wall().UnixMilli(), 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	if w > c.last {
		c.last = w
	} else {
		c.last++
	}
	return c.last
}

// Observe folds a timestamp seen from a peer into the clock, so that later
// local timestamps order after it. Timestamps more than maxAhead in the
// future of local wall time are ignored, which bounds how far one node's
// broken clock can drag the others.
func (c *Clock) Observe(t Timestamp, maxAhead time.Duration) {
	limit := Make(c.wall().Add(maxAhead).UnixMilli(), 0)
	if t > limit {
		return
	}
	c.mu.Lock()
	if t > c.last {
		c.last = t
	}
	c.mu.Unlock()
}

// Last returns the most recent timestamp issued or observed.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
