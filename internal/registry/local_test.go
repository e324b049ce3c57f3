package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	clk   *clock.Fake
	st    *store.Store
	local *registry.Local
	start time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	st := store.New("n1", hlc.New(clk.Now))
	l := registry.NewLocal(st, health.DefaultConfig(), clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &env{t: t, clk: clk, st: st, local: l, start: t0}
}

// advance moves the fake clock forward in ScanInterval steps, scanning after
// each, the way Local.Run does.
func (e *env) advance(d time.Duration) {
	for end := e.clk.Now().Add(d); e.clk.Now().Before(end); {
		e.clk.Advance(registry.ScanInterval)
		e.local.ScanOnce()
	}
}

// advanceTo advances until elapsed time since the start is at least d.
func (e *env) advanceTo(d time.Duration) { e.advance(e.start.Add(d).Sub(e.clk.Now())) }

func (e *env) apply(op *registry.Op) (registry.Result, error) {
	return e.local.Apply(context.Background(), op)
}

func (e *env) mustApply(op *registry.Op) registry.Result {
	e.t.Helper()
	res, err := e.apply(op)
	if err != nil {
		e.t.Fatalf("%s: %v", op.Kind, err)
	}
	return res
}

func (e *env) revision(k model.ServiceKey) uint64 {
	if v := e.st.View(k); v != nil {
		return v.Revision
	}
	return 0
}

// hosts renders the view as "ip:port:healthy" strings.
func (e *env) hosts(k model.ServiceKey) string {
	v := e.st.View(k)
	if v == nil {
		return "<none>"
	}
	var out []string
	for _, in := range v.Instances {
		out = append(out, fmt.Sprintf("%s:%d:%v", in.IP, in.Port, in.Healthy))
	}
	return strings.Join(out, ",")
}

func (e *env) record(k model.ServiceKey, ik model.InstanceKey) *store.Record {
	recs, _ := e.st.Records(k, []model.InstanceKey{ik})
	if len(recs) == 0 {
		return nil
	}
	return recs[0]
}

var svc = model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

func instance(ip string, port int) model.Instance {
	return model.Instance{IP: ip, Port: port, Cluster: "DEFAULT", Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}
}

func register(in model.Instance) *registry.Op {
	return &registry.Op{Kind: registry.OpRegister, Key: svc, Instance: in}
}

func deregister(ip string, port int) *registry.Op {
	return &registry.Op{Kind: registry.OpDeregister, Key: svc, Instance: instance(ip, port)}
}

func fullBeat(in model.Instance) *registry.Op {
	return &registry.Op{Kind: registry.OpBeat, Key: svc, Instance: in}
}

func lightBeat(ip string, port int) *registry.Op {
	return &registry.Op{Kind: registry.OpBeat, Key: svc, Instance: instance(ip, port), LightBeat: true}
}

func TestRegisterDeregisterIdempotent(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	rev := e.revision(svc)
	if rev == 0 || e.hosts(svc) != "10.0.0.1:80:true" {
		t.Fatalf("after register: rev %d hosts %s", rev, e.hosts(svc))
	}
	stamp := e.record(svc, ikey("10.0.0.1")).Stamp

	// Same data again: no new version, no new revision.
	e.mustApply(register(instance("10.0.0.1", 80)))
	if e.revision(svc) != rev || e.record(svc, ikey("10.0.0.1")).Stamp != stamp {
		t.Fatal("re-register with the same data made a new version")
	}

	// Different data: a new version.
	in := instance("10.0.0.1", 80)
	in.Metadata = map[string]string{"v": "2"}
	e.mustApply(register(in))
	if e.revision(svc) <= rev {
		t.Fatal("re-register with new data made no new revision")
	}
	if got := e.st.View(svc).Instances[0].Metadata["v"]; got != "2" {
		t.Fatalf("metadata %q", got)
	}

	e.mustApply(deregister("10.0.0.1", 80))
	if e.hosts(svc) != "<none>" {
		t.Fatalf("after deregister: %s", e.hosts(svc))
	}
	if n, m := e.st.Counts(); n != 0 || m != 0 {
		t.Fatalf("Counts = %d, %d", n, m)
	}
	rev = e.revision(svc)
	d := e.st.Digest(svc)
	// Deregistering again, or something never registered, succeeds and changes nothing.
	e.mustApply(deregister("10.0.0.1", 80))
	e.mustApply(deregister("10.9.9.9", 80))
	e.mustApply(&registry.Op{Kind: registry.OpDeregister, Key: model.ServiceKey{Namespace: "x", Group: "y", Name: "z"}, Instance: instance("1.1.1.1", 1)})
	if e.revision(svc) != rev || e.st.Digest(svc) != d {
		t.Fatal("idempotent deregister changed the store")
	}
	if e.local.Tracker().Len() != 0 {
		t.Fatalf("deregistered instance still tracked (%d)", e.local.Tracker().Len())
	}
}

