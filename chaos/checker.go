package chaos

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distro-registry/distro/chaos/history"
)

// CheckInput is everything the checker judges: the client history, the
// observer's samples, the nemesis log, and what the live final phase
// measured (convergence, byte comparison of lists, peer-auth probes).
type CheckInput struct {
	Ops     []history.Op
	Samples []Sample
	Events  []Event
	// FinalFrom is the start of the final window: writes quiesced, every
	// fault healed, the cluster converged. I2 and I3 are judged on the
	// samples from here on.
	FinalFrom time.Time
	// WorkloadStop: operations ending after it were cut short by the
	// shutdown of the workload and are not judged.
	WorkloadStop time.Time
	// Conv is how long after the heal every node listed the same
	// instances; negative if they never did within ConvBound.
	Conv, ConvBound time.Duration
	// ListDiffs and MetricDiffs describe differences in the byte
	// comparison of every service's hosts and in the registry-size
	// metrics after convergence (I1).
	ListDiffs, MetricDiffs []string
	// Auth holds the forged-call probes, AuthDelta the growth of each
	// target's auth-failure counter, and AuthChanged every "node: key"
	// whose listing changed across the probes (I10).
	Auth        []AuthProbe
	AuthDelta   map[string]float64
	AuthChanged []string
	// FinalLists holds every node's final v1 lists ("service/ip:port"),
	// read after convergence; durable instances are judged on them.
	FinalLists map[string]map[string]bool
	// CheckI9: the scenario's faults are shorter than the expiry window
	// (or are pauses, which must not count), so no live instance may
	// disappear from any ready node at any time.
	CheckI9 bool
	// WriteP99Bound is I5's latency bound for successful writes.
	WriteP99Bound time.Duration
	// WatchNodes (roles): no live instance may disappear from these nodes
	// at any sample, whatever the faults (F15's majority).
	WatchNodes []string
	// Throttled (roles): nodes whose self-preservation cap deferred
	// expirations during the run (distro_expiry_throttled_total > 0). A
	// deferred expiry waits for the next cap window, so I4 gives such a
	// node ExpireWindow more.
	Throttled map[string]bool
}

// Result is a scenario's verdict and figures.
type Result struct {
	ID, Name string

	Writes, WritesFailed, Failovers int
	UnreachableAttempts             int // successful attempts to a node clients could not reach normally
	WriteP50, WriteP99, WriteMax    time.Duration
	Reads, ReadsFailed, StaleReads  int

	Lost, Stale, Resurrected, Excused int
	Conv                              time.Duration
	VisP50, VisP99                    time.Duration // acks away from faults
	VisAllP50, VisAllP99              time.Duration
	Stopped, ExpiredInTime            int
	ExpiryLagMax, ExpiryBound         time.Duration
	Dropouts, UnhealthyFlaps          int
	HealDropouts, WatchDropouts       int           // I11, and I9 on watched nodes
	HealConvN                         int           // writes made during faults
	HealConvP50, HealConvP99          time.Duration // their convergence after the heal
	HealConvMax                       time.Duration
	Restarts, ReadyIncomplete         int
	UnreadyIncompleteReads            int
	AuthOK, AuthTotal                 int

	Violations []string
	Notes      []string
	Extra      string // scenario-specific figures
}

// Pass reports whether no invariant was violated.
func (r *Result) Pass() bool { return len(r.Violations) == 0 }

// Line is the one-line summary a scenario prints.
func (r *Result) Line() string {
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s writes=%d failed=%d p99=%s lost=%d stale=%d resurrected=%d", verdict, r.ID, r.Name,
		r.Writes, r.WritesFailed, ms(r.WriteP99), r.Lost, r.Stale, r.Resurrected)
	if r.Conv >= 0 {
		fmt.Fprintf(&b, " conv=%s", ms(r.Conv))
	} else {
		b.WriteString(" conv=NEVER")
	}
	fmt.Fprintf(&b, " vis-p50/p99=%s/%s", ms(r.VisP50), ms(r.VisP99))
	if r.Stopped > 0 {
		fmt.Fprintf(&b, " expired-in-bound=%d/%d lag-max=%s", r.ExpiredInTime, r.Stopped, ms(r.ExpiryLagMax))
	}
	fmt.Fprintf(&b, " dropouts=%d %s", r.Dropouts, r.healFigures())
	if r.Restarts > 0 {
		fmt.Fprintf(&b, " ready-gate=%d/%d unready-reads=%d", r.Restarts-r.ReadyIncomplete, r.Restarts, r.UnreadyIncompleteReads)
	}
	if r.AuthTotal > 0 {
		fmt.Fprintf(&b, " auth=%d/%d", r.AuthOK, r.AuthTotal)
	}
	if r.Extra != "" {
		b.WriteString(" " + r.Extra)
	}
	if !r.Pass() {
		fmt.Fprintf(&b, " violated=%s", strings.Join(r.Violated(), ","))
	}
	return b.String()
}

