package chaos

import (
	"testing"
	"time"

	"github.com/distro-registry/distro/chaos/history"
)

// A beating instance missing from a healthy node for longer than one
// verification round after a heal violates I11; missing during the fault,
// or only within the round after the heal, does not.
func TestCheckHealAbsence(t *testing.T) {
	run := func(missingUntil float64) *Result {
		f := fixture{events: []Event{{T: at(5), Kind: EvFault, Node: "n1", Note: "isolate n1"}, {T: at(15), Kind: EvHeal}}}
		f.beat("s/a:1", 0, 30)
		f.rounds(0.2, 30, three, func(n string, t float64) []string {
			if n == "n2" && t > 10 && t < missingUntil {
				return nil
			}
			return []string{"s/a:1"}
		})
		return f.check(25)
	}
	if r := run(15.4); !r.Pass() || r.HealDropouts != 0 {
		t.Fatalf("back within the round after the heal: %v", r.Violations)
	}
	if r := run(17); !hasViolation(r, "I11") || r.HealDropouts == 0 {
		t.Fatalf("missing 2 s after the heal: want I11, got %v", r.Violations)
	}
}

// An instance that stopped beating may be missing after a heal.
func TestCheckHealAbsenceOnlyBeating(t *testing.T) {
	f := fixture{events: []Event{{T: at(5), Kind: EvFault, Note: "isolate n1"}, {T: at(15), Kind: EvHeal}}}
	f.beat("s/a:1", 0, 6)
	f.op(history.StopBeat, "s/a:1", 6.5, 6.5, true)
	f.rounds(0.2, 30, three, func(n string, t float64) []string {
		if t < 13 || (n == "n1" && t < 16) {
			return []string{"s/a:1"}
		}
		return nil
	})
	if r := f.check(25); hasViolation(r, "I11") {
		t.Fatalf("a stopped instance counted: %v", r.Violations)
	}
}

// Writes made during a fault are timed from the heal until every node
// agrees; a p99 above HealConvBound violates I1.
func TestCheckHealConvergence(t *testing.T) {
	run := func(visibleAt float64) *Result {
		f := fixture{events: []Event{{T: at(5), Kind: EvFault, Node: "n1", Note: "isolate n1"}, {T: at(15), Kind: EvHeal}}}
		f.beat("s/a:1", 8, 40) // registered during the fault, on one side
		f.rounds(0.2, 40, three, func(n string, t float64) []string {
			if n == "n1" && t < visibleAt {
				return nil
			}
			if t < 8.2 {
				return nil
			}
			return []string{"s/a:1"}
		})
		return f.check(35)
	}
	r := run(16.05)
	if r.HealConvN != 1 || r.HealConvP99 < time.Second || r.HealConvP99 > 1300*time.Millisecond || hasViolation(r, "I1") {
		t.Fatalf("heal convergence %v (n=%d), violations %v", r.HealConvP99, r.HealConvN, r.Violations)
	}
	if r := run(22); !hasViolation(r, "I1") {
		t.Fatalf("7 s after the heal: want I1, got %v", r.Violations)
	}
}

// Watched nodes may not drop a live instance at any sample, fault or not.
func TestCheckWatchNodes(t *testing.T) {
	f := fixture{events: []Event{{T: at(5), Kind: EvFault, Node: "n1", Note: "isolate n1"}, {T: at(15), Kind: EvHeal}}}
	f.beat("s/a:1", 0, 30)
	f.rounds(0.2, 30, three, func(n string, t float64) []string {
		if (n == "n1" && t > 8 && t < 15.2) || (n == "n3" && t > 15.5 && t < 15.7) {
			return nil
		}
		return []string{"s/a:1"}
	})
	in := CheckInput{Ops: f.ops, Samples: f.samples, Events: f.events, FinalFrom: time.Unix(0, at(25)),
		WorkloadStop: time.Unix(0, at(1000)), Conv: time.Second, ConvBound: 10 * time.Second, WriteP99Bound: time.Second,
		WatchNodes: []string{"n2", "n3"}}
	r := Check("T", "test", in)
	if r.WatchDropouts != 1 || !hasViolation(r, "I9") {
		t.Fatalf("want one dropout on the watched n3, got %d: %v", r.WatchDropouts, r.Violations)
	}
	in.WatchNodes = []string{"n2"}
	if r := Check("T", "test", in); r.WatchDropouts != 0 || hasViolation(r, "I9") {
		t.Fatalf("n1's absence during its own partition counted: %v", r.Violations)
	}
}
