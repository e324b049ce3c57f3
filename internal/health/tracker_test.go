package health

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const tick = 250 * time.Millisecond

func ref(i int) Ref {
	return Ref{
		Service:  model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "svc" + strconv.Itoa(i/100)},
		Instance: model.InstanceKey{IP: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), Port: 80, Cluster: "DEFAULT"},
	}
}

func instWith(md map[string]string) *model.Instance {
	return &model.Instance{IP: "10.0.0.1", Port: 80, Cluster: "DEFAULT", Healthy: true, Enabled: true, Ephemeral: true, Metadata: md}
}

// noCap is the default configuration without the expiry cap.
func noCap() Config {
	c := DefaultConfig()
	c.ExpireMaxFraction = 0
	return c
}

// event is one Due seen at an offset from t0.
type event struct {
	at     time.Duration
	ref    Ref
	action Action
}

// scanUntil calls Scan every tick from *now (exclusive) up to end
// (inclusive), the way Local.Run does, and returns what became due.
func scanUntil(tr *Tracker, now *time.Duration, end time.Duration) []event {
	var out []event
	for *now+tick <= end {
		*now += tick
		for _, d := range tr.Scan(t0.Add(*now)) {
			out = append(out, event{*now, d.Ref, d.Action})
		}
	}
	return out
}

func TestUnhealthyThenExpire(t *testing.T) {
	tests := []struct {
		name          string
		md            map[string]string
		unhealthyAt   time.Duration // 0: never marked unhealthy
		expireAt      time.Duration
		beatAt        time.Duration // an extra beat, 0: none
		wantUnhealthy bool
	}{
		{name: "defaults", unhealthyAt: 15 * time.Second, expireAt: 30 * time.Second},
		{name: "beat pushes deadlines", beatAt: 10 * time.Second, unhealthyAt: 25 * time.Second, expireAt: 40 * time.Second},
		{name: "custom timeouts", md: map[string]string{model.MetaHeartBeatTimeout: "3000", model.MetaIPDeleteTimeout: "6000"},
			unhealthyAt: 3 * time.Second, expireAt: 6 * time.Second},
		{name: "delete shorter than heartbeat timeout", md: map[string]string{model.MetaIPDeleteTimeout: "5000"},
			expireAt: 5 * time.Second},
		{name: "equal timeouts", md: map[string]string{model.MetaHeartBeatTimeout: "4000", model.MetaIPDeleteTimeout: "4000"},
			expireAt: 4 * time.Second},
		{name: "malformed metadata falls back", md: map[string]string{model.MetaHeartBeatTimeout: "soon", model.MetaIPDeleteTimeout: "-1"},
			unhealthyAt: 15 * time.Second, expireAt: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(noCap(), t0, tick)
			r := ref(1)
			in := instWith(tt.md)
			tr.Beat(r, in, t0)
			var now time.Duration
			var evs []event
			if tt.beatAt > 0 {
				evs = scanUntil(tr, &now, tt.beatAt)
				tr.Beat(r, in, t0.Add(tt.beatAt))
			}
			evs = append(evs, scanUntil(tr, &now, tt.expireAt+10*time.Second)...)
			var want []event
			if tt.unhealthyAt > 0 {
				want = append(want, event{tt.unhealthyAt, r, MarkUnhealthy})
			}
			want = append(want, event{tt.expireAt, r, Expire})
			if fmt.Sprint(evs) != fmt.Sprint(want) {
				t.Fatalf("events\n got %v\nwant %v", evs, want)
			}
			if tr.Len() != 0 {
				t.Fatalf("expired instance still tracked: Len = %d", tr.Len())
			}
		})
	}
}

