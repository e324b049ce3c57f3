package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/chaos/history"
)

// These tests run without root: they feed the checker synthetic histories
// and observer samples, so that a checker bug cannot pass for a distrod
// bug, or hide one.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func at(sec float64) int64 { return t0 + int64(sec*float64(time.Second)) }

type fixture struct {
	ops     []history.Op
	samples []Sample
	events  []Event
	round   int
}

func (f *fixture) op(kind, key string, start, end float64, ok bool, errs ...string) {
	svc, inst, _ := strings.Cut(key, "/")
	op := history.Op{T0: at(start), T1: at(end), Kind: kind, Service: svc, Instance: inst, OK: ok}
	for _, e := range errs {
		op.Attempts = append(op.Attempts, history.Attempt{Node: "x", Err: e, Micros: 1000})
	}
	if ok {
		op.Attempts = append(op.Attempts, history.Attempt{Node: "n1", Status: 200, Micros: 1000})
	}
	f.ops = append(f.ops, op)
}

// beat adds a registration at start and a beat every second until end.
func (f *fixture) beat(key string, start, end float64) {
	f.op(history.Register, key, start, start+0.01, true)
	for t := start + 1; t <= end; t++ {
		f.op(history.Beat, key, t, t+0.01, true)
	}
}

// rounds adds one observer round every 200 ms over [from, to): list(node,
// time) gives the instances node lists then.
func (f *fixture) rounds(from, to float64, nodes []string, list func(node string, t float64) []string) {
	for t := from; t < to; t += 0.2 {
		f.round++
		for _, n := range nodes {
			inst := map[string]bool{}
			for _, k := range list(n, t) {
				inst[k] = true
			}
			f.samples = append(f.samples, Sample{Node: n, Round: f.round, T0: at(t), T1: at(t + 0.01), OK: true, Ready: 200, Inst: inst})
		}
	}
}

func (f *fixture) check(finalFrom float64) *Result {
	return Check("T", "test", CheckInput{Ops: f.ops, Samples: f.samples, Events: f.events, FinalFrom: time.Unix(0, at(finalFrom)),
		WorkloadStop: time.Unix(0, at(1000)), Conv: time.Second, ConvBound: 10 * time.Second, WriteP99Bound: time.Second})
}

func hasViolation(r *Result, inv string) bool {
	for _, v := range r.Violations {
		if strings.HasPrefix(v, inv+":") {
			return true
		}
	}
	return false
}

var three = []string{"n1", "n2", "n3"}

func TestCheckCleanRunPasses(t *testing.T) {
	var f fixture
	f.beat("s/a:1", 0, 20)
	f.rounds(0.2, 20, three, func(string, float64) []string { return []string{"s/a:1"} })
	r := f.check(15)
	if !r.Pass() {
		t.Fatalf("violations: %v", r.Violations)
	}
	if r.VisP50 < 0 || r.VisP50 > 300*time.Millisecond {
		t.Errorf("visibility p50 = %v", r.VisP50)
	}
}

func TestCheckLostInstance(t *testing.T) {
	var f fixture
	f.beat("s/a:1", 0, 20)
	f.rounds(0.2, 20, three, func(n string, t float64) []string {
		if n == "n3" && t > 16 {
			return nil
		}
		return []string{"s/a:1"}
	})
	r := f.check(15)
	if !hasViolation(r, "I2") || r.Lost != 1 {
		t.Fatalf("want one I2 loss, got lost=%d %v", r.Lost, r.Violations)
	}
}

func TestCheckResurrection(t *testing.T) {
	var f fixture
	f.beat("s/a:1", 0, 5)
	f.op(history.Deregister, "s/a:1", 5.5, 5.51, true)
	f.rounds(0.2, 20, three, func(n string, t float64) []string {
		if t < 5.6 || (n == "n2" && t > 9 && t < 12) {
			return []string{"s/a:1"} // n2 lists it again for 3 s
		}
		return nil
	})
	r := f.check(15)
	if !hasViolation(r, "I3") || r.Resurrected != 1 {
		t.Fatalf("want one resurrection, got %d %v", r.Resurrected, r.Violations)
	}
}

// TestCheckOverlappingSamplesAreNoResurrection: two rounds in flight at
// once (a heal adds one) may be answered in either order; a listing that
// started before the dropping sample's answer was complete is no
// resurrection, one that started after it is.
func TestCheckOverlappingSamplesAreNoResurrection(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start float64 // of n2's listing sample; the dropping one spans 6.0–6.2
		want  int
	}{{"overlapping", 6.001, 0}, {"after", 6.25, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			var f fixture
			f.beat("s/a:1", 0, 5)
			f.op(history.Deregister, "s/a:1", 5.5, 5.51, true)
			f.rounds(0.2, 5.9, three, func(string, float64) []string { return []string{"s/a:1"} })
			f.samples = append(f.samples,
				Sample{Node: "n2", Round: 1000, T0: at(6.0), T1: at(6.2), OK: true, Ready: 200, Inst: map[string]bool{}},
				Sample{Node: "n2", Round: 1001, T0: at(tt.start), T1: at(tt.start + 0.01), OK: true, Ready: 200, Inst: map[string]bool{"s/a:1": true}})
			f.round = 1001
			f.rounds(6.4, 20, three, func(string, float64) []string { return nil })
			if r := f.check(15); r.Resurrected != tt.want {
				t.Fatalf("%d resurrections, want %d: %v", r.Resurrected, tt.want, r.Violations)
			}
		})
	}
}