func TestDeregisterOnlyOwnConnection(t *testing.T) {
	e := newEnv(t)
	op := register(instance("10.0.0.1", 80))
	op.Conn, op.ConnNode = "c1", "n1"
	e.mustApply(op)
	if e.local.Tracker().Len() != 0 {
		t.Fatal("a connection-held instance is heartbeat-tracked")
	}
	// An HTTP beat for it does not make it heartbeat-kept either.
	e.mustApply(lightBeat("10.0.0.1", 80))
	if e.local.Tracker().Len() != 0 {
		t.Fatal("a beat made a connection-held instance heartbeat-tracked")
	}
	d := deregister("10.0.0.1", 80)
	d.Conn = "c2"
	e.mustApply(d)
	if e.hosts(svc) != "10.0.0.1:80:true" {
		t.Fatal("another connection removed the instance")
	}
	d.Conn = "c1"
	e.mustApply(d)
	if e.hosts(svc) != "<none>" {
		t.Fatal("the owning connection could not remove its instance")
	}
	// Connection-held instances never expire by heartbeat.
	e.mustApply(op)
	e.advance(time.Minute)
	if e.hosts(svc) != "10.0.0.1:80:true" {
		t.Fatalf("connection-held instance expired: %s", e.hosts(svc))
	}
}

func TestBeat(t *testing.T) {
	e := newEnv(t)

	// A light beat for an unknown instance asks the client to re-register.
	res := e.mustApply(lightBeat("10.0.0.1", 80))
	if res.BeatCode != registry.BeatNotFound || res.ClientBeatInterval != 5000 {
		t.Fatalf("light beat for unknown: %+v", res)
	}
	if e.st.View(svc) != nil {
		t.Fatal("light beat created something")
	}
	if n, _ := e.st.Counts(); n != 0 {
		t.Fatal("light beat counted a service")
	}

	// A full beat for an unknown instance registers it.
	in := instance("10.0.0.1", 80)
	in.Metadata = map[string]string{model.MetaHeartBeatInterval: "2000"}
	res = e.mustApply(fullBeat(in))
	if res.BeatCode != registry.BeatOK || res.ClientBeatInterval != 2000 {
		t.Fatalf("full beat for unknown: %+v", res)
	}
	if e.hosts(svc) != "10.0.0.1:80:true" {
		t.Fatalf("full beat did not register: %s", e.hosts(svc))
	}

	// A beat for a known instance refreshes it without a new version.
	rev := e.revision(svc)
	res = e.mustApply(lightBeat("10.0.0.1", 80))
	if res.BeatCode != registry.BeatOK || res.ClientBeatInterval != 2000 {
		t.Fatalf("light beat for known: %+v", res)
	}
	if e.revision(svc) != rev {
		t.Fatal("a beat made a new version")
	}

	// Beats keep the instance alive well past every timeout.
	for range 12 {
		e.advance(5 * time.Second)
		e.mustApply(lightBeat("10.0.0.1", 80))
	}
	if e.hosts(svc) != "10.0.0.1:80:true" || e.revision(svc) != rev {
		t.Fatalf("beating instance changed: %s", e.hosts(svc))
	}
}

