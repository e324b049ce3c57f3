package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// TestClusterAuth: a three-node cluster with client auth on (the cluster
// default), the same admin on every node. A v1 client that knows every
// node logs in and registers (with heartbeats) through whichever node it
// picks, and every node lists the instance to a logged-in reader: a token
// issued by one node is accepted by all of them.
func TestClusterAuth(t *testing.T) {
	t.Parallel()
	c := harness.StartCluster(t, 3, harness.Options{Name: "clauth", Args: harness.AuthArgs(harness.FastClusterArgs()...)})
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	cl := harness.NewV1ClientWith(t, "admin", harness.Admin, c.Nodes...)
	svc := uniq("auth")
	p := inst(svc, "10.94.0.1", 8080, "")
	cl.MustRegister(t, p)
	tok, err := c.Nodes[0].HTTP().Login(harness.Admin.Username, harness.Admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			h := n.HTTP()
			h.Token = tok
			s, err := h.ListInstances(harness.GroupedName("", svc), "", false)
			if err != nil {
				return err
			}
			if !harness.SameSet(s.Keys(), []string{harness.V1ParamKey(p)}) {
				return fmt.Errorf("%s lists %v", n.Name, s.Keys())
			}
		}
		return nil
	})
	got, err := cl.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || len(got) != 1 {
		t.Fatalf("SelectAllInstances = %v, %v", got, err)
	}
}
