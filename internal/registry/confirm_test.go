package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// fakeConfirmer answers confirmation rounds as the members would.
type fakeConfirmer struct {
	mu     sync.Mutex
	quorum bool
	// since is the reported start of majority contact (default: long ago).
	since time.Time
	// evidence maps an instance to the age of a member's last real beat.
	evidence map[model.InstanceKey]time.Duration
	asked    []registry.Suspect
}

func (f *fakeConfirmer) Confirm(_ context.Context, sus []registry.Suspect) ([]time.Duration, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, sus...)
	ages := make([]time.Duration, len(sus))
	for i, s := range sus {
		ages[i] = -1
		if a, ok := f.evidence[s.Ref.Instance]; ok && a < s.Window {
			ages[i] = a
		}
	}
	if !f.quorum {
		return ages, time.Time{}
	}
	if f.since.IsZero() {
		return ages, time.Unix(1, 0)
	}
	return ages, f.since
}

func (f *fakeConfirmer) set(quorum bool, evidence map[model.InstanceKey]time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quorum, f.evidence = quorum, evidence
}

// events records the store events of svc.
func (e *env) events() *[]store.Event {
	var mu sync.Mutex
	var evs []store.Event
	e.st.OnChange(func(ev store.Event) {
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	})
	return &evs
}

func shortInstance(ip string) model.Instance {
	in := instance(ip, 80)
	in.Metadata = map[string]string{model.MetaHeartBeatTimeout: "3000", model.MetaIPDeleteTimeout: "6000"}
	return in
}

// A member that handled a real beat within the timeout refutes it: nothing
// is annotated, and the deadlines run from that member's beat.
func TestConfirmRefutedByMemberEvidence(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	e.mustApply(register(shortInstance("10.0.0.1")))
	f.set(true, map[model.InstanceKey]time.Duration{ikey("10.0.0.1"): 500 * time.Millisecond})
	e.advanceTo(3 * time.Second) // heartbeat timeout here, but a member heard a beat 500 ms ago
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("refuted timeout applied: %s", got)
	}
	if len(f.asked) != 1 || f.asked[0].Kind != store.KindUnhealthy || f.asked[0].Window != 3*time.Second {
		t.Fatalf("asked %+v, want one unhealthy suspect with a 3 s window", f.asked)
	}
	// The member's evidence runs out: the instance times out 3 s after
	// that member's beat (at 5.5 s), not 3 s after the refutation.
	f.set(true, nil)
	e.advanceTo(5*time.Second + 250*time.Millisecond)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("at 5.25 s: %s", got)
	}
	e.advanceTo(5*time.Second + 500*time.Millisecond)
	if got := e.hosts(svc); got != "10.0.0.1:80:false" {
		t.Fatalf("at 5.5 s: %s", got)
	}
	e.advanceTo(8*time.Second + 500*time.Millisecond)
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("at 8.5 s, a delete timeout after the member's last beat: %s", got)
	}
	if _, _, refuted := e.local.Stats(); refuted != 1 {
		t.Fatalf("refuted = %d", refuted)
	}
}

// Without a majority a timeout is applied to this node's listing only: peers
// keep being served the live version, and nothing is replicated. When a
// majority answers later, evidence of life restores the instance here.
func TestUnconfirmedTimeoutIsLocalUntilMajority(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	e.mustApply(register(shortInstance("10.0.0.1")))
	live := e.record(svc, ikey("10.0.0.1"))
	evs := e.events()
	e.advanceTo(7 * time.Second)
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("unconfirmed timeouts not applied locally: %s", got)
	}
	if n := e.local.Unconfirmed(); n != 1 {
		t.Fatalf("Unconfirmed = %d, want 1", n)
	}
	for _, ev := range *evs {
		if !ev.LocalOnly {
			t.Fatalf("an unconfirmed timeout produced a replicated change: %+v", ev)
		}
	}
	recs, _ := e.st.PeerRecords(svc, nil)
	if len(recs) != 1 || recs[0].Kind != store.KindLive || recs[0].Stamp != live.Stamp {
		t.Fatalf("peers are served %+v, want the live version", recs)
	}
	// The digest describes what peers are served: unchanged.
	peer := store.New("n2", e.st.Clock())
	peer.Merge(svc, []*store.Record{live}, nil, time.Minute)
	if peer.Digest(svc) != e.st.Digest(svc) {
		t.Fatal("a local-only timeout changed the digest")
	}
	// A majority answers, one member with a beat 1 s old.
	f.set(true, map[model.InstanceKey]time.Duration{ikey("10.0.0.1"): time.Second})
	e.local.Kick()
	e.local.ScanOnce()
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("after a member refuted it: %s", got)
	}
	if n := e.local.Unconfirmed(); n != 0 {
		t.Fatalf("Unconfirmed = %d after the majority answered", n)
	}
	if r := e.record(svc, ikey("10.0.0.1")); r.Stamp != live.Stamp || r.Kind != store.KindLive {
		t.Fatalf("reverted to %+v, want the replicated version %+v", r, live)
	}
}

