package harness

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SubscribeEvent is one call of an SDK subscribe callback: when it came,
// the hosts it listed and the error it carried. H is the SDK's host type.
type SubscribeEvent[H any] struct {
	At    time.Time
	Hosts []H
	Err   error
}

// subscriberBuffer is how many unread callbacks a Subscriber keeps; later
// ones are dropped.
const subscriberBuffer = 1024

// Subscriber collects the calls of an SDK subscribe callback for a test to
// wait on: give the SDK its Callback method. The callback never blocks (the
// SDK calls it from its own goroutines, also after the test has ended).
// Hosts are compared by the keys that the key function gives them.
type Subscriber[H any] struct {
	ch  chan SubscribeEvent[H]
	key func(H) string
}

// NewSubscriber returns a Subscriber that names hosts with key (e.g.
// "ip:port" or "ip:port#cluster").
func NewSubscriber[H any](key func(H) string) *Subscriber[H] {
	return &Subscriber[H]{ch: make(chan SubscribeEvent[H], subscriberBuffer), key: key}
}

// Callback is the function to pass to the SDK as SubscribeCallback.
func (s *Subscriber[H]) Callback(hosts []H, err error) {
	select {
	case s.ch <- SubscribeEvent[H]{At: time.Now(), Hosts: slices.Clone(hosts), Err: err}:
	default:
	}
}

// Keys returns the keys of hosts, sorted.
func (s *Subscriber[H]) Keys(hosts []H) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, s.key(h))
	}
	slices.Sort(out)
	return out
}

// WaitFor returns the first callback (in order) that match accepts within
// timeout, with the callbacks seen before it for diagnostics; ok is false
// if none came in time.
func (s *Subscriber[H]) WaitFor(timeout time.Duration, match func(SubscribeEvent[H]) bool) (ev SubscribeEvent[H], seen []SubscribeEvent[H], ok bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev := <-s.ch:
			if match(ev) {
				return ev, seen, true
			}
			seen = append(seen, ev)
		case <-deadline.C:
			return SubscribeEvent[H]{}, seen, false
		}
	}
}

// WaitForHosts is WaitFor for the first callback without an error whose
// hosts are exactly want (keys, in any order; none: an empty list).
func (s *Subscriber[H]) WaitForHosts(timeout time.Duration, want ...string) (SubscribeEvent[H], []SubscribeEvent[H], bool) {
	return s.WaitFor(timeout, func(ev SubscribeEvent[H]) bool {
		return ev.Err == nil && SameSet(s.Keys(ev.Hosts), want)
	})
}

// Describe renders callbacks for a failure message: time, host keys and
// error of each, or "(no callbacks)".
func (s *Subscriber[H]) Describe(evs []SubscribeEvent[H]) string {
	if len(evs) == 0 {
		return "(no callbacks)"
	}
	parts := make([]string, 0, len(evs))
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%s hosts=%v err=%v", e.At.Format("15:04:05.000"), s.Keys(e.Hosts), e.Err))
	}
	return strings.Join(parts, "; ")
}