func TestBeatRestoresUnhealthy(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	live := e.record(svc, ikey("10.0.0.1"))
	e.advanceTo(15 * time.Second)
	if e.hosts(svc) != "10.0.0.1:80:false" {
		t.Fatalf("not unhealthy after 15 s: %s", e.hosts(svc))
	}
	if r := e.record(svc, live.Key()); r.Kind != store.KindUnhealthy || r.Stamp != live.Stamp {
		t.Fatalf("timeout record %+v: want an unhealthy annotation of the live version", r)
	}
	rev := e.revision(svc)
	e.mustApply(lightBeat("10.0.0.1", 80))
	if e.hosts(svc) != "10.0.0.1:80:true" {
		t.Fatalf("beat did not restore health: %s", e.hosts(svc))
	}
	r := e.record(svc, live.Key())
	if r.Kind != store.KindLive || r.Stamp <= live.Stamp || e.revision(svc) <= rev {
		t.Fatalf("restored record %+v: want a new live version", r)
	}
	// Deadlines restart from the beat.
	e.advanceTo(29 * time.Second)
	if e.hosts(svc) != "10.0.0.1:80:true" {
		t.Fatalf("expired on the old deadline: %s", e.hosts(svc))
	}
}

func TestExpiryEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	e.mustApply(register(instance("10.0.0.2", 80)))
	e.advanceTo(10 * time.Second)
	e.mustApply(lightBeat("10.0.0.2", 80))

	e.advanceTo(15*time.Second - registry.ScanInterval)
	if got := e.hosts(svc); got != "10.0.0.1:80:true,10.0.0.2:80:true" {
		t.Fatalf("at 14.75 s: %s", got)
	}
	e.advanceTo(15 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.1:80:false,10.0.0.2:80:true" {
		t.Fatalf("at 15 s: %s", got)
	}
	e.advanceTo(30*time.Second - registry.ScanInterval)
	if got := e.hosts(svc); got != "10.0.0.1:80:false,10.0.0.2:80:false" {
		t.Fatalf("at 29.75 s: %s", got)
	}
	e.advanceTo(30 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.2:80:false" {
		t.Fatalf("at 30 s: %s", got)
	}
	if r := e.record(svc, ikey("10.0.0.1")); r == nil || r.Kind != store.KindExpired {
		t.Fatalf("expired instance left %+v, want an expired tombstone", r)
	}
	e.advanceTo(40 * time.Second)
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("at 40 s: %s", got)
	}
	expired, unhealthy, refuted := e.local.Stats()
	if expired != 2 || unhealthy != 2 || refuted != 0 {
		t.Fatalf("Stats = %d expired, %d unhealthy, %d refuted", expired, unhealthy, refuted)
	}
	// A light beat after expiry forces a re-register; a full beat re-registers.
	if res := e.mustApply(lightBeat("10.0.0.1", 80)); res.BeatCode != registry.BeatNotFound {
		t.Fatalf("light beat after expiry: %+v", res)
	}
	e.mustApply(fullBeat(instance("10.0.0.1", 80)))
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("after a full beat: %s", got)
	}
}

// A process pause (the scan loop resumes a minute late) costs no instance
// its life (H8): time lost to the pause does not count against deadlines.
func TestPauseDoesNotExpire(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	e.advanceTo(10 * time.Second)
	e.mustApply(lightBeat("10.0.0.1", 80))
	e.clk.Advance(time.Minute) // no scan, no beat: the process was stopped
	e.local.ScanOnce()
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("after a pause: %s", got)
	}
	if _, pauses := e.local.Tracker().Stats(); pauses != 1 {
		t.Fatalf("pauses = %d", pauses)
	}
	// The client beats again and all is well.
	e.mustApply(lightBeat("10.0.0.1", 80))
	e.advance(10 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("after resuming: %s", got)
	}
}