func TestBeatRestoresUnhealthy(t *testing.T) {
	tr := New(noCap(), t0, tick)
	r := ref(1)
	in := instWith(nil)
	if tr.Beat(r, in, t0) {
		t.Fatal("first beat reported unhealthy")
	}
	var now time.Duration
	if evs := scanUntil(tr, &now, 16*time.Second); len(evs) != 1 || evs[0].action != MarkUnhealthy {
		t.Fatalf("events %v", evs)
	}
	if !tr.Beat(r, in, t0.Add(now)) {
		t.Fatal("beat after a timeout did not report wasUnhealthy")
	}
	if tr.Beat(r, in, t0.Add(now)) {
		t.Fatal("second beat reported wasUnhealthy again")
	}
	// Fresh deadlines from the beat at 16 s: unhealthy at 31 s, expire at 46 s.
	evs := scanUntil(tr, &now, 50*time.Second)
	want := []event{{31 * time.Second, r, MarkUnhealthy}, {46 * time.Second, r, Expire}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", evs, want)
	}
}

func TestBeatChangesTimeouts(t *testing.T) {
	tr := New(noCap(), t0, tick)
	r := ref(1)
	tr.Beat(r, instWith(nil), t0)
	// A re-registration with shorter timeouts takes effect at once.
	tr.Beat(r, instWith(map[string]string{model.MetaHeartBeatTimeout: "1000", model.MetaIPDeleteTimeout: "2000"}), t0)
	var now time.Duration
	evs := scanUntil(tr, &now, 3*time.Second)
	want := []event{{time.Second, r, MarkUnhealthy}, {2 * time.Second, r, Expire}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", evs, want)
	}
}

func TestFresh(t *testing.T) {
	tr := New(noCap(), t0, tick)
	r := ref(1)
	if tr.Fresh(r, t0) {
		t.Fatal("untracked ref is fresh")
	}
	tr.Beat(r, instWith(nil), t0)
	if !tr.Fresh(r, t0.Add(14999*time.Millisecond)) {
		t.Fatal("not fresh within the heartbeat timeout")
	}
	if tr.Fresh(r, t0.Add(15*time.Second)) {
		t.Fatal("fresh at the heartbeat timeout")
	}
}

func TestUntrack(t *testing.T) {
	tr := New(noCap(), t0, tick)
	svc := ref(0).Service
	var keys []model.InstanceKey
	for i := range 10 {
		tr.Beat(ref(i), instWith(nil), t0)
		keys = append(keys, ref(i).Instance)
	}
	tr.Untrack(ref(3))
	tr.Untrack(ref(3))     // twice is fine
	tr.Untrack(ref(12345)) // unknown is fine
	for _, k := range keys[5:] {
		tr.Untrack(Ref{Service: svc, Instance: k})
	}
	if tr.Len() != 4 {
		t.Fatalf("Len = %d, want 4", tr.Len())
	}
	var now time.Duration
	seen := map[Ref]bool{}
	for _, e := range scanUntil(tr, &now, time.Minute) {
		if e.action == Expire {
			seen[e.ref] = true
		}
	}
	for i := range 10 {
		if want := i < 5 && i != 3; seen[ref(i)] != want {
			t.Errorf("ref %d expired=%v, want %v", i, seen[ref(i)], want)
		}
	}
}

func TestGraceIsNotEvidenceOfLife(t *testing.T) {
	tr := New(DefaultConfig(), t0, tick)
	r := ref(1)
	tr.Grace(r, instWith(nil), t0)
	if tr.Fresh(r, t0.Add(time.Second)) {
		t.Fatal("a grace period counted as a heartbeat")
	}
	tr.Beat(r, instWith(nil), t0.Add(2*time.Second))
	if !tr.Fresh(r, t0.Add(3*time.Second)) {
		t.Fatal("a real beat 1 s ago is not fresh")
	}
	if tr.Fresh(r, t0.Add(20*time.Second)) {
		t.Fatal("a beat 18 s ago (timeout 15 s) is still fresh")
	}
}

