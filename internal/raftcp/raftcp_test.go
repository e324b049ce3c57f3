package raftcp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

var svc = model.ServiceKey{Namespace: "public", Group: "G", Name: "db"}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func inst(ip string, port int, ephemeral bool) model.Instance {
	return model.Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: ephemeral, Cluster: "DEFAULT"}
}

type env struct {
	st *store.Store
	w  *consistency.Router
	n  *raftcp.Node
}

func newEnv(t *testing.T, dir string) *env {
	t.Helper()
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, discard())
	n := raftcptest.Standalone(t, st, dir)
	return &env{st: st, n: n, w: &consistency.Router{AP: local, CP: &raftcp.Writer{Node: n, Store: st}, Store: st}}
}

func (e *env) apply(op *registry.Op) error {
	_, err := e.w.Apply(context.Background(), op)
	return err
}

func want400(t *testing.T, err error, text string) {
	t.Helper()
	if registry.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), text) {
		t.Fatalf("got %v, want 400 containing %q", err, text)
	}
}

// TestServiceOps: service settings go through Raft with Nacos's checks and
// messages, including the ones that depend on ephemeral instances.
func TestServiceOps(t *testing.T) {
	e := newEnv(t, "")
	svcOp := func(kind registry.OpKind, meta model.ServiceMeta) error {
		return e.apply(&registry.Op{Kind: kind, Key: svc, Service: meta})
	}
	want400(t, svcOp(registry.OpUpdateService, model.ServiceMeta{}), "not found")
	want400(t, svcOp(registry.OpDeleteService, model.ServiceMeta{}), "not exist")
	if e.st.View(svc) != nil {
		t.Fatal("failed service ops created the service")
	}
	if err := svcOp(registry.OpCreateService, model.ServiceMeta{ProtectThreshold: 0.5, Selector: model.Selector{Type: "none"}}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); v == nil || v.Meta == nil || v.Meta.ProtectThreshold != 0.5 {
		t.Fatalf("created service view %+v", v)
	}
	want400(t, svcOp(registry.OpCreateService, model.ServiceMeta{}), "already exists")
	if err := svcOp(registry.OpUpdateService, model.ServiceMeta{ProtectThreshold: 0.7}); err != nil {
		t.Fatal(err)
	}
	if pt := e.st.View(svc).Meta.ProtectThreshold; pt != 0.7 {
		t.Fatalf("threshold %v after update", pt)
	}
	// Not empty: an ephemeral instance (checked by the proposer) or a
	// persistent one (checked by the state machine).
	eph := inst("10.0.0.1", 80, true)
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: eph}); err != nil {
		t.Fatal(err)
	}
	want400(t, svcOp(registry.OpDeleteService, model.ServiceMeta{}), "is not empty")
	if err := e.apply(&registry.Op{Kind: registry.OpDeregister, Key: svc, Instance: eph}); err != nil {
		t.Fatal(err)
	}
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: inst("10.0.0.2", 80, false)}); err != nil {
		t.Fatal(err)
	}
	want400(t, svcOp(registry.OpDeleteService, model.ServiceMeta{}), "is not empty")
	if err := e.apply(&registry.Op{Kind: registry.OpDeregister, Key: svc, Instance: inst("10.0.0.2", 80, false)}); err != nil {
		t.Fatal(err)
	}
	if err := svcOp(registry.OpDeleteService, model.ServiceMeta{}); err != nil {
		t.Fatal(err)
	}
	if e.st.View(svc) != nil {
		t.Fatal("deleted service still visible")
	}
	want400(t, svcOp(registry.OpDeleteService, model.ServiceMeta{}), "not exist")
	if err := svcOp(registry.OpCreateService, model.ServiceMeta{}); err != nil {
		t.Fatal(err)
	}
	// A service that exists through its ephemeral instances can be updated.
	other := model.ServiceKey{Namespace: "public", Group: "G", Name: "implicit"}
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: other, Instance: inst("10.0.0.1", 80, true)}); err != nil {
		t.Fatal(err)
	}
	if err := e.apply(&registry.Op{Kind: registry.OpUpdateService, Key: other, Service: model.ServiceMeta{ProtectThreshold: 0.2}}); err != nil {
		t.Fatal(err)
	}
}