// When a majority answers without evidence, the local-only timeout becomes
// a replicated change.
func TestUnconfirmedTimeoutPublishedByMajority(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	e.mustApply(register(shortInstance("10.0.0.1")))
	e.advanceTo(7 * time.Second)
	evs := e.events()
	f.set(true, nil)
	e.local.Kick()
	e.local.ScanOnce()
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("after publication: %s", got)
	}
	recs, _ := e.st.PeerRecords(svc, nil)
	if len(recs) != 1 || recs[0].Kind != store.KindExpired {
		t.Fatalf("peers are served %+v, want the expiry", recs)
	}
	if len(*evs) != 1 || (*evs)[0].LocalOnly || (*evs)[0].Remote || (*evs)[0].Changed[0].Kind != store.KindExpired {
		t.Fatalf("publication events %+v, want one replicated expiry", *evs)
	}
	if n := e.local.Unconfirmed(); n != 0 {
		t.Fatalf("Unconfirmed = %d", n)
	}
}

// Pending timeouts are offered again on Kick and at most once a second
// otherwise: a node with many of them does not rebuild the round on every
// scan.
func TestUnconfirmedRetryIsThrottled(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	e.mustApply(register(shortInstance("10.0.0.1")))
	e.advanceTo(7 * time.Second)
	f.mu.Lock()
	f.asked = nil
	f.mu.Unlock()
	e.advance(2 * time.Second) // 8 scans
	if n := len(f.asked); n < 1 || n > 3 {
		t.Fatalf("pending timeout offered %d times in 2 s, want about 2", n)
	}
}

// A beat that arrives while a timeout waits for a majority wins: the
// instance is back, and the stale pending entry changes nothing later.
func TestBeatDuringUnconfirmedTimeout(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	in := shortInstance("10.0.0.1")
	e.mustApply(register(in))
	e.advanceTo(4 * time.Second) // unhealthy, locally
	if got := e.hosts(svc); got != "10.0.0.1:80:false" {
		t.Fatalf("at 4 s: %s", got)
	}
	e.mustApply(fullBeat(in))
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("after a beat: %s", got)
	}
	f.set(true, nil)
	e.local.Kick()
	e.local.ScanOnce()
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("a stale pending timeout applied after a beat: %s", got)
	}
}

// Evidence survives a change of owner: the node that handled the beats as
// owner keeps them (until a delete timeout after the last one) to answer
// the new owner, and a node that handled a beat without owning the key
// (the owner was unreachable) has evidence too.
func TestEvidenceOutlivesOwnership(t *testing.T) {
	e := newEnv(t)
	in := shortInstance("10.0.0.1")
	e.mustApply(register(in))
	e.advanceTo(time.Second)
	e.mustApply(lightBeat("10.0.0.1", 80))
	ref := health.Ref{Service: svc, Instance: ikey("10.0.0.1")}
	e.local.SetOwnership(func(model.ServiceKey) bool { return false }, nil, []model.ServiceKey{svc})
	e.advanceTo(3 * time.Second)
	if age, ok := e.local.Evidence(ref, 6*time.Second); !ok || age != 2*time.Second {
		t.Fatalf("Evidence = %v %v, want 2 s", age, ok)
	}
	if _, ok := e.local.Evidence(ref, time.Second); ok {
		t.Fatal("evidence older than the window counted")
	}
	e.mustApply(lightBeat("10.0.0.1", 80)) // applied here though not the owner
	e.advanceTo(4 * time.Second)
	if age, ok := e.local.Evidence(ref, 6*time.Second); !ok || age != time.Second {
		t.Fatalf("Evidence of a non-owner beat = %v %v, want 1 s", age, ok)
	}
	e.advanceTo(9*time.Second + 250*time.Millisecond)
	if _, ok := e.local.Evidence(ref, time.Hour); ok {
		t.Fatal("evidence kept longer than a delete timeout after the beat")
	}
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("a node that does not own the key timed it out: %s", got)
	}
}

