package registry_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

func persistent(ip string, port int) model.Instance {
	in := instance(ip, port)
	in.Ephemeral = false
	return in
}

func setHealth(in model.Instance, healthy bool) *registry.Op {
	in.Healthy = healthy
	return &registry.Op{Kind: registry.OpSetHealth, Key: svc, Instance: in}
}

func updateCluster(name string, c model.ClusterMeta) *registry.Op {
	return &registry.Op{Kind: registry.OpUpdateCluster, Key: svc, ClusterName: name, Cluster: c}
}

func TestSetHealth(t *testing.T) {
	e := newEnv(t)
	db := persistent("10.0.0.1", 3306)
	e.mustApply(register(db))
	live := e.record(svc, db.Key())

	e.mustApply(setHealth(db, false))
	r := e.record(svc, db.Key())
	if r.Kind != store.KindUnhealthy || r.Stamp != live.Stamp || r.Origin != live.Origin {
		t.Fatalf("unhealthy verdict %+v: want the checked version's stamp with kind unhealthy (a weak version)", r)
	}
	if got := e.hosts(svc); got != "10.0.0.1:3306:false" {
		t.Fatalf("hosts %s", got)
	}
	rev := e.revision(svc)
	e.mustApply(setHealth(db, false)) // again: no change, no event
	if e.revision(svc) != rev {
		t.Fatal("a repeated verdict wrote a new version")
	}
	e.mustApply(setHealth(db, true))
	r = e.record(svc, db.Key())
	if r.Kind != store.KindLive || r.Stamp != live.Stamp+1 {
		t.Fatalf("healthy verdict %+v: want a renewal just above the checked version", r)
	}
	if got := e.hosts(svc); got != "10.0.0.1:3306:true" {
		t.Fatalf("hosts %s", got)
	}

	// A client write made after the check outranks a verdict about the
	// version it replaced, wherever the two meet (merge order).
	e.mustApply(setHealth(db, false))
	marked := e.record(svc, db.Key())
	later := *marked
	later.Stamp, later.Kind, later.Origin = marked.Stamp+2, store.KindLive, "n2"
	if n := e.st.Merge(svc, []*store.Record{&later}, nil, 0); n != 1 {
		t.Fatal("a newer client version lost to an older verdict")
	}
	older := *marked
	older.Kind = store.KindLive
	e.mustApply(setHealth(db, false))
	if n := e.st.Merge(svc, []*store.Record{&older}, nil, 0); n != 0 {
		t.Fatal("the version a verdict annotates overwrote the verdict")
	}

	// Only persistent, present instances are judged.
	eph := instance("10.0.0.2", 80)
	e.mustApply(register(eph))
	e.mustApply(setHealth(eph, false))
	if e.record(svc, eph.Key()).Kind != store.KindLive {
		t.Fatal("a verdict changed an ephemeral instance")
	}
	e.mustApply(setHealth(persistent("10.0.0.9", 1), false))
	if e.record(svc, model.InstanceKey{IP: "10.0.0.9", Port: 1, Cluster: "DEFAULT"}) != nil {
		t.Fatal("a verdict about an absent instance created it")
	}
	e.mustApply(deregister("10.0.0.1", 3306))
	e.mustApply(setHealth(db, true))
	if e.record(svc, db.Key()).Kind != store.KindDeleted {
		t.Fatal("a stale verdict brought back a deregistered instance")
	}
}

func TestUpdateCluster(t *testing.T) {
	e := newEnv(t)
	tcp := model.DefaultClusterMeta(model.CheckTCP)
	if _, err := e.apply(updateCluster("DEFAULT", tcp)); registry.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("cluster of a missing service: %v", err)
	}
	if e.st.View(svc) != nil {
		t.Fatal("a refused cluster update created the service")
	}
	e.mustApply(register(persistent("10.0.0.1", 3306)))
	e.mustApply(updateCluster("DEFAULT", tcp))
	v := e.st.View(svc)
	if v.Meta == nil || v.Meta.Clusters["DEFAULT"].HealthChecker.Type != model.CheckTCP || v.Meta.Selector.Type != "none" {
		t.Fatalf("meta %+v", v.Meta)
	}
	rev := e.revision(svc)
	e.mustApply(updateCluster("DEFAULT", tcp))
	if e.revision(svc) != rev {
		t.Fatal("an unchanged cluster update wrote a new version")
	}
	web := model.ClusterMeta{HealthChecker: model.HealthChecker{Type: model.CheckHTTP, Path: "/h", ExpectedCode: 200}, CheckPort: 8080,
		Metadata: map[string]string{"k": "v"}}
	e.mustApply(updateCluster("web", web))
	// A service update keeps the cluster settings; a delete clears them.
	e.mustApply(&registry.Op{Kind: registry.OpUpdateService, Key: svc, Service: model.ServiceMeta{ProtectThreshold: 0.4}})
	v = e.st.View(svc)
	if v.Meta.ProtectThreshold != 0.4 || len(v.Meta.Clusters) != 2 || !func() bool { c := v.Meta.Clusters["web"]; return c.Equal(&web) }() {
		t.Fatalf("after a service update: %+v", v.Meta)
	}
	for i := len(v.Meta.Clusters); i < model.MaxClusterSettings; i++ {
		e.mustApply(updateCluster(fmt.Sprintf("c%d", i), tcp))
	}
	if _, err := e.apply(updateCluster("one-too-many", tcp)); registry.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("cluster over the limit: %v", err)
	}
	e.mustApply(updateCluster("web", tcp)) // replacing an existing one is fine at the limit
	e.mustApply(deregister("10.0.0.1", 3306))
	e.mustApply(&registry.Op{Kind: registry.OpDeleteService, Key: svc})
	if e.st.View(svc) != nil {
		t.Fatal("service with cluster settings survived its deletion")
	}
}

// TestClusterSettingsMerge: cluster settings travel in the service's
// settings record, so concurrent updates resolve by its version like any
// service settings.
func TestClusterSettingsMerge(t *testing.T) {
	e := newEnv(t)
	e.mustApply(register(persistent("10.0.0.1", 3306)))
	e.mustApply(updateCluster("DEFAULT", model.DefaultClusterMeta(model.CheckTCP)))
	_, cur := e.st.Records(svc, []model.InstanceKey{})
	newer := &store.MetaRecord{Meta: model.ServiceMeta{Selector: model.Selector{Type: "none"},
		Clusters: map[string]model.ClusterMeta{"DEFAULT": model.DefaultClusterMeta(model.CheckNone)}}, Stamp: cur.Stamp + hlc.Timestamp(1), Origin: "n2"}
	e.st.Merge(svc, nil, newer, 0)
	if got := e.st.View(svc).Meta.Cluster("DEFAULT", model.CheckTCP).HealthChecker.Type; got != model.CheckNone {
		t.Fatalf("after merging newer settings: %s", got)
	}
	older := &store.MetaRecord{Meta: cur.Meta, Stamp: cur.Stamp, Origin: cur.Origin}
	e.st.Merge(svc, nil, older, 0)
	if got := e.st.View(svc).Meta.Cluster("DEFAULT", model.CheckTCP).HealthChecker.Type; got != model.CheckNone {
		t.Fatalf("older settings overwrote newer ones: %s", got)
	}
}