// TestPersistentInstances: register, update, patch, beat and deregister of
// persistent instances, routing by identity, and the one-identity rule.
func TestPersistentInstances(t *testing.T) {
	e := newEnv(t, "")
	db := inst("10.0.0.5", 3306, false)
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: db}); err != nil {
		t.Fatal(err)
	}
	if e.st.PersistentInstance(svc, db.Key()) == nil || e.st.EphemeralInstance(svc, db.Key()) != nil {
		t.Fatal("persistent register did not land on the CP side")
	}
	// Routed by identity: an update without ephemeral=false still reaches it.
	up := inst("10.0.0.5", 3306, true)
	up.Weight = 5
	if err := e.apply(&registry.Op{Kind: registry.OpUpdate, Key: svc, Instance: up, Fields: []registry.Field{registry.FieldWeight}}); err != nil {
		t.Fatal(err)
	}
	if w := e.st.PersistentInstance(svc, db.Key()).Weight; w != 5 {
		t.Fatalf("weight %v", w)
	}
	up.Healthy = false
	if err := e.apply(&registry.Op{Kind: registry.OpPatch, Key: svc, Instance: up, Fields: []registry.Field{registry.FieldHealthy}}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); len(v.Instances) != 1 || v.Instances[0].Healthy || v.Instances[0].Ephemeral {
		t.Fatalf("view %+v", v.Instances)
	}
	// A beat changes nothing and answers OK; an ephemeral register of the
	// same identity is refused.
	res, err := e.w.Apply(context.Background(), &registry.Op{Kind: registry.OpBeat, Key: svc, Instance: inst("10.0.0.5", 3306, true), LightBeat: true})
	if err != nil || res.BeatCode != registry.BeatOK {
		t.Fatalf("beat %+v %v", res, err)
	}
	want400(t, e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: inst("10.0.0.5", 3306, true)}), "registered as persistent")
	eph := inst("10.0.0.6", 80, true)
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: eph}); err != nil {
		t.Fatal(err)
	}
	want400(t, e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: inst("10.0.0.6", 80, false)}), "registered as ephemeral")
	want400(t, e.apply(&registry.Op{Kind: registry.OpUpdate, Key: svc, Instance: inst("10.0.0.9", 1, false), Fields: []registry.Field{registry.FieldWeight}}), "instance not found")
	if err := e.apply(&registry.Op{Kind: registry.OpDeregister, Key: svc, Instance: inst("10.0.0.5", 3306, true)}); err != nil {
		t.Fatal(err)
	}
	if e.st.PersistentInstance(svc, db.Key()) != nil {
		t.Fatal("deregister without ephemeral=false did not remove the persistent instance")
	}
	if v := e.st.View(svc); len(v.Instances) != 1 || v.Instances[0].IP != "10.0.0.6" {
		t.Fatalf("ephemeral instance lost: %+v", v)
	}
}

// TestRestartKeepsState: the persistent part and the KV tables survive a
// restart, from the log and from a snapshot.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	for round := range 2 {
		st := store.New("127.0.0.1:8848", hlc.New(nil))
		ctx, cancel := context.WithCancel(context.Background())
		cfg := raftcp.DefaultConfig(st.Self(), dir)
		cfg.Standalone, cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.Logger = true, 50e6, 50e6, discard()
		n, err := raftcp.Open(cfg, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		w := &raftcp.Writer{Node: n, Store: st}
		kv := raftcp.KV{Node: n}
		if round == 0 {
			for i := range 50 {
				in := inst("10.0.1.1", 1000+i, false)
				if _, err := w.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: svc, Instance: in}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Apply(ctx, &registry.Op{Kind: registry.OpUpdateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.3}}); err != nil {
				t.Fatal(err)
			}
			if err := kv.Write(ctx, consistency.KVWrite{Table: "ns", Key: "dev", Value: []byte("x"), Mode: consistency.KVCreate}); err != nil {
				t.Fatal(err)
			}
			if err := kv.Write(ctx, consistency.KVWrite{Table: "ns", Key: "dev", Value: []byte("y"), Mode: consistency.KVCreate}); !errors.Is(err, consistency.ErrExists) {
				t.Fatalf("second create: %v", err)
			}
			if err := n.Raft().Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			// Entries after the snapshot come back from the log.
			if _, err := w.Apply(ctx, &registry.Op{Kind: registry.OpDeregister, Key: svc, Instance: inst("10.0.1.1", 1000, false)}); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := kv.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			v := st.View(svc)
			if v == nil || len(v.Instances) != 49 || v.Meta == nil || v.Meta.ProtectThreshold != 0.3 {
				t.Fatalf("after restart: %+v", v)
			}
			if b, ok := kv.Get("ns", "dev"); !ok || string(b) != "x" {
				t.Fatalf("kv after restart %q %v", b, ok)
			}
		}
		cancel()
		<-done
	}
}