func TestPauseDetection(t *testing.T) {
	tr := New(DefaultConfig(), t0, tick)
	r := ref(1)
	in := instWith(nil)
	tr.Beat(r, in, t0)
	var now time.Duration
	if evs := scanUntil(tr, &now, 9*time.Second); len(evs) != 0 {
		t.Fatalf("early events %v", evs)
	}
	tr.Beat(r, in, t0.Add(9*time.Second))

	// The process stops for a minute: the next scan comes 60 s late.
	now += 60 * time.Second
	if d := tr.Scan(t0.Add(now)); len(d) != 0 {
		t.Fatalf("after a pause the tracker acted at once: %v", d)
	}
	if _, pauses := tr.Stats(); pauses != 1 {
		t.Fatalf("pauses = %d, want 1", pauses)
	}
	// The skipped time protects the instance from expiry, but it is no
	// evidence of life: Fresh (which drives refutations) uses real time.
	if tr.Fresh(r, t0.Add(now)) {
		t.Fatal("a skipped pause counted as a fresh heartbeat")
	}
	// Virtual time lost 60 s - one tick; the instance that beat at 9 s gets
	// its full 15 s of observed time.
	skipped := 60*time.Second - tick
	evs := scanUntil(tr, &now, skipped+40*time.Second)
	want := []event{{skipped + 24*time.Second, r, MarkUnhealthy}, {skipped + 39*time.Second, r, Expire}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", evs, want)
	}
}

func TestSlowScansAreNotPauses(t *testing.T) {
	// Scans 2 s apart are late but below threshold+period: time counts.
	tr := New(DefaultConfig(), t0, tick)
	tr.Beat(ref(1), instWith(nil), t0)
	var got []Due
	for at := 2 * time.Second; at <= 30*time.Second; at += 2 * time.Second {
		got = append(got, tr.Scan(t0.Add(at))...)
	}
	if _, pauses := tr.Stats(); pauses != 0 {
		t.Fatalf("pauses = %d", pauses)
	}
	if len(got) != 2 || got[1].Action != Expire {
		t.Fatalf("got %v, want unhealthy then expire within 30 s", got)
	}
}

// expirations returns how many Expire dues each window [k·w, (k+1)·w) saw.
func expirations(evs []event, window time.Duration) map[int]int {
	out := map[int]int{}
	for _, e := range evs {
		if e.action == Expire {
			out[int(e.at/window)]++
		}
	}
	return out
}

func TestExpiryCap(t *testing.T) {
	cfg := DefaultConfig() // 15% per 30 s window, at least 50
	const n = 1000
	tests := []struct {
		name    string
		beatAt  func(i int) time.Duration
		horizon time.Duration
	}{
		{"all at once", func(int) time.Duration { return 0 }, 20 * time.Minute},
		{"staggered", func(i int) time.Duration { return time.Duration(i%4) * time.Second }, 20 * time.Minute},
		{"spread over a window", func(i int) time.Duration { return time.Duration(i) * 30 * time.Millisecond }, 20 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(cfg, t0, tick)
			in := instWith(nil)
			var now time.Duration
			var evs []event
			for i := range n {
				at := tt.beatAt(i)
				if at > now {
					evs = append(evs, scanUntil(tr, &now, at)...)
				}
				tr.Beat(ref(i), in, t0.Add(at))
			}
			evs = append(evs, scanUntil(tr, &now, tt.horizon)...)

			// Per window of the tracker's own clock (windows open every 30 s
			// here): at most 15% of what was tracked when the window opened,
			// so never more than 150 of 1000.
			perWindow := expirations(evs, cfg.ExpireWindow)
			tracked, total, windows := n, 0, 0
			for w := 0; total < n && w < int(tt.horizon/cfg.ExpireWindow)+1; w++ {
				limit := max(cfg.ExpireMinPerWindow, int(cfg.ExpireMaxFraction*float64(tracked)))
				if perWindow[w] > limit {
					t.Errorf("window %d expired %d of %d tracked, limit %d", w, perWindow[w], tracked, limit)
				}
				if perWindow[w] > 0 {
					windows++
				}
				total += perWindow[w]
				tracked -= perWindow[w]
			}
			if total != n || tr.Len() != 0 {
				t.Fatalf("expired %d of %d by %v (still tracked %d); the rest must expire later", total, n, tt.horizon, tr.Len())
			}
			if windows < 2 {
				t.Fatalf("everything expired in one window")
			}
			if throttled, _ := tr.Stats(); throttled == 0 {
				t.Fatal("throttled counter not raised")
			}
			// Unhealthy marks are not capped: they are not deletions.
			unhealthy := 0
			for _, e := range evs {
				if e.action == MarkUnhealthy {
					unhealthy++
				}
			}
			if unhealthy != n {
				t.Errorf("%d marked unhealthy, want %d", unhealthy, n)
			}
		})
	}
}