// A node left without a majority for a whole limit keeps the expiry as a
// plain local tombstone: it stops serving the live version and collects
// the record, so a lone node does not keep every expired instance.
func TestUnconfirmedExpiryAbandonedAfterLimit(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	e.local.SetUnconfirmedLimit(time.Minute)
	e.mustApply(register(shortInstance("10.0.0.1")))
	e.advanceTo(7 * time.Second)
	if recs, _ := e.st.PeerRecords(svc, nil); len(recs) != 1 {
		t.Fatalf("peers served %d records while the expiry waits", len(recs))
	}
	e.advanceTo(7*time.Second + time.Minute + time.Second)
	if n := e.local.Unconfirmed(); n != 0 {
		t.Fatalf("Unconfirmed = %d after the limit", n)
	}
	if recs, _ := e.st.PeerRecords(svc, nil); len(recs) != 0 {
		t.Fatalf("peers still served %+v after the limit", recs)
	}
	if n := e.st.GCBefore(time.Now().Add(time.Hour).UnixMilli()); n != 1 {
		t.Fatalf("GC collected %d, want the abandoned expiry", n)
	}
}

// A node back from a minority that reaches a majority again does not
// publish the timeouts it made while cut off until it has heard a majority
// for a whole timeout: the members that handled the beats it missed may
// still be out of reach (chaos F15 found one that published them on the
// strength of the first peer it reached back, which held no evidence).
func TestUnconfirmedWaitsForAWholeWindowOfMajority(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	e.mustApply(register(shortInstance("10.0.0.1")))
	e.advanceTo(7 * time.Second)
	f.mu.Lock()
	f.quorum, f.since = true, e.clk.Now()
	f.mu.Unlock()
	e.local.Kick()
	e.advance(5 * time.Second) // less than the 6 s delete timeout of majority contact
	if recs, _ := e.st.PeerRecords(svc, nil); recs[0].Kind != store.KindLive || e.local.Unconfirmed() != 1 {
		t.Fatalf("published after %v of majority contact: peers get %s", 5*time.Second, recs[0].Kind)
	}
	e.advance(1500 * time.Millisecond)
	if recs, _ := e.st.PeerRecords(svc, nil); recs[0].Kind != store.KindExpired || e.local.Unconfirmed() != 0 {
		t.Fatalf("not published after a whole window of majority contact: peers get %s", recs[0].Kind)
	}
}

// A timeout names the version it is about. A pending local-only expiry that
// a re-registration has overtaken is not offered to the members again
// (chaos F2: a peer took the stale expiry for the new version and hid a live
// instance), and a peer holding a newer version than the one timed out does
// not take the timeout for it.
func TestStaleTimeoutNotTakenForNewerVersion(t *testing.T) {
	e := newEnv(t)
	f := &fakeConfirmer{}
	e.local.SetConfirmer(f)
	in := shortInstance("10.0.0.1")
	e.mustApply(register(in))
	e.advanceTo(7 * time.Second) // expired, locally only
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("at 7 s: %q", got)
	}
	old := e.record(svc, in.Key()).Stamp
	e.mustApply(fullBeat(in)) // registers it again: a newer version
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("after the beat: %q", got)
	}
	f.mu.Lock()
	f.asked = nil
	f.mu.Unlock()
	e.local.Kick()
	e.local.ScanOnce()
	f.mu.Lock()
	asked := f.asked
	f.mu.Unlock()
	for _, s := range asked {
		if s.Ref.Instance == in.Key() {
			t.Fatalf("the overtaken expiry was offered again: %+v", s)
		}
	}
	if n := e.local.Unconfirmed(); n != 0 {
		t.Fatalf("Unconfirmed = %d after the re-registration", n)
	}
	ref := health.Ref{Service: svc, Instance: in.Key()}
	e.local.Adopt(ref, store.KindExpired, old)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("a peer's timeout of the older version hid the newer one: %q", got)
	}
	e.local.Adopt(ref, store.KindExpired, e.record(svc, in.Key()).Stamp)
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("a peer's timeout of the current version was not taken: %q", got)
	}
}