// TestDataDirLocked: a second process on the same data dir is refused
// with a clear error instead of waiting forever on the file lock.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	raftcptest.Standalone(t, st, dir)
	cfg := raftcp.DefaultConfig(st.Self(), dir)
	cfg.Standalone, cfg.Logger = true, discard()
	if _, err := raftcp.Open(cfg, store.New("127.0.0.1:8848", hlc.New(nil)), nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

// TestFSMDeterministic applies one command sequence to two state machines
// and compares their whole decoded contents, after the applies and after
// a snapshot and restore. The sequence holds entries that a node with the
// default (or lower) configurable limits would refuse at its own entry
// points: the state machine applies them all the same (it knows only the
// protocol's fixed maxima), so nodes configured differently never diverge.
// Entries beyond the fixed maxima and garbage are refused alike.
func TestFSMDeterministic(t *testing.T) {
	big := map[string]string{"blob": strings.Repeat("x", 20<<10)}                                 // > the default 16 KiB
	longName := model.ServiceKey{Namespace: "public", Group: "G", Name: strings.Repeat("n", 300)} // > the default 255
	huge := map[string]string{"blob": strings.Repeat("x", 300<<10)}                               // > the fixed 256 KiB
	type step struct {
		cmd []byte
		ok  bool
	}
	var steps []step
	addOp := func(op *registry.Op, ok bool) {
		b, err := raftcp.EncodeOp(op)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, step{b, ok})
	}
	for j := range 20 {
		in := inst("10.0.0.1", 1+j, false)
		in.Metadata = map[string]string{"j": strconv.Itoa(j)}
		addOp(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: in}, true)
	}
	withBig := inst("10.0.0.2", 80, false)
	withBig.Metadata = big
	addOp(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: withBig}, true)
	addOp(&registry.Op{Kind: registry.OpRegister, Key: longName, Instance: inst("10.0.0.3", 80, false)}, true)
	withHuge := inst("10.0.0.4", 80, false)
	withHuge.Metadata = huge
	addOp(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: withHuge}, false)
	addOp(&registry.Op{Kind: registry.OpCreateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.1}}, false)
	addOp(&registry.Op{Kind: registry.OpUpdateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.4, Metadata: big}}, true)
	down := inst("10.0.0.1", 3, false)
	down.Metadata = map[string]string{"j": "2"}
	down.Healthy = false
	addOp(&registry.Op{Kind: registry.OpSetHealth, Key: svc, Instance: down}, true)
	addOp(&registry.Op{Kind: registry.OpDeregister, Key: svc, Instance: inst("10.0.0.1", 5, false)}, true)
	steps = append(steps, step{[]byte{0xff, 0x01}, false})
	b, _ := raftcp.EncodeKV(consistency.KVWrite{Table: "t", Key: "k", Value: []byte("v"), Mode: consistency.KVUpsert})
	steps = append(steps, step{b, true})

	var dumps [2]string
	var snaps [2][]byte
	for i := range 2 {
		f := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
		for j, s := range steps {
			r := f.Apply(&raft.Log{Index: uint64(j + 1), Type: raft.LogCommand, Data: s.cmd}).(raftcp.Result)
			if (r.Err == nil) != s.ok {
				t.Fatalf("entry %d: result %v, want ok=%v", j+1, r.Err, s.ok)
			}
		}
		if f.Applied() != uint64(len(steps)) {
			t.Fatalf("applied %d, want %d", f.Applied(), len(steps))
		}
		dumps[i] = raftcptest.Dump(t, f)
		snaps[i] = raftcptest.Snapshot(t, f)
		// Restore into a fresh machine: the same contents.
		f2 := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
		if err := f2.Restore(io.NopCloser(bytes.NewReader(snaps[i]))); err != nil {
			t.Fatal(err)
		}
		if d := raftcptest.Dump(t, f2); d != dumps[i] {
			t.Fatalf("restored state differs:\n%s\n--- want ---\n%s", d, dumps[i])
		}
	}
	if dumps[0] != dumps[1] {
		t.Fatalf("two replicas differ:\n%s\n--- and ---\n%s", dumps[0], dumps[1])
	}
	for _, want := range []string{"instance 10.0.0.2#80#DEFAULT", "instance 10.0.0.1#3#DEFAULT down=true", strings.Repeat("n", 300), `"ProtectThreshold":0.4`, "kv t/k"} {
		if !strings.Contains(dumps[0], want) {
			t.Errorf("state lacks %q", want)
		}
	}
	if strings.Contains(dumps[0], "10.0.0.4") || strings.Contains(dumps[0], "10.0.0.1#5#") {
		t.Error("state holds a refused or deregistered instance")
	}
	// A truncated or corrupted snapshot is refused and changes nothing.
	st := store.New("n", hlc.New(nil))
	f := raftcp.NewFSM(st, discard())
	for _, bad := range [][]byte{snaps[0][:len(snaps[0])/2], append([]byte("x"), snaps[0]...), nil} {
		if err := f.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatal("corrupt snapshot restored")
		}
	}
	if st.View(svc) != nil {
		t.Fatal("a refused snapshot changed the store")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

// FuzzDecodeCommand: no input panics the decoder, and whatever it accepts
// re-encodes and applies without error from validation.
func FuzzDecodeCommand(f *testing.F) {
	for _, op := range []*registry.Op{
		{Kind: registry.OpRegister, Key: svc, Instance: inst("10.0.0.1", 80, false)},
		{Kind: registry.OpUpdateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.5, Metadata: map[string]string{"a": "b"}}},
		{Kind: registry.OpPatch, Key: svc, Instance: inst("10.0.0.1", 80, false), Fields: []registry.Field{registry.FieldHealthy}},
	} {
		b, _ := raftcp.EncodeOp(op)
		f.Add(b)
	}
	b, _ := raftcp.EncodeKV(consistency.KVWrite{Table: "namespaces", Key: "dev", Value: []byte(`{"name":"dev"}`), Mode: consistency.KVCreate})
	f.Add(b)
	b, _ = raftcp.EncodeExt("auth", []byte(`c{"op":"deleteUser","username":"u"}`))
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := raftcp.DecodeCommand(data)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("decode error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if parts := btoi(cmd.Op != nil) + btoi(cmd.KV != nil) + btoi(cmd.Ext != nil); parts != 1 {
			t.Fatalf("decoded command has %d parts", parts)
		}
		if cmd.Op != nil && cmd.Op.Instance.Ephemeral {
			t.Fatal("decoded persistent op with an ephemeral instance")
		}
		st := store.New("n", hlc.New(nil))
		fsm := raftcp.NewFSM(st, discard())
		if r := fsm.Apply(&raft.Log{Index: 1, Data: data}).(raftcp.Result); r.Err != nil && errors.Is(r.Err, model.ErrInvalid) {
			t.Fatalf("accepted command failed validation on apply: %v", r.Err)
		}
	})
}

