package distro

import (
	"errors"
	"testing"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// TestHealthCheckOpsOverTheWire: cluster settings and health verdicts
// survive a hand-on unchanged, and settings a peer sends are validated like
// a client's.
func TestHealthCheckOpsOverTheWire(t *testing.T) {
	l := model.DefaultLimits()
	key := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "db"}
	web := model.ClusterMeta{HealthChecker: model.HealthChecker{Type: model.CheckHTTP, Path: "/h?x=1", Headers: "A:b", ExpectedCode: 204,
		IntervalMs: 1000, TimeoutMs: 100}, CheckPort: 8080, Metadata: map[string]string{"k": "v"}}
	up := &registry.Op{Kind: registry.OpUpdateCluster, Key: key, ClusterName: "web", Cluster: web}
	got, err := opFromPB(opToPB(up), l)
	if err != nil || got.ClusterName != "web" || !got.Cluster.Equal(&web) {
		t.Fatalf("update-cluster round trip: %+v, %v", got, err)
	}
	in := model.Instance{IP: "10.0.0.1", Port: 3306, Cluster: "DEFAULT", Weight: 1, Enabled: true, Healthy: false}
	sh := &registry.Op{Kind: registry.OpSetHealth, Key: key, Instance: in}
	if got, err := opFromPB(opToPB(sh), l); err != nil || got.Kind != registry.OpSetHealth || got.Instance.Key() != in.Key() || got.Instance.Healthy {
		t.Fatalf("set-health round trip: %+v, %v", got, err)
	}
	meta := &store.MetaRecord{Meta: model.ServiceMeta{Clusters: map[string]model.ClusterMeta{"web": web}}, Stamp: 9, Origin: "n1"}
	back, err := metaFromPB(metaToPB(meta), l)
	if err != nil || len(back.Meta.Clusters) != 1 {
		t.Fatalf("meta round trip: %+v, %v", back, err)
	}
	if c := back.Meta.Clusters["web"]; !c.Equal(&web) {
		t.Fatalf("meta round trip: %+v", c)
	}

	bad := func(mut func(w *clusterpb.WriteOp)) *clusterpb.WriteOp {
		w := opToPB(up)
		mut(w)
		return w
	}
	for name, w := range map[string]*clusterpb.WriteOp{
		"batch register is never handed on": {Kind: uint32(registry.OpBatchRegister), Key: keyToPB(key), Instance: instanceToPB(&in)},
		"unknown kind":                      {Kind: uint32(registry.OpSetHealth) + 1, Key: keyToPB(key), Instance: instanceToPB(&in)},
		"no settings":                       bad(func(w *clusterpb.WriteOp) { w.Cluster = nil }),
		"bad cluster name":                  bad(func(w *clusterpb.WriteOp) { w.ClusterName = "a/b" }),
		"network-path check":                bad(func(w *clusterpb.WriteOp) { w.Cluster.HealthChecker.Path = "//evil.example/" }),
		"unknown check type":                bad(func(w *clusterpb.WriteOp) { w.Cluster.HealthChecker.Type = "MYSQL" }),
		"check port out of range":           bad(func(w *clusterpb.WriteOp) { w.Cluster.CheckPort = 70000 }),
		"set-health without an address":     {Kind: uint32(registry.OpSetHealth), Key: keyToPB(key), Instance: &clusterpb.Instance{Port: 1, Weight: 1}},
	} {
		if _, err := opFromPB(w, l); err == nil || !errors.Is(err, model.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid-parameter error", name, err)
		}
	}
	pm := metaToPB(meta)
	pm.Clusters["web"].HealthChecker.Headers = "A:b\r\nInjected: 1"
	if _, err := metaFromPB(pm, l); err == nil {
		t.Fatal("peer settings with a header injection accepted")
	}
}