func TestPersistentInstancesDoNotExpire(t *testing.T) {
	e := newEnv(t)
	in := instance("10.0.0.1", 80)
	in.Ephemeral = false
	e.mustApply(register(in))
	e.advance(time.Minute)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("persistent instance: %s", got)
	}
}

func TestUpdateAndPatch(t *testing.T) {
	e := newEnv(t)
	upd := func(kind registry.OpKind, in model.Instance, fields ...registry.Field) error {
		_, err := e.apply(&registry.Op{Kind: kind, Key: svc, Instance: in, Fields: fields})
		return err
	}
	for _, kind := range []registry.OpKind{registry.OpUpdate, registry.OpPatch} {
		err := upd(kind, instance("10.0.0.1", 80), registry.FieldWeight)
		var re *registry.Error
		if !errors.As(err, &re) || re.Status != http.StatusBadRequest || !strings.Contains(re.Msg, "service not found") {
			t.Fatalf("%s of a missing service: %v", kind, err)
		}
		if registry.StatusOf(err) != http.StatusBadRequest {
			t.Fatalf("StatusOf = %d", registry.StatusOf(err))
		}
	}
	if e.st.View(svc) != nil {
		t.Fatal("a failed update created the service")
	}
	e.mustApply(register(instance("10.0.0.1", 80)))
	err := upd(registry.OpUpdate, instance("10.0.0.2", 80), registry.FieldWeight)
	if registry.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "instance not found") {
		t.Fatalf("update of a missing instance: %v", err)
	}

	in := instance("10.0.0.1", 80)
	in.Weight, in.Enabled, in.Metadata = 5, false, map[string]string{"a": "b"}
	if err := upd(registry.OpUpdate, in, registry.FieldWeight, registry.FieldMetadata); err != nil {
		t.Fatal(err)
	}
	got := e.st.View(svc).Instances[0]
	if got.Weight != 5 || !got.Enabled || got.Metadata["a"] != "b" {
		t.Fatalf("after update: %+v (enabled must be untouched: not in Fields)", got)
	}
	rev := e.revision(svc)
	if err := upd(registry.OpPatch, in, registry.FieldWeight); err != nil {
		t.Fatal(err)
	}
	if e.revision(svc) != rev {
		t.Fatal("a patch that changes nothing made a new revision")
	}
	in.Healthy = false
	if err := upd(registry.OpPatch, in, registry.FieldHealthy, registry.FieldEnabled); err != nil {
		t.Fatal(err)
	}
	got = e.st.View(svc).Instances[0]
	if got.Healthy || got.Enabled || got.Weight != 5 {
		t.Fatalf("after patch: %+v", got)
	}
	// The metadata map of the op is not shared with the store.
	in.Metadata["a"] = "mutated"
	if e.st.View(svc).Instances[0].Metadata["a"] != "b" {
		t.Fatal("stored metadata aliases the op's map")
	}
}

// An update is not a sign of life: an instance that timed out stays
// unhealthy and still expires on its deadline (Nacos 2.x keeps update and
// health apart).
func TestUpdateKeepsTimeoutState(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	e.advanceTo(16 * time.Second)
	in := instance("10.0.0.1", 80)
	in.Weight = 3
	e.mustApply(&registry.Op{Kind: registry.OpUpdate, Key: svc, Instance: in, Fields: []registry.Field{registry.FieldWeight}})
	if got := e.hosts(svc); got != "10.0.0.1:80:false" {
		t.Fatalf("update restored health without a beat: %s", got)
	}
	if w := e.st.View(svc).Instances[0].Weight; w != 3 {
		t.Fatalf("weight %v", w)
	}
	e.advanceTo(30 * time.Second)
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("updated instance did not expire on its deadline: %s", got)
	}
}

func TestUnknownOp(t *testing.T) {
	e := newEnv(t)
	_, err := e.apply(&registry.Op{Kind: 99, Key: svc})
	if registry.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown op: %v", err)
	}
	if registry.OpKind(99).String() != "op(99)" || registry.OpBeat.String() != "beat" {
		t.Fatal("OpKind.String")
	}
}

func TestStatusOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{registry.Errorf(404, "x"), 404},
		{fmt.Errorf("wrapped: %w", registry.Errorf(409, "x")), 409},
		{fmt.Errorf("%w: bad", model.ErrInvalid), 400},
		{context.DeadlineExceeded, 503},
		{context.Canceled, 503},
		{errors.New("boom"), 500},
	} {
		if got := registry.StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// remoteCopy returns what a peer would send for the instance: the local
// record with another kind and the same stamp (a weak annotation), or a new
// version from another origin.
func remote(r *store.Record, kind store.Kind, stamp hlc.Timestamp, origin string) *store.Record {
	cp := *r
	cp.Kind, cp.Stamp, cp.Origin = kind, stamp, origin
	return &cp
}

func TestSetOwnershipGrace(t *testing.T) {
	e := newEnv(t)
	none := func(model.ServiceKey) bool { return false }
	all := func(model.ServiceKey) bool { return true }
	e.local.SetOwnership(none, nil, nil)

	// Another node owns the key and replicates a registration to us.
	peer := store.New("n2", hlc.New(e.clk.Now))
	_ = peer.Update(svc, func(tx *store.Tx) error {
		in := instance("10.0.0.1", 80)
		tx.Put(&in, store.KindLive, "", "")
		return nil
	})
	recs, _ := peer.Records(svc, nil)
	e.st.Merge(svc, recs, nil, time.Minute)
	if e.local.Tracker().Len() != 0 {
		t.Fatal("a key this node does not own is tracked")
	}
	// A long time passes without this node hearing any beat.
	e.advance(2 * time.Minute)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("non-owner expired the instance: %s", got)
	}

	// This node gains the key: the instance gets a full grace period (H1).
	e.start = e.clk.Now()
	e.local.SetOwnership(all, []model.ServiceKey{svc}, nil)
	e.local.ScanOnce()
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("gaining the key expired the instance at once: %s", got)
	}
	e.advanceTo(14 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("within the grace period: %s", got)
	}
	// The client's beats now reach us and keep it alive.
	for range 6 {
		e.mustApply(lightBeat("10.0.0.1", 80))
		e.advance(5 * time.Second)
	}
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("beating instance after gaining the key: %s", got)
	}

	// Losing the key stops tracking: nothing expires here any more.
	e.local.SetOwnership(none, nil, []model.ServiceKey{svc})
	if n := e.local.Tracker().Len(); n != 0 {
		t.Fatalf("lost key still tracked: %d", n)
	}
	e.advance(2 * time.Minute)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("former owner expired the instance: %s", got)
	}
	if expired, unhealthy, _ := e.local.Stats(); expired != 0 || unhealthy != 0 {
		t.Fatalf("Stats: %d expired %d unhealthy", expired, unhealthy)
	}

	// Without beats after gaining the key, expiry counts from the gain.
	e.start = e.clk.Now()
	e.local.SetOwnership(all, []model.ServiceKey{svc}, nil)
	e.advanceTo(15 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.1:80:false" {
		t.Fatalf("15 s after gaining: %s", got)
	}
	e.advanceTo(30 * time.Second)
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("30 s after gaining: %s", got)
	}
}

func TestScanDropsKeysNoLongerOwned(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	// Ownership moves away without the key being listed as lost.
	e.local.SetOwnership(func(model.ServiceKey) bool { return false }, nil, nil)
	e.advance(time.Minute)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("a node expired an instance of a key it no longer owns: %s", got)
	}
	if n := e.local.Tracker().Len(); n != 0 {
		t.Fatalf("tracker still holds %d entries", n)
	}
}

