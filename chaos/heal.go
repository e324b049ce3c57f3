package chaos

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// What a heal may and may not do (issue 8, docs/reliability.md).
//
// I11, for every scenario: an instance that received a heartbeat within
// its timeout (an acknowledged beat, on any node) is absent from a healthy
// node's listing for at most one verification round after a heal. Healthy
// nodes are the ready ones while no fault is in force; the round is
// counted from the heal, plus the probe that notices it and one observer
// round of sampling resolution.
//
// Heal convergence, for every scenario: every write acknowledged during a
// fault (a registration, a deregistration) is listed, or gone, on every
// ready node within HealConvBound of the fault's end, p99.

// heal is the end of a fault window and the window itself.
type heal struct {
	from, at, next int64 // fault start, heal, next fault event (or forever)
}

// heals lists the ends of network faults and pauses, with the time of the
// first fault event after each.
func heals(events []Event) []heal {
	const forever = int64(1<<63 - 1)
	var out []heal
	for _, w := range faultWindowsOf(events, func(e Event) bool { return e.Kind == EvFault || e.Kind == EvPause }) {
		if w.to == forever {
			continue
		}
		h := heal{from: w.from, at: w.to, next: forever}
		for _, e := range events {
			if e.T > w.to && (e.Kind == EvFault || e.Kind == EvKill || e.Kind == EvPause || e.Kind == EvMember) {
				h.next = e.T
				break
			}
		}
		if len(out) > 0 && out[len(out)-1].at == h.at {
			out[len(out)-1].from = min(out[len(out)-1].from, h.from)
			continue // two faults healed by the same heal
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// beatAcks returns, per instance, the end times of its acknowledged beats
// and registrations, sorted.
func beatAcks(insts map[string]*inst) map[string][]int64 {
	out := make(map[string][]int64, len(insts))
	for k, it := range insts {
		var ts []int64
		for _, op := range it.ops {
			if op.OK && (op.Kind == "beat" || op.Kind == "reg") {
				ts = append(ts, op.T1)
			}
		}
		slices.Sort(ts)
		out[k] = ts
	}
	return out
}

// beatWithin reports whether some acknowledged beat ended in [t-d, t].
func beatWithin(acks []int64, t int64, d time.Duration) bool {
	i := sort.Search(len(acks), func(i int) bool { return acks[i] >= t-int64(d) })
	return i < len(acks) && acks[i] <= t
}

// checkHeals judges I11 and measures heal convergence.
func checkHeals(r *Result, insts map[string]*inst, rounds []*round, events []Event, violate func(string, ...any)) {
	hs := heals(events)
	acks := beatAcks(insts)
	bound := int64(healBound())
	type nk struct{ node, key string }
	reported := map[nk]bool{}
	var conv []time.Duration
	for _, h := range hs {
		// I11.
		for _, rd := range rounds {
			if rd.t0 < h.at+bound || rd.t1 > h.next {
				continue
			}
			for _, s := range rd.s {
				if !usable(s) {
					continue
				}
				for k, it := range insts {
					if it.durable || it.persistent || !it.beating(h.at-int64(BeatTimeout), s.T1) || !beatWithin(acks[k], s.T0, BeatTimeout) {
						continue
					}
					if _, ok := s.Inst[k]; ok {
						continue
					}
					r.HealDropouts++
					if x := (nk{s.Node, k}); !reported[x] {
						reported[x] = true
						violate("I11: %s (client beating, last acked beat before %s) absent from %s at %s, %s after the heal at %s (bound %s)",
							k, ts(s.T0), s.Node, ts(s.T0), ms(time.Duration(s.T0-h.at)), ts(h.at), ms(healBound()))
					}
				}
			}
		}
		// Heal convergence of the writes acknowledged during the fault.
		for _, it := range insts {
			var want bool // listed (true) or gone (false) everywhere
			switch {
			case it.durable:
				continue
			case it.derAck != 0 && it.derAck >= h.from && it.derAck <= h.at:
				want = false
			case it.ack >= h.from && it.ack <= h.at && !it.ended():
				want = true
			default:
				continue
			}
			if lateIn(it, h.from, h.at) {
				// A request held by the cut-off or paused node is applied
				// when the fault ends (I3 excuses it): a late write, not
				// slow convergence.
				continue
			}
			done := false
			var last int64
			for _, rd := range rounds {
				if rd.t1 < h.at {
					continue
				}
				if rd.t0 > h.next {
					break
				}
				last = rd.t1
				all, any, n := rd.presence(it.key)
				if n > 0 && ((want && all) || (!want && !any)) {
					conv = append(conv, time.Duration(max(rd.t1-h.at, 0)))
					done = true
					break
				}
			}
			if !done && last > h.at {
				// Not there before the next fault (or the end): at least this long.
				conv = append(conv, time.Duration(last-h.at))
			}
		}
	}
	r.HealConvN = len(conv)
	r.HealConvP50, r.HealConvP99, r.HealConvMax = pct(conv, 50), pct(conv, 99), pct(conv, 100)
	if r.HealConvP99 > HealConvBound {
		violate("I1: writes made during faults converged after the heal in %s p99 (max %s, %d writes), above %s",
			ms(r.HealConvP99), ms(r.HealConvMax), len(conv), ms(HealConvBound))
	}
}

// lateIn reports whether one of it's operations that started in [from, to]
// may have been applied after it ended.
func lateIn(it *inst, from, to int64) bool {
	for _, t := range it.late {
		if t >= from && t <= to {
			return true
		}
	}
	return false
}

// checkNoDrop enforces, on the given nodes, that no live instance ever
// disappears at any sample (F15's watch).
func checkNoDrop(r *Result, insts map[string]*inst, rounds []*round, nodes []string, violate func(string, ...any)) {
	if len(nodes) == 0 {
		return
	}
	acks := beatAcks(insts)
	type nk struct{ node, key string }
	seen := map[nk]bool{}
	reported := map[nk]bool{}
	for _, rd := range rounds {
		for _, s := range rd.s {
			if !usable(s) || !slices.Contains(nodes, s.Node) {
				continue
			}
			for k, it := range insts {
				x := nk{s.Node, k}
				if _, ok := s.Inst[k]; ok {
					seen[x] = true
					continue
				}
				if !seen[x] || it.durable || it.persistent || !it.beating(s.T0-int64(2*time.Second), s.T1) || !beatWithin(acks[k], s.T0, BeatTimeout) {
					continue
				}
				seen[x] = false
				r.WatchDropouts++
				if !reported[x] {
					reported[x] = true
					violate("I9: %s (client beating) dropped from watched node %s at %s", k, s.Node, ts(s.T0))
				}
			}
		}
	}
}

// healFigures renders the heal figures for the result line.
func (r *Result) healFigures() string {
	if r.HealConvN == 0 {
		return fmt.Sprintf("heal-dropouts=%d", r.HealDropouts)
	}
	return fmt.Sprintf("heal-conv-p50/p99/max=%s/%s/%s(n=%d) heal-dropouts=%d", ms(r.HealConvP50), ms(r.HealConvP99), ms(r.HealConvMax), r.HealConvN, r.HealDropouts)
}