func TestExpiryCapSmallRegistry(t *testing.T) {
	// Below ExpireMinPerWindow / fraction the cap never bites.
	tr := New(DefaultConfig(), t0, tick)
	for i := range 40 {
		tr.Beat(ref(i), instWith(nil), t0)
	}
	var now time.Duration
	evs := scanUntil(tr, &now, 31*time.Second)
	if got := expirations(evs, time.Hour)[0]; got != 40 {
		t.Fatalf("expired %d of 40", got)
	}
}

func TestExpiryCapDisabled(t *testing.T) {
	tr := New(noCap(), t0, tick)
	for i := range 1000 {
		tr.Beat(ref(i), instWith(nil), t0)
	}
	var now time.Duration
	evs := scanUntil(tr, &now, 30*time.Second)
	if got := expirations(evs, time.Hour)[0]; got != 1000 {
		t.Fatalf("expired %d of 1000 with the cap disabled", got)
	}
}

func TestExpiryCapBeatsRescueDeferred(t *testing.T) {
	tr := New(DefaultConfig(), t0, tick)
	in := instWith(nil)
	for i := range 1000 {
		tr.Beat(ref(i), in, t0)
	}
	var now time.Duration
	scanUntil(tr, &now, 30*time.Second)
	if tr.Len() != 850 {
		t.Fatalf("Len = %d after the first capped window, want 850", tr.Len())
	}
	// Clients come back: everything still tracked beats again and survives.
	for i := range 1000 {
		if tr.Len() > 0 {
			tr.Beat(ref(i), in, t0.Add(now))
		}
	}
	evs := scanUntil(tr, &now, now+10*time.Second)
	for _, e := range evs {
		if e.action == Expire {
			t.Fatalf("instance expired after it beat again: %v", e)
		}
	}
}

// TestScanNoneDueLeavesHeapAlone is the deterministic half of the cost
// property (see BenchmarkScanNoneDue): with nothing due, Scan returns nothing
// and does not reorder a single heap entry.
func TestScanNoneDueLeavesHeapAlone(t *testing.T) {
	const n = 100_000
	tr := New(DefaultConfig(), t0, tick)
	in := instWith(nil)
	for i := range n {
		tr.Beat(ref(i), in, t0.Add(time.Duration(i)*time.Microsecond))
	}
	before := make([]*tentry, len(tr.h))
	copy(before, tr.h)
	var now time.Duration
	if evs := scanUntil(tr, &now, 10*time.Second); len(evs) != 0 {
		t.Fatalf("%d dues with nothing due", len(evs))
	}
	for i, e := range tr.h {
		if before[i] != e || e.idx != i {
			t.Fatalf("heap entry %d moved during a scan with nothing due", i)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { tr.Scan(t0.Add(now)) }); allocs != 0 {
		t.Fatalf("Scan with nothing due allocates %v times", allocs)
	}
}

func BenchmarkScanNoneDue(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tr := New(DefaultConfig(), t0, tick)
			in := instWith(nil)
			for i := range n {
				tr.Beat(ref(i), in, t0)
			}
			now := t0.Add(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if len(tr.Scan(now)) != 0 {
					b.Fatal("something was due")
				}
			}
		})
	}
}

func BenchmarkBeat(b *testing.B) {
	const n = 100_000
	tr := New(DefaultConfig(), t0, tick)
	in := instWith(nil)
	refs := make([]Ref, n)
	for i := range refs {
		refs[i] = ref(i)
		tr.Beat(refs[i], in, t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		tr.Beat(refs[(i*7919)%n], in, t0.Add(time.Duration(i)*time.Microsecond))
		i++
	}
}