// Violated lists the invariants with at least one violation, sorted.
func (r *Result) Violated() []string {
	inv := map[string]bool{}
	for _, v := range r.Violations {
		if i := strings.IndexByte(v, ':'); i > 0 {
			inv[v[:i]] = true
		}
	}
	keys := make([]string, 0, len(inv))
	for k := range inv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ms(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// Report is the human-readable checker report: figures, then every
// violation with its evidence.
func (r *Result) Report() string {
	var b strings.Builder
	b.WriteString(r.Line() + "\n\n")
	fmt.Fprintf(&b, "writes %d (failed %d, failovers %d), latency of the successful attempt p50 %s p99 %s max %s (%d attempts to a node under a client-side fault not counted)\n",
		r.Writes, r.WritesFailed, r.Failovers, ms(r.WriteP50), ms(r.WriteP99), ms(r.WriteMax), r.UnreachableAttempts)
	fmt.Fprintf(&b, "reads %d (failed %d), reads missing an acknowledged live instance (stale reads) %d\n", r.Reads, r.ReadsFailed, r.StaleReads)
	fmt.Fprintf(&b, "visibility on every node after the ack (one observer round of resolution): away from faults p50 %s p99 %s; all acks p50 %s p99 %s\n",
		ms(r.VisP50), ms(r.VisP99), ms(r.VisAllP50), ms(r.VisAllP99))
	fmt.Fprintf(&b, "crashed clients %d, expired everywhere within the bound %d, worst lag %s (bound: last beat + %s, extended by %s + %s after every fault event before it)\n",
		r.Stopped, r.ExpiredInTime, ms(r.ExpiryLagMax), ms(r.ExpiryBound), ms(Detect), ms(r.ExpiryBound))
	fmt.Fprintf(&b, "live-instance dropouts %d, unhealthy flaps %d, late-apply excused %d\n", r.Dropouts, r.UnhealthyFlaps, r.Excused)
	fmt.Fprintf(&b, "after heals: absences beyond %s of beating instances on healthy nodes %d (I11); writes made during faults converged p50 %s p99 %s max %s (%d writes, bound %s p99)\n",
		ms(healBound()), r.HealDropouts, ms(r.HealConvP50), ms(r.HealConvP99), ms(r.HealConvMax), r.HealConvN, ms(HealConvBound))
	fmt.Fprintf(&b, "restarts %d, ready while incomplete %d, incomplete reads served while not ready %d\n", r.Restarts, r.ReadyIncomplete, r.UnreadyIncompleteReads)
	for _, n := range r.Notes {
		b.WriteString("note: " + n + "\n")
	}
	if len(r.Violations) > 0 {
		fmt.Fprintf(&b, "\n%d violations:\n", len(r.Violations))
		for _, v := range r.Violations {
			b.WriteString("  " + v + "\n")
		}
	}
	return b.String()
}

// inst is one instance's life as the history tells it.
type inst struct {
	key     string
	durable bool
	// persistent: ephemeral=false, never beaten (F16).
	persistent bool
	ack        int64 // end of the first successful register or beat
	lastBeat   int64 // end of the last register/beat attempt, whatever its outcome
	// late holds the start times of operations with an attempt that may
	// still be applied after the operation ended.
	late     []int64
	derStart int64 // start of the first deregistration
	derAck   int64 // end of the first successful deregistration
	stop     int64 // the client stopped beating
	ops      []*history.Op
}

// beating reports whether the client kept the instance alive over [t0, t1].
func (in *inst) beating(t0, t1 int64) bool {
	if in.ack == 0 || in.ack > t0 {
		return false
	}
	return (in.derStart == 0 || in.derStart > t1) && (in.stop == 0 || in.stop > t1)
}

func (in *inst) ended() bool { return in.derStart != 0 || in.stop != 0 }

type round struct {
	idx    int
	t0, t1 int64
	s      []*Sample
}

// usable reports whether a sample shows a ready node's data.
func usable(s *Sample) bool { return s.OK && s.Ready == http.StatusOK }

// presence reports whether every usable sample of the round lists key
// (all) and whether any does (any); n counts the usable samples.
func (r *round) presence(key string) (all, any bool, n int) {
	return r.presenceExcept(key, func(string) bool { return false })
}

// presenceExcept is presence leaving out the samples of nodes skip names.
func (r *round) presenceExcept(key string, skip func(node string) bool) (all, any bool, n int) {
	all = true
	for _, s := range r.s {
		if !usable(s) || skip(s.Node) {
			continue
		}
		n++
		if _, ok := s.Inst[key]; ok {
			any = true
		} else {
			all = false
		}
	}
	return all && n > 0, any, n
}

// lastListed returns the start of the last round from..end in which node
// lists key (0: none).
func lastListed(rounds []*round, node, key string, from int64) int64 {
	last := int64(0)
	for _, rd := range rounds {
		if rd.t1 < from {
			continue
		}
		for _, s := range rd.s {
			if s.Node == node && usable(s) {
				if _, ok := s.Inst[key]; ok {
					last = s.T0
				}
			}
		}
	}
	return last
}

// Check judges a scenario.
func Check(id, name string, in CheckInput) *Result {
	r := &Result{ID: id, Name: name, Conv: in.Conv}
	insts := buildInstances(in.Ops)
	rounds := buildRounds(in.Samples)
	stopNs := in.WorkloadStop.UnixNano()
	finalNs := in.FinalFrom.UnixNano()
	events := slices.Clone(in.Events)
	sort.Slice(events, func(i, j int) bool { return events[i].T < events[j].T })
	violate := func(format string, args ...any) { r.Violations = append(r.Violations, fmt.Sprintf(format, args...)) }
	windows := faultWindows(events)

	checkI5(r, in, stopNs, violate)
	checkStaleReads(r, in.Ops, insts)

	// I1: convergence and identical answers.
	if in.Conv < 0 {
		violate("I1: nodes did not list the same instances within %s of the heal", in.ConvBound)
	}
	for _, d := range in.ListDiffs {
		violate("I1: %s", d)
	}
	for _, d := range in.MetricDiffs {
		violate("I1: %s", d)
	}

	var final []*round
	for _, rd := range rounds {
		if rd.t0 >= finalNs {
			final = append(final, rd)
		}
	}
	if len(final) == 0 {
		violate("I1: no observer round in the final window")
	}

	// I2: every acknowledged instance whose client kept beating is listed by
	// every node throughout the final window. Durable (bulk) instances are
	// outside the observer's rounds: the final lists of every node must
	// hold them.
	keys := sortedKeys(insts)
	for _, k := range keys {
		it := insts[k]
		if it.ack == 0 || it.ended() {
			continue
		}
		if it.durable {
			for node, l := range in.FinalLists {
				if !l[k] {
					violate("I2: lost durable %s (acked %s) missing from the final list of %s", k, ts(it.ack), node)
					r.Lost++
					break
				}
			}
			continue
		}
		for _, rd := range final {
			if rd.t0 < it.ack+int64(time.Second) {
				continue // not yet replicated: I6 measures that
			}
			if all, _, n := rd.presence(k); !all && n > 0 {
				violate("I2: lost %s (acked %s, client still beating) missing on %s at %s", k, ts(it.ack), missingOn(rd, k), ts(rd.t0))
				r.Lost++
				break
			}
		}
	}

	// I4 and I3: crashed clients' instances must be gone everywhere within
	// the expiry bound, deregistered ones within the convergence bound, and
	// neither may come back.
	dExp := DeleteTimeout + ScanInterval + TConv
	r.ExpiryBound = dExp
	for _, k := range keys {
		it := insts[k]
		if it.ack == 0 || !it.ended() || it.durable {
			continue
		}
		base, bound := it.lastBeat, dExp
		kind := "crashed"
		if it.derAck != 0 {
			// A deregistration during a fault reaches the other side only
			// after the heal; until then the other side keeps the instance
			// (self-preservation may even hold its expiry back). So does
			// one acknowledged just before a fault, while still in flight.
			base, bound, kind = settle(windows, it.derAck+int64(InFlight)), TConv, "deregistered"
		} else if it.derStart != 0 {
			continue // deregistration never acknowledged: indeterminate
		}
		excused := false
		for _, t := range it.late {
			// A request stuck in a paused or cut-off node is applied when the
			// fault ends; a late full beat re-registers the instance, which
			// then expires like a crashed one.
			if e := nextEvent(events, t); e > 0 {
				base, bound, excused = max(base, e), dExp, true
			}
		}
		deadline := extend(base, bound, events)
		if kind == "deregistered" && killedInFlight(events, it.derAck) {
			// The node that applied it (the answering node hands writes on
			// to the owner, so any node) may have been SIGKILLed before its
			// sync left: asynchronous replication loses the deregistration
			// (docs/reliability.md: the effect inherent to
			// asynchronous replication), and the instance, whose client no
			// longer beats, is removed by its expiry instead.
			deadline = max(deadline, extend(it.lastBeat, dExp, events))
		}
		if kind == "crashed" {
			r.Stopped++
		}
		// A node whose expiry cap deferred expirations is judged apart, with
		// the cap's window more (crashed clients only).
		capped := func(node string) bool { return kind == "crashed" && in.Throttled[node] }
		gone := int64(0)
		for _, rd := range rounds {
			if rd.t1 < base {
				continue
			}
			if _, any, n := rd.presenceExcept(k, capped); n > 0 && !any {
				gone = rd.t1
				break
			}
		}
		if kind == "crashed" && gone != 0 {
			for node := range in.Throttled {
				last := lastListed(rounds, node, k, base)
				switch {
				case last > deadline+int64(ExpireWindow+time.Second):
					violate("I4: %s (last beat %s) still listed by %s at %s, past its deadline %s plus the expiry cap's window", k, ts(it.lastBeat), node, ts(last), ts(deadline))
				case last > gone:
					r.Notes = append(r.Notes, fmt.Sprintf("crashed %s: listed by %s until %s (its expiry cap deferred expirations)", k, node, ts(last)))
				}
			}
		}
		switch {
		case gone == 0 && len(rounds) > 0 && rounds[len(rounds)-1].t0 > deadline:
			if kind == "crashed" {
				violate("I4: %s (client crashed at %s, last beat %s) still listed at the end; deadline %s", k, ts(it.stop), ts(it.lastBeat), ts(deadline))
			} else {
				violate("I3: %s deregistered (ack %s) still listed at the end; deadline %s", k, ts(it.derAck), ts(deadline))
				r.Stale++
			}
		case gone == 0:
			r.Notes = append(r.Notes, fmt.Sprintf("%s %s: not gone yet when observation ended (deadline %s)", kind, k, ts(deadline)))
		case kind == "crashed":
			lag := time.Duration(gone - it.lastBeat)
			r.ExpiryLagMax = max(r.ExpiryLagMax, lag)
			if gone > deadline+int64(time.Second) { // one round of slack for the sampling
				violate("I4: %s (last beat %s) gone everywhere only at %s, %s after its last beat; deadline %s", k, ts(it.lastBeat), ts(gone), ms(lag), ts(deadline))
			} else {
				r.ExpiredInTime++
			}
		case gone > deadline+int64(time.Second):
			violate("I3: %s deregistered (ack %s) still listed until %s; deadline %s", k, ts(it.derAck), ts(gone), ts(deadline))
			r.Stale++
		}
		// No resurrection: once a ready node has stopped listing the
		// instance, after its end, it must not list it again.
		for node, rs := range resurrections(rounds, events, k, max(it.derAck, it.stop)) {
			if excused {
				r.Excused++
				r.Notes = append(r.Notes, fmt.Sprintf("%s reappeared on %s at %s after a late-applied request (excused)", k, node, ts(rs.back)))
				continue
			}
			violate("I3: %s (%s at %s) listed by %s until %s, dropped at %s, listed again at %s", k, kind, ts(max(it.derAck, it.stop)),
				node, ts(rs.listed), ts(rs.dropped), ts(rs.back))
			r.Resurrected++
		}
	}

	checkI6(r, insts, rounds, windows)
	checkI8(r, insts, in.Samples, rounds, events, violate)
	checkI9(r, insts, rounds, in.CheckI9, violate)
	checkHeals(r, insts, rounds, events, violate)
	checkNoDrop(r, insts, rounds, in.WatchNodes, violate)

	// I10: forged and unsigned peer calls.
	for _, p := range in.Auth {
		r.AuthTotal++
		if p.OK() {
			r.AuthOK++
		} else {
			violate("I10: %s", p)
		}
	}
	for _, c := range in.AuthChanged {
		// Instances whose client ended may legitimately expire meanwhile.
		_, key, _ := strings.Cut(c, ": ")
		if it := insts[key]; it != nil && it.ended() {
			continue
		}
		violate("I10: listing changed across the forged calls: %s", c)
	}
	for node, d := range in.AuthDelta {
		if d < 1 {
			violate("I10: %s did not count the refused calls in distro_cluster_auth_failures_total (delta %v)", node, d)
		}
	}
	return r
}

func buildInstances(ops []history.Op) map[string]*inst {
	m := make(map[string]*inst)
	for i := range ops {
		op := &ops[i]
		if op.Kind == history.List {
			continue
		}
		k := op.Service + "/" + op.Instance
		it := m[k]
		if it == nil {
			it = &inst{key: k}
			m[k] = it
		}
		it.ops = append(it.ops, op)
		it.durable = it.durable || op.Durable
		it.persistent = it.persistent || op.Persistent
		switch op.Kind {
		case history.Register, history.Beat:
			if op.OK && (it.ack == 0 || op.T1 < it.ack) {
				it.ack = op.T1
			}
			it.lastBeat = max(it.lastBeat, op.T1)
			if op.MayApplyLate() {
				it.late = append(it.late, op.T0)
			}
		case history.Deregister:
			if it.derStart == 0 || op.T0 < it.derStart {
				it.derStart = op.T0
			}
			if op.OK && (it.derAck == 0 || op.T1 < it.derAck) {
				it.derAck = op.T1
			}
		case history.StopBeat:
			it.stop = op.T0
		}
	}
	return m
}

func buildRounds(samples []Sample) []*round {
	byIdx := map[int]*round{}
	for i := range samples {
		s := &samples[i]
		if s.Round < 0 {
			continue
		}
		rd := byIdx[s.Round]
		if rd == nil {
			rd = &round{idx: s.Round, t0: s.T0, t1: s.T1}
			byIdx[s.Round] = rd
		}
		rd.t0, rd.t1 = min(rd.t0, s.T0), max(rd.t1, s.T1)
		rd.s = append(rd.s, s)
	}
	out := make([]*round, 0, len(byIdx))
	for _, rd := range byIdx {
		out = append(out, rd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].t0 < out[j].t0 })
	return out
}

func sortedKeys(m map[string]*inst) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func missingOn(rd *round, key string) string {
	var nodes []string
	for _, s := range rd.s {
		if usable(s) {
			if _, ok := s.Inst[key]; !ok {
				nodes = append(nodes, s.Node)
			}
		}
	}
	return strings.Join(nodes, ",")
}

func ts(ns int64) string {
	if ns == 0 {
		return "never"
	}
	return time.Unix(0, ns).Format("15:04:05.000")
}

// grace reports whether an event may move keys between owners (restarting
// the expiry grace of the keys that move) or delay requests.
func grace(e Event) bool { return e.Kind != EvMark && e.Kind != EvQuiesce }

// extend returns t+d, pushed later by every nemesis event that happens
// before the deadline it has reached: such an event may change views, and
// a key that changes owner gets a full grace period (protocol §8).
func extend(t int64, d time.Duration, events []Event) int64 {
	dl := t + int64(d)
	for _, e := range events {
		if e.T > t && e.T <= dl && grace(e) {
			dl = max(dl, e.T+int64(Detect+d))
		}
	}
	return dl
}

// window is a time span during which some fault was in force.
type window struct{ from, to int64 }

// faultWindows derives the fault spans from the nemesis log: a network
// fault lasts until the next heal, a kill until that node's next start, a
// pause until its resume. A fault never ended lasts forever.
func faultWindows(events []Event) []window {
	var out []window
	for _, w := range faultWindowsOf(events, func(Event) bool { return true }) {
		out = append(out, w.window)
	}
	return out
}

type nodeWindow struct {
	window
	node string
}

func faultWindowsOf(events []Event, keep func(Event) bool) []nodeWindow {
	var out []nodeWindow
	const forever = int64(1<<63 - 1)
	for i, e := range events {
		if !keep(e) {
			continue
		}
		end := forever
		for _, f := range events[i+1:] {
			if (e.Kind == EvFault && f.Kind == EvHeal) ||
				(e.Kind == EvKill && f.Kind == EvStart && f.Node == e.Node) ||
				(e.Kind == EvPause && f.Kind == EvResume && f.Node == e.Node) {
				end = f.T
				break
			}
		}
		switch e.Kind {
		case EvFault, EvKill, EvPause:
			out = append(out, nodeWindow{window{e.T, end}, e.Node})
		}
	}
	return out
}

// killedInFlight reports whether some node was SIGKILLed within InFlight
// after a write acknowledged at ack.
func killedInFlight(events []Event, ack int64) bool {
	for _, e := range events {
		if e.Kind == EvKill && e.T >= ack && e.T <= ack+int64(InFlight) {
			return true
		}
	}
	return false
}

// settle returns t, or if a fault was in force at t, the end of the
// faults chained from there plus the detection time of the heal.
func settle(ws []window, t int64) int64 {
	end := t
	for changed := true; changed; {
		changed = false
		for _, w := range ws {
			if w.from <= end && w.to > end {
				end, changed = w.to, true
			}
		}
	}
	if end != t {
		end += int64(Detect)
	}
	return end
}

// inFault reports whether [t0, t1] overlaps a fault window.
func inFault(ws []window, t0, t1 int64) bool {
	for _, w := range ws {
		if w.from <= t1 && w.to >= t0 {
			return true
		}
	}
	return false
}

// nextEvent returns the time of the first fault-ending event after t (heal,
// resume, restart), 0 if none.
func nextEvent(events []Event, t int64) int64 {
	for _, e := range events {
		if e.T > t && (e.Kind == EvHeal || e.Kind == EvResume || e.Kind == EvStart) {
			return e.T
		}
	}
	return 0
}

// resurrection is one node listing an instance, dropping it after its end,
// then listing it again.
type resurrection struct{ listed, dropped, back int64 }

// resurrections finds, per node, an instance a ready node listed, then
// stopped listing after from, then listed again, within one incarnation of
// the node (a restarted node relearns from its peers). A node that first
// learns of an instance after its end is late, not resurrecting: a
// partition can delay a registration as much as its deregistration.
func resurrections(rounds []*round, events []Event, key string, from int64) map[string]resurrection {
	out := map[string]resurrection{}
	// droppedEnd is when the dropping sample's answer was complete: a
	// listing sample that started before it overlaps it (two rounds in
	// flight at once, as at a heal), and which of the two the node served
	// first is unknown, so it proves nothing (chaos F1 flagged one 1 ms
	// apart).
	type state struct{ listed, dropped, droppedEnd int64 }
	st := map[string]*state{}
	ei := 0
	for _, rd := range rounds {
		for ; ei < len(events) && events[ei].T <= rd.t0; ei++ {
			if e := events[ei]; e.Kind == EvKill || e.Kind == EvStart {
				delete(st, e.Node)
			}
		}
		for _, s := range rd.s {
			if !usable(s) {
				continue
			}
			x := st[s.Node]
			if x == nil {
				x = &state{}
				st[s.Node] = x
			}
			_, listed := s.Inst[key]
			switch {
			case listed && x.dropped != 0 && s.T0 < x.droppedEnd:
				// Overlaps the dropping sample: no order between them.
			case listed && x.dropped != 0:
				if _, seen := out[s.Node]; !seen {
					out[s.Node] = resurrection{x.listed, x.dropped, s.T0}
				}
			case listed:
				x.listed = s.T0
			case x.listed != 0 && s.T0 > from && x.dropped == 0:
				x.dropped, x.droppedEnd = s.T0, s.T1
			}
		}
	}
	return out
}

// clientWindows are, per node role, the spans when clients could not reach
// it normally.
func clientWindows(events []Event) map[string][]window {
	out := map[string][]window{}
	for _, w := range faultWindowsOf(events, func(e Event) bool { return e.Client }) {
		out[w.node] = append(out[w.node], w.window)
	}
	return out
}

func clientFault(cw map[string][]window, role string, t0, t1 int64) bool {
	for _, w := range cw[role] {
		// The connection may have been opened just before the fault.
		if w.from <= t1 && w.to+int64(time.Second) >= t0 {
			return true
		}
	}
	return false
}

// nodeRole maps a node address of the history (10.88.X.K:8848) to its role
// (nK); the lab numbers nodes by the last octet.
func nodeRole(addr string) string {
	host, _, _ := strings.Cut(addr, ":")
	if i := strings.LastIndexByte(host, '.'); i >= 0 {
		return "n" + host[i+1:]
	}
	return addr
}

func checkI5(r *Result, in CheckInput, stopNs int64, violate func(string, ...any)) {
	var lat []time.Duration
	cw := clientWindows(in.Events)
	for i := range in.Ops {
		op := &in.Ops[i]
		if op.T1 > stopNs {
			continue
		}
		switch op.Kind {
		case history.List:
			r.Reads++
			if !op.OK {
				r.ReadsFailed++
			}
			continue
		case history.StopBeat:
			continue
		}
		r.Writes++
		if len(op.Attempts) > 1 {
			r.Failovers += len(op.Attempts) - 1
		}
		if !op.OK {
			r.WritesFailed++
			violate("I5: %s %s %s failed on every node it tried (%s..%s): %s", op.Kind, op.Service, op.Instance, ts(op.T0), ts(op.T1), attempts(op))
			continue
		}
		a, _ := op.Final()
		d := time.Duration(a.Micros) * time.Microsecond
		if clientFault(cw, nodeRole(a.Node), op.T1-int64(d), op.T1) {
			// The client could not reach this node normally (its SYN was
			// dropped, its link rate-limited, the node paused): that measures
			// the fault, not a write to a reachable node.
			r.UnreachableAttempts++
			continue
		}
		lat = append(lat, d)
	}
	r.WriteP50, r.WriteP99, r.WriteMax = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	if in.WriteP99Bound > 0 && r.WriteP99 > in.WriteP99Bound {
		violate("I5: p99 latency of successful writes %s exceeds %s (max %s)", ms(r.WriteP99), ms(in.WriteP99Bound), ms(r.WriteMax))
	}
}

func attempts(op *history.Op) string {
	var s []string
	for _, a := range op.Attempts {
		s = append(s, fmt.Sprintf("%s %s/%d %s", a.Node, a.Err, a.Status, ms(time.Duration(a.Micros)*time.Microsecond)))
	}
	return strings.Join(s, "; ")
}

// pct returns the p-th percentile (nearest rank) of d, -1 if empty.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return -1
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// checkStaleReads counts client reads that missed an instance of the read
// service acknowledged more than 2 s before the read and still beating:
// replication lag or a partition (a figure, not an invariant).
func checkStaleReads(r *Result, ops []history.Op, insts map[string]*inst) {
	bySvc := map[string][]*inst{}
	for _, it := range insts {
		svc, _, _ := strings.Cut(it.key, "/")
		bySvc[svc] = append(bySvc[svc], it)
	}
	for i := range ops {
		op := &ops[i]
		if op.Kind != history.List || !op.OK {
			continue
		}
		for _, it := range bySvc[op.Service] {
			if it.beating(op.T0-int64(2*time.Second), op.T1) {
				_, addr, _ := strings.Cut(it.key, "/")
				if !slices.Contains(op.Hosts, addr) {
					r.StaleReads++
					break
				}
			}
		}
	}
}

// checkI6 measures, for every acknowledged instance, the time from its
// acknowledgement to the first observer round in which every ready node
// listed it (resolution: one round).
func checkI6(r *Result, insts map[string]*inst, rounds []*round, ws []window) {
	var vis, calm []time.Duration
	for _, it := range insts {
		if it.ack == 0 || it.durable {
			continue
		}
		end := int64(1<<63 - 1)
		if it.ended() {
			end = max(it.derStart, it.stop)
		}
		for _, rd := range rounds {
			if rd.t1 < it.ack {
				continue
			}
			if rd.t0 > end {
				break
			}
			if all, _, _ := rd.presence(it.key); all {
				d := time.Duration(rd.t1 - it.ack)
				vis = append(vis, d)
				if !inFault(ws, it.ack-int64(Detect), rd.t1) {
					calm = append(calm, d)
				}
				break
			}
		}
	}
	r.VisP50, r.VisP99 = pct(calm, 50), pct(calm, 99)
	r.VisAllP50, r.VisAllP99 = pct(vis, 50), pct(vis, 99)
}

// checkI8: a restarted node may answer /readyz 200 only once it lists every
// instance that all other ready nodes list steadily from before its restart
// until after that moment.
func checkI8(r *Result, insts map[string]*inst, samples []Sample, rounds []*round, events []Event, violate func(string, ...any)) {
	for _, e := range events {
		if e.Kind != EvStart {
			continue
		}
		r.Restarts++
		var first *Sample
		var before []*Sample
		for i := range samples {
			s := &samples[i]
			if s.Node != e.Node || s.T0 < e.T {
				continue
			}
			if usable(s) {
				first = s
				break
			}
			before = append(before, s)
		}
		if first == nil {
			violate("I8: %s restarted at %s never answered /readyz 200 with a readable list", e.Node, ts(e.T))
			r.ReadyIncomplete++
			continue
		}
		// The instances others listed from before the restart to after the
		// first ready answer: every snapshot source had them. One that
		// reached the others only during the restart (a write to a node
		// the restarted one could not reach, applied elsewhere moments
		// before the ready answer: chaos F7) arrives by sync, not snapshot.
		stable := stableAround(insts, rounds, e.Node, e.T, first.T1)
		var missing []string
		for _, k := range stable {
			if _, ok := first.Inst[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			r.ReadyIncomplete++
			violate("I8: %s answered /readyz 200 at %s (restart %s) while missing %d of %d instances every other node listed, e.g. %v",
				e.Node, ts(first.T0), ts(e.T), len(missing), len(stable), missing[:min(3, len(missing))])
		}
		for _, s := range before {
			if !s.OK {
				continue
			}
			n := 0
			for _, k := range stable {
				if _, ok := s.Inst[k]; !ok {
					n++
				}
			}
			if n > 0 {
				r.UnreadyIncompleteReads++
				if r.UnreadyIncompleteReads <= 3 {
					r.Notes = append(r.Notes, fmt.Sprintf("%s answered a list read at %s while /readyz said %d, missing %d of %d instances",
						e.Node, ts(s.T0), s.Ready, n, len(stable)))
				}
			}
		}
	}
}

// stableAround returns the beating instances every ready node other than
// node lists in the last round that ended by t0 and the first round after t1.
func stableAround(insts map[string]*inst, rounds []*round, node string, t0, t1 int64) []string {
	var before, after *round
	for _, rd := range rounds {
		if rd.t1 <= t0 {
			before = rd
		}
		if rd.t0 >= t1 && after == nil {
			after = rd
		}
	}
	if before == nil || after == nil {
		return nil
	}
	listedByOthers := func(rd *round, k string) bool {
		n := 0
		for _, s := range rd.s {
			if s.Node == node || !usable(s) {
				continue
			}
			n++
			if _, ok := s.Inst[k]; !ok {
				return false
			}
		}
		return n > 0
	}
	var out []string
	for _, k := range sortedKeys(insts) {
		it := insts[k]
		if it.beating(before.t0-int64(time.Second), after.t1) && listedByOthers(before, k) && listedByOthers(after, k) {
			out = append(out, k)
		}
	}
	return out
}

// checkI9 counts live instances that a ready node stopped listing while
// their client kept beating, and unhealthy flaps.
func checkI9(r *Result, insts map[string]*inst, rounds []*round, enforce bool, violate func(string, ...any)) {
	type nk struct{ node, key string }
	seen := map[nk]bool{}
	healthy := map[nk]bool{}
	reported := map[nk]bool{}
	for _, rd := range rounds {
		for _, s := range rd.s {
			if !usable(s) {
				continue
			}
			for k, it := range insts {
				x := nk{s.Node, k}
				h, listed := s.Inst[k]
				if listed {
					if healthy[x] && !h && it.beating(s.T0-int64(BeatTimeout), s.T1) {
						r.UnhealthyFlaps++
					}
					seen[x], healthy[x] = true, h
					continue
				}
				if !seen[x] || !it.beating(s.T0-int64(2*time.Second), s.T1) || it.durable {
					continue
				}
				seen[x] = false // count each disappearance once
				r.Dropouts++
				if enforce && !reported[x] {
					reported[x] = true
					violate("I9: %s (client beating since %s) dropped from %s at %s", k, ts(it.ack), s.Node, ts(s.T0))
				}
			}
		}
	}
}
