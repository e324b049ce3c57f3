package model

import (
	"errors"
	"strconv"
	"testing"
)

// TestWithCluster: the one merge of a cluster's settings into a service's
// (used by the AP registry and the CP state machine alike).
func TestWithCluster(t *testing.T) {
	tcp := ClusterMeta{HealthChecker: HealthChecker{Type: CheckTCP}, CheckPort: 80, Metadata: map[string]string{"a": "1"}}
	// No settings yet: the defaults plus the cluster.
	var none *ServiceMeta
	next, changed, err := none.WithCluster("C", tcp)
	if err != nil || !changed || next.Selector.Type != "none" || next.Clusters["C"].CheckPort != 80 {
		t.Fatalf("from nothing: %+v %v %v", next, changed, err)
	}
	// The input is copied, not aliased.
	tcp.Metadata["a"] = "2"
	if next.Clusters["C"].Metadata["a"] != "1" {
		t.Fatal("cluster metadata aliased")
	}
	// The same settings again: no change; the receiver is never modified.
	cur := next
	same := next.Clusters["C"]
	if _, changed, err := cur.WithCluster("C", same); err != nil || changed {
		t.Fatalf("same settings: changed=%v %v", changed, err)
	}
	http := ClusterMeta{HealthChecker: HealthChecker{Type: CheckHTTP, Path: "/up"}}
	n2, changed, err := cur.WithCluster("D", http)
	if err != nil || !changed || len(n2.Clusters) != 2 || len(cur.Clusters) != 1 {
		t.Fatalf("second cluster: %+v (receiver %+v) %v %v", n2, cur, changed, err)
	}
	// The limit applies to new clusters only.
	full := ServiceMeta{Clusters: map[string]ClusterMeta{}}
	for i := range MaxClusterSettings {
		full.Clusters["c"+strconv.Itoa(i)] = ClusterMeta{}
	}
	if _, _, err := full.WithCluster("one-more", tcp); !errors.Is(err, ErrInvalid) {
		t.Fatalf("past the limit: %v", err)
	}
	if _, changed, err := full.WithCluster("c0", tcp); err != nil || !changed {
		t.Fatalf("change of an existing cluster at the limit: %v %v", changed, err)
	}
}