func TestCheckLateArrivalIsNotResurrection(t *testing.T) {
	// n3 learns of the instance only after its deregistration (a partition
	// delayed both), then drops it: late, not resurrected.
	var f fixture
	f.beat("s/a:1", 0, 5)
	f.op(history.Deregister, "s/a:1", 5.5, 5.51, true)
	f.events = []Event{{T: at(1), Kind: EvFault, Note: "isolate n3"}, {T: at(7), Kind: EvHeal}}
	f.rounds(0.2, 20, three, func(n string, t float64) []string {
		switch {
		case n != "n3" && t < 5.6:
			return []string{"s/a:1"}
		case n == "n3" && t > 7.2 && t < 7.6:
			return []string{"s/a:1"}
		}
		return nil
	})
	r := f.check(15)
	if !r.Pass() {
		t.Fatalf("violations: %v", r.Violations)
	}
}

func TestCheckExpiryBound(t *testing.T) {
	run := func(gone float64, events []Event) *Result {
		f := fixture{events: events}
		f.beat("s/a:1", 0, 3)
		f.op(history.StopBeat, "s/a:1", 3.5, 3.5, true)
		f.rounds(0.2, 35, three, func(n string, t float64) []string {
			if t < gone {
				return []string{"s/a:1"}
			}
			return nil
		})
		return f.check(32)
	}
	// Gone 27 s after the last beat, far beyond 6 + 0.25 + 5 s.
	if r := run(30, nil); !hasViolation(r, "I4") {
		t.Fatalf("want I4, got %v", r.Violations)
	}
	// A fault event during the wait extends the deadline: grace.
	ev := []Event{{T: at(10), Kind: EvKill, Node: "n2"}, {T: at(12), Kind: EvStart, Node: "n2"}}
	if r := run(22, ev); hasViolation(r, "I4") || r.ExpiredInTime != 1 {
		t.Fatalf("a restart at 12 s extends the deadline to 12+2+11.25 s: %v", r.Violations)
	}
}

func TestCheckFailedWriteAndLatency(t *testing.T) {
	var f fixture
	f.beat("s/a:1", 0, 5)
	f.op(history.Beat, "s/a:1", 6, 8, false, history.ErrTimeout, history.ErrRefused)
	f.rounds(0.2, 10, three, func(string, float64) []string { return []string{"s/a:1"} })
	r := f.check(9)
	if !hasViolation(r, "I5") || r.WritesFailed != 1 {
		t.Fatalf("want I5, got %v", r.Violations)
	}
	if !f.ops[len(f.ops)-1].Indeterminate() {
		t.Error("a timed-out write is indeterminate")
	}
}

func TestCheckStartupGate(t *testing.T) {
	var f fixture
	f.beat("s/a:1", 0, 20)
	f.beat("s/b:1", 0, 20)
	f.events = []Event{{T: at(5), Kind: EvKill, Node: "n3"}, {T: at(6), Kind: EvStart, Node: "n3"}}
	f.rounds(0.2, 20, three, func(n string, t float64) []string {
		if n == "n3" && t > 5 && t < 8 {
			return []string{"s/a:1"} // ready at 6.x but missing s/b:1
		}
		return []string{"s/a:1", "s/b:1"}
	})
	r := f.check(15)
	if !hasViolation(r, "I8") || r.ReadyIncomplete != 1 {
		t.Fatalf("want I8, got %v", r.Violations)
	}
}

// TestCheckStartupGateLateWrite: an instance that reached the other nodes
// only while n3 restarted (after the restart, before its ready answer) is
// not required in n3's first ready list; it arrives by sync (chaos F7).
func TestCheckStartupGateLateWrite(t *testing.T) {
	var f fixture
	f.beat("s/a:1", 0, 20)
	f.beat("s/c:1", 0, 20)
	f.events = []Event{{T: at(5), Kind: EvKill, Node: "n3"}, {T: at(6), Kind: EvStart, Node: "n3"}}
	f.rounds(0.2, 20, three, func(n string, t float64) []string {
		switch {
		case n != "n3" && t < 6.1:
			return []string{"s/a:1"} // s/c:1 lived on an unreachable node only
		case n == "n3" && t > 5 && t < 7:
			return []string{"s/a:1"} // ready at 6.x without it: sync brings it
		}
		return []string{"s/a:1", "s/c:1"}
	})
	if r := f.check(15); hasViolation(r, "I8") || r.ReadyIncomplete != 0 {
		t.Fatalf("a write that reached the others during the restart: %v", r.Violations)
	}
}