func TestRefuteRemoteExpiry(t *testing.T) {
	for _, kind := range []store.Kind{store.KindExpired, store.KindUnhealthy} {
		t.Run(kind.String(), func(t *testing.T) {
			e := newEnv(t)
			e.mustApply(register(instance("10.0.0.1", 80)))
			live := e.record(svc, ikey("10.0.0.1"))
			e.advanceTo(5 * time.Second)
			e.mustApply(lightBeat("10.0.0.1", 80))

			// The other side of a partition timed the instance out and its
			// annotation arrives here (H6).
			n := e.st.Merge(svc, []*store.Record{remote(live, kind, live.Stamp, live.Origin)}, nil, time.Minute)
			if n != 1 {
				t.Fatalf("merge changed %d records", n)
			}
			// The refutation is synchronous: the timeout never shows here.
			if got := e.hosts(svc); got != "10.0.0.1:80:true" {
				t.Fatalf("after refutation: %s", got)
			}
			r := e.record(svc, live.Key())
			// A renewal: just above the version it renews, so any client
			// write made after that version still outranks it.
			if r.Kind != store.KindLive || r.Stamp != live.Stamp+1 || r.Origin != "n1" {
				t.Fatalf("refutation record %+v: want a live renewal at stamp %d from n1", r, live.Stamp+1)
			}
			if _, _, refuted := e.local.Stats(); refuted != 1 {
				t.Fatalf("refuted = %d", refuted)
			}
			// A replica that holds the expiry converges to the refutation.
			peer := store.New("n2", hlc.New(e.clk.Now))
			peer.Merge(svc, []*store.Record{remote(live, kind, live.Stamp, live.Origin)}, nil, time.Minute)
			recs, _ := e.st.Records(svc, nil)
			peer.Merge(svc, recs, nil, time.Minute)
			if peer.Digest(svc) != e.st.Digest(svc) {
				t.Fatal("peer did not converge to the refutation")
			}
		})
	}
}

func TestNoRefutationWithoutFreshBeats(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	live := e.record(svc, ikey("10.0.0.1"))
	// Another node owns the key from 1 s on: this node keeps the evidence
	// of the registration only until a delete timeout after it.
	e.advanceTo(time.Second)
	e.local.SetOwnership(func(model.ServiceKey) bool { return false }, nil, []model.ServiceKey{svc})
	e.advanceTo(31 * time.Second)
	e.st.Merge(svc, []*store.Record{remote(live, store.KindExpired, live.Stamp, live.Origin)}, nil, time.Minute)
	e.local.ScanOnce()
	if got := e.hosts(svc); got != "<none>" {
		t.Fatalf("stale instance refuted a remote expiry: %s", got)
	}
	if e.local.Tracker().Len() != 0 {
		t.Fatal("expired instance still tracked")
	}
	if _, _, refuted := e.local.Stats(); refuted != 0 {
		t.Fatalf("refuted = %d", refuted)
	}
}

// An expiry claims a whole delete timeout without beats. A node that
// handled a beat within it refutes the expiry; if the beat is older than
// the heartbeat timeout, the renewal keeps the instance unhealthy.
func TestRefuteExpiryWithOlderEvidenceAsUnhealthy(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	live := e.record(svc, ikey("10.0.0.1"))
	e.advanceTo(16 * time.Second) // marked unhealthy here at 15 s
	e.st.Merge(svc, []*store.Record{remote(live, store.KindExpired, live.Stamp, live.Origin)}, nil, time.Minute)
	if got := e.hosts(svc); got != "10.0.0.1:80:false" {
		t.Fatalf("after the remote expiry: %s", got)
	}
	r := e.record(svc, live.Key())
	if r.Kind != store.KindUnhealthy || r.Stamp != live.Stamp+1 || r.Origin != "n1" {
		t.Fatalf("refutation record %+v: want an unhealthy renewal at stamp %d from n1", r, live.Stamp+1)
	}
}