// TestHealthAndClusterSettings: cluster settings (PUT /v1/ns/cluster) and
// health check verdicts go through Raft: a verdict shows the instance
// unhealthy, a client write lifts it, a service update keeps the cluster
// settings, and both survive a snapshot.
func TestHealthAndClusterSettings(t *testing.T) {
	e := newEnv(t, "")
	db := inst("10.0.0.5", 3306, false)
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: db}); err != nil {
		t.Fatal(err)
	}
	cm := model.ClusterMeta{HealthChecker: model.HealthChecker{Type: model.CheckTCP}, CheckPort: 3307}
	if err := e.apply(&registry.Op{Kind: registry.OpUpdateCluster, Key: svc, ClusterName: "DEFAULT", Cluster: cm}); err != nil {
		t.Fatal(err)
	}
	if err := e.apply(&registry.Op{Kind: registry.OpUpdateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.2}}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); v.Meta == nil || v.Meta.ProtectThreshold != 0.2 || v.Meta.Clusters["DEFAULT"].CheckPort != 3307 {
		t.Fatalf("settings %+v", v.Meta)
	}
	down := db
	down.Healthy = false
	if err := e.apply(&registry.Op{Kind: registry.OpSetHealth, Key: svc, Instance: down}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); v.Instances[0].Healthy {
		t.Fatal("verdict not shown")
	}
	recs, mr := e.st.PersistentRecords(svc, nil)
	if len(recs) != 1 || recs[0].Kind != store.KindUnhealthy || mr == nil {
		t.Fatalf("records %+v %+v", recs, mr)
	}
	// Survives a snapshot and restore.
	s, _ := e.n.FSM().Snapshot()
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	st2 := store.New("n", hlc.New(nil))
	f2 := raftcp.NewFSM(st2, discard())
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if v := st2.View(svc); v == nil || v.Instances[0].Healthy || v.Meta.Clusters["DEFAULT"].CheckPort != 3307 {
		t.Fatalf("restored %+v", v)
	}
	// An update keeps the verdict; a registration lifts it.
	up := db
	up.Weight = 3
	if err := e.apply(&registry.Op{Kind: registry.OpUpdate, Key: svc, Instance: up, Fields: []registry.Field{registry.FieldWeight}}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); v.Instances[0].Healthy || v.Instances[0].Weight != 3 {
		t.Fatal("an update lifted the verdict")
	}
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: db}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); !v.Instances[0].Healthy {
		t.Fatal("a registration did not lift the verdict")
	}
	// A stale verdict, about the instance as it was before a change (a
	// re-registration with new metadata), does not mark the changed one.
	fresh := db
	fresh.Metadata = map[string]string{"version": "2"}
	if err := e.apply(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: fresh}); err != nil {
		t.Fatal(err)
	}
	if err := e.apply(&registry.Op{Kind: registry.OpSetHealth, Key: svc, Instance: down}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); !v.Instances[0].Healthy {
		t.Fatal("a verdict about the instance before its re-registration marked the new one down")
	}
	freshDown := fresh
	freshDown.Healthy = false
	if err := e.apply(&registry.Op{Kind: registry.OpSetHealth, Key: svc, Instance: freshDown}); err != nil {
		t.Fatal(err)
	}
	if v := e.st.View(svc); v.Instances[0].Healthy {
		t.Fatal("a verdict about the current instance was ignored")
	}
	want400(t, e.apply(&registry.Op{Kind: registry.OpUpdateCluster, Key: model.ServiceKey{Namespace: "public", Group: "G", Name: "none"}, ClusterName: "DEFAULT", Cluster: cm}), "service not found")
}