func TestSettleChainsFaults(t *testing.T) {
	ws := faultWindows([]Event{
		{T: at(1), Kind: EvFault}, {T: at(5), Kind: EvHeal},
		{T: at(4), Kind: EvPause, Node: "n1"}, {T: at(9), Kind: EvResume, Node: "n1"},
	})
	if got, want := settle(ws, at(2)), at(9)+int64(Detect); got != want {
		t.Errorf("settle = %v, want %v", time.Duration(got-t0), time.Duration(want-t0))
	}
	if got := settle(ws, at(10)); got != at(10) {
		t.Errorf("no fault at 10 s: settle = %v", time.Duration(got-t0))
	}
}

// A deregistration acknowledged just before its node is paused is still in
// flight (sync delay): it reaches the others only after the resume, and the
// convergence bound runs from then. One acknowledged well before the pause
// had no such excuse.
func TestCheckDeregisterInFlightAtFault(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ack   float64
		stale bool
	}{{"in flight", 8.98, false}, {"long before", 3, true}} {
		t.Run(tt.name, func(t *testing.T) {
			var f fixture
			f.beat("s/a:1", 0, tt.ack-0.5)
			f.op(history.Deregister, "s/a:1", tt.ack-0.01, tt.ack, true)
			f.events = []Event{{T: at(9), Kind: EvPause, Node: "n1"}, {T: at(25), Kind: EvResume, Node: "n1"}}
			f.rounds(0.2, 40, three, func(n string, t float64) []string {
				if t < tt.ack || (n != "n1" && t < 22) {
					return []string{"s/a:1"} // the others list it during the pause
				}
				return nil
			})
			r := f.check(35)
			if got := hasViolation(r, "I3") && r.Stale == 1; got != tt.stale {
				t.Fatalf("stale violation %v, want %v: %v", got, tt.stale, r.Violations)
			}
		})
	}
}

// TestCheckDeregisterLostWithKilledOwner: a deregistration acknowledged
// just before a SIGKILL (of any node: the answering node hands writes on to
// the owner) may be lost with the owner's unsent sync (chaos F12); the
// instance, whose client no longer beats, must then go by its expiry. A
// kill before the acknowledgement excuses nothing.
func TestCheckDeregisterLostWithKilledOwner(t *testing.T) {
	for _, tt := range []struct {
		name  string
		kill  float64
		stale bool
	}{{"kill in flight", 10.02, false}, {"kill before the ack", 5, true}} {
		t.Run(tt.name, func(t *testing.T) {
			var f fixture
			f.beat("s/a:1", 0, 9.5)
			f.op(history.Deregister, "s/a:1", 9.99, 10, true)
			f.events = []Event{{T: at(tt.kill), Kind: EvKill, Node: "n2"}, {T: at(tt.kill + 0.02), Kind: EvStart, Node: "n2"}}
			f.rounds(0.2, 40, three, func(n string, t float64) []string {
				if t < 16.3 { // until the instance expires (last beat 9.5 + 6.8 s)
					return []string{"s/a:1"}
				}
				return nil
			})
			r := f.check(35)
			if got := hasViolation(r, "I3") && r.Stale == 1; got != tt.stale {
				t.Fatalf("stale violation %v, want %v: %v", got, tt.stale, r.Violations)
			}
		})
	}
}

// A node whose self-preservation cap deferred expirations gets the cap's
// window more for crashed clients, and only that node: the others must
// still drop the instance within the bound.
func TestCheckExpiryCappedNode(t *testing.T) {
	run := func(goneN1, goneOthers float64, throttled map[string]bool) *Result {
		f := fixture{}
		f.beat("s/a:1", 0, 3)
		f.op(history.StopBeat, "s/a:1", 3.5, 3.5, true)
		f.rounds(0.2, 60, three, func(n string, t float64) []string {
			if (n == "n1" && t < goneN1) || (n != "n1" && t < goneOthers) {
				return []string{"s/a:1"}
			}
			return nil
		})
		return Check("T", "test", CheckInput{Ops: f.ops, Samples: f.samples, Events: f.events, FinalFrom: time.Unix(0, at(55)),
			WorkloadStop: time.Unix(0, at(1000)), Conv: time.Second, ConvBound: 10 * time.Second, WriteP99Bound: time.Second, Throttled: throttled})
	}
	capped := map[string]bool{"n1": true}
	if r := run(25, 10, capped); hasViolation(r, "I4") || r.ExpiredInTime != 1 {
		t.Fatalf("capped n1 listing until 25 s (deadline 14.25 s + 30 s): %v", r.Violations)
	}
	if r := run(25, 10, nil); !hasViolation(r, "I4") {
		t.Fatalf("an uncapped n1 listing until 25 s passed: %v", r.Violations)
	}
	if r := run(50, 10, capped); !hasViolation(r, "I4") {
		t.Fatalf("capped n1 listing past the cap's window passed: %v", r.Violations)
	}
	if r := run(10, 25, capped); !hasViolation(r, "I4") {
		t.Fatalf("the uncapped nodes listing until 25 s passed: %v", r.Violations)
	}
}