func TestRemoteVersionsAreSignsOfLife(t *testing.T) {
	e := newEnv(t)
	peer := store.New("n2", hlc.New(e.clk.Now))
	put := func() {
		_ = peer.Update(svc, func(tx *store.Tx) error {
			in := instance("10.0.0.1", 80)
			tx.Put(&in, store.KindLive, "", "")
			return nil
		})
		recs, _ := peer.Records(svc, nil)
		e.st.Merge(svc, recs, nil, time.Minute)
	}
	put()
	if e.local.Tracker().Len() != 1 {
		t.Fatal("a replicated registration of an owned key is not tracked")
	}
	e.advanceTo(10 * time.Second)
	put() // a re-registration handled by another node
	e.advanceTo(24 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.1:80:true" {
		t.Fatalf("remote renewal not counted: %s", got)
	}
	e.advanceTo(25 * time.Second)
	if got := e.hosts(svc); got != "10.0.0.1:80:false" {
		t.Fatalf("15 s after the remote renewal: %s", got)
	}
	// A remote deregistration stops tracking.
	_ = peer.Update(svc, func(tx *store.Tx) error {
		in := instance("10.0.0.1", 80)
		tx.Put(&in, store.KindDeleted, "", "")
		return nil
	})
	recs, _ := peer.Records(svc, nil)
	e.st.Merge(svc, recs, nil, time.Minute)
	if e.local.Tracker().Len() != 0 {
		t.Fatal("remotely deleted instance still tracked")
	}
}

func TestRunScansOnTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.mustApply(register(instance("10.0.0.1", 80)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.local.Run(ctx); close(done) }()
		synctest.Wait() // Run has its ticker and waits on it
		for i := 0; e.hosts(svc) != "10.0.0.1:80:false"; i++ {
			if i > int(16*time.Second/registry.ScanInterval) {
				t.Fatal("Run did not mark the instance unhealthy within 16 s of ticks")
			}
			e.clk.Advance(registry.ScanInterval)
			synctest.Wait()
		}
		if at := e.clk.Now().Sub(t0); at != 15*time.Second {
			t.Fatalf("marked unhealthy at %v, want 15s", at)
		}
		cancel()
		<-done
	})
}

func ikey(ip string) model.InstanceKey {
	return model.InstanceKey{IP: ip, Port: 80, Cluster: "DEFAULT"}
}

func TestCreateServiceThatExistsThroughInstances(t *testing.T) {
	e := newEnv(t)
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "implicit"}
	in := model.Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "DEFAULT"}
	e.mustApply(&registry.Op{Kind: registry.OpRegister, Key: k, Instance: in})
	_, err := e.apply(&registry.Op{Kind: registry.OpCreateService, Key: k})
	if registry.StatusOf(err) != 400 {
		t.Fatalf("creating a service that has instances: err = %v, want 400 already exists", err)
	}
}

// A node that holds an old tombstone of an instance the client has since
// registered again elsewhere (the re-registration has not reached it yet)
// must still record a deregistration that outranks the newer live copy;
// treating it as a repeat of the old one lost the deregistration, and the
// instance came back everywhere (found by internal/sim).
func TestDeregisterOverStaleTombstone(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(instance("10.0.0.1", 80)))
	e.mustApply(deregister("10.0.0.1", 80))
	old := e.record(svc, ikey("10.0.0.1"))
	// The re-registration, made on another node a second later.
	e.clk.Advance(time.Second)
	other := store.New("n2", hlc.New(e.clk.Now))
	in := instance("10.0.0.1", 80)
	if err := other.Update(svc, func(tx *store.Tx) error { tx.Put(&in, store.KindLive, "", ""); return nil }); err != nil {
		t.Fatal(err)
	}
	live, _ := other.Records(svc, []model.InstanceKey{ikey("10.0.0.1")})
	// The client deregisters through this node before the copy arrives.
	e.clk.Advance(time.Second)
	e.mustApply(deregister("10.0.0.1", 80))
	if r := e.record(svc, ikey("10.0.0.1")); r.Compare(old) <= 0 {
		t.Fatal("the deregistration recorded no new version over the old tombstone")
	}
	e.st.Merge(svc, live, nil, time.Minute)
	if r := e.record(svc, ikey("10.0.0.1")); r.Kind != store.KindDeleted || e.hosts(svc) != "<none>" {
		t.Fatalf("the older re-registration won over the later deregistration: %s %s", r.Kind, e.hosts(svc))
	}
}