// FuzzReadSnapshot: no input panics the snapshot decoder, a refused one
// leaves a restored state machine as it was, and what it accepts restores
// into the same contents.
func FuzzReadSnapshot(f *testing.F) {
	fsm := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
	var idx uint64
	for _, op := range []*registry.Op{
		{Kind: registry.OpRegister, Key: svc, Instance: inst("10.0.0.1", 80, false)},
		{Kind: registry.OpUpdateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.5, Metadata: map[string]string{"a": "b"}}},
		{Kind: registry.OpSetHealth, Key: svc, Instance: model.Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Enabled: true, Cluster: "DEFAULT"}},
	} {
		b, _ := raftcp.EncodeOp(op)
		idx++
		fsm.Apply(&raft.Log{Index: idx, Data: b})
	}
	b, _ := raftcp.EncodeKV(consistency.KVWrite{Table: "namespaces", Key: "dev", Value: []byte(`{"name":"dev"}`), Mode: consistency.KVCreate})
	idx++
	fsm.Apply(&raft.Log{Index: idx, Data: b})
	full := raftcptest.Snapshot(f, fsm)
	f.Add(full)
	f.Add(full[:len(full)/2])
	f.Add(raftcptest.Snapshot(f, raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())))
	f.Add([]byte("distro-cp-snapshot-1\n\x00\x00\x00\x00\x00\x00\x00\x01\x05"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _, _, err := raftcp.ReadSnapshot(bytes.NewReader(data))
		st := store.New("n", hlc.New(nil))
		f := raftcp.NewFSM(st, discard())
		rerr := f.Restore(io.NopCloser(bytes.NewReader(data)))
		if (err == nil) != (rerr == nil) {
			t.Fatalf("ReadSnapshot %v but Restore %v", err, rerr)
		}
		if err != nil {
			if st.View(svc) != nil || f.Applied() != 0 {
				t.Fatal("a refused snapshot changed the state machine")
			}
			return
		}
		// Accepted: a snapshot of the restored machine restores alike.
		again := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
		if err := again.Restore(io.NopCloser(bytes.NewReader(raftcptest.Snapshot(t, f)))); err != nil {
			t.Fatalf("re-snapshot of an accepted snapshot refused: %v", err)
		}
		if raftcptest.Dump(t, again) != raftcptest.Dump(t, f) {
			t.Fatal("an accepted snapshot does not round-trip")
		}
	})
}
