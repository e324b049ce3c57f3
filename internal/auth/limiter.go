package auth

import (
	"sync"
	"time"
)

// Throttling of failed password checks: each user name and each source
// address has a bucket of Burst tokens refilled one per Refill; a failure
// takes a token, and while a bucket is empty password checks for that name
// or address are refused without running bcrypt.
const (
	DefaultUserBurst  = 10
	DefaultUserRefill = 6 * time.Second // 10 a minute once the burst is spent
	DefaultAddrBurst  = 20
	DefaultAddrRefill = 3 * time.Second // 20 a minute
	// limiterMaxKeys bounds each bucket table (an attacker can invent names
	// and, with IPv6, addresses).
	limiterMaxKeys = 65536
)

// ErrThrottled answers a login attempt while its bucket is empty.
var ErrThrottled = &Error{Status: 429, Msg: "too many failed logins; wait and try again"}

// limiter is a table of token buckets.
type limiter struct {
	burst  float64
	refill time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(burst int, refill time.Duration) *limiter {
	return &limiter{burst: float64(burst), refill: refill, buckets: make(map[string]*bucket)}
}

// level returns key's bucket level at now (full for an unknown key).
// Caller holds mu.
func (l *limiter) level(key string, now time.Time) float64 {
	b := l.buckets[key]
	if b == nil {
		return l.burst
	}
	return min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
}

// allow reports whether key may make an attempt (its bucket holds a token).
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level(key, now) >= 1
}

// fail takes a token from key's bucket.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lv := l.level(key, now)
	if len(l.buckets) >= limiterMaxKeys {
		// Full buckets carry no information: drop them.
		for k := range l.buckets {
			if l.level(k, now) >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= limiterMaxKeys {
			return // still full of active attackers: the address limit holds them
		}
		b = &bucket{}
		l.buckets[key] = b
	}
	b.tokens, b.at = max(lv-1, 0), now
}
