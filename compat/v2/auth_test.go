package v2

import (
	"fmt"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// TestAuthCluster runs the v2 SDK against a three-node cluster with client
// auth on (the cluster default; the admin password is given to every
// node). Clients configured with credentials log in over HTTP and send
// their token in every gRPC request: a writer registers on one node and a
// reader, allowed to read the namespace only, is pushed the change through
// another node; the reader cannot register; a wrong password and missing
// credentials fail cleanly (the SDK answers false or an error, and nothing
// is registered).
func TestAuthCluster(t *testing.T) {
	t.Parallel()
	c := harness.StartCluster(t, 3, harness.Options{Name: "v2auth", Args: harness.AuthArgs(clusterArgs...)})
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Users are replicated through Raft: each is created through another
	// node than the one its client talks to.
	writerCreds := c.Nodes[2].AddUser(t, "writer", "writer-password", "public:*:*", "rw")
	readerCreds := c.Nodes[0].AddUser(t, "reader", "reader-password", "public:*:*", "r")
	harness.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, u := range []struct {
			n *harness.Node
			c harness.Credentials
		}{{c.Nodes[0], writerCreds}, {c.Nodes[1], readerCreds}} {
			if _, err := u.n.HTTP().Login(u.c.Username, u.c.Password); err != nil {
				return fmt.Errorf("%s on %s: %v", u.c.Username, u.n.Name, err)
			}
		}
		return nil
	})
	svc := uniq(t, "svc")
	label := func(n string) string {
		l := harness.UniqueName(harness.Slug(t.Name()), n)
		addToken(t, l)
		return l
	}
	writer := harness.NewV2ClientWith(t, label("writer"), writerCreds, c.Nodes[0])
	reader := harness.NewV2ClientWith(t, label("reader"), readerCreds, c.Nodes[1])
	sub := subscribe(t, reader, svc)
	changed := time.Now()
	p := inst(svc, "10.92.0.1", 8080, "")
	writer.MustRegister(t, p)
	expectPush(t, sub, "register through node 0, pushed through node 1", changed, pkey(p))
	if ok, err := reader.RegisterInstance(inst(svc, "10.92.0.4", 8080, "")); err == nil && ok {
		t.Fatal("the read-only user registered an instance")
	}

	bad, err := harness.NewV2ClientErr(t, label("wrong"), harness.Credentials{Username: "nacos", Password: "wrong-password"}, c.Nodes[2])
	if err == nil {
		if ok, err := bad.RegisterInstance(inst(svc, "10.92.0.2", 8080, "")); err == nil && ok {
			t.Fatal("a client with a wrong password registered")
		}
	}
	anon := harness.NewV2Client(t, label("anonymous"), c.Nodes[2])
	if ok, err := anon.RegisterInstance(inst(svc, "10.92.0.3", 8080, "")); err == nil && ok {
		t.Fatal("a client without credentials registered")
	}
	h := c.Nodes[2].AdminHTTP(t)
	s, err := h.ListInstances(harness.GroupedName("", svc), "", false)
	if err != nil || !harness.SameSet(s.Keys(), []string{pkey(p)}) {
		t.Fatalf("server list: %v %v", s, err)
	}
}

// TestAuthReadOnly: on a single node with auth on, a user with read-only
// permission on one namespace can query and subscribe there but not
// register, and sees nothing of another namespace.
func TestAuthReadOnly(t *testing.T) {
	t.Parallel()
	n := harness.StartNode(t, harness.Options{Name: "v2-auth", Args: harness.AuthArgs()})
	ro := n.AddUser(t, "reader", "reader-password", "public:*:*", "r")
	svc := uniq(t, "svc")
	writer := harness.NewV2ClientWith(t, harness.UniqueName(harness.Slug(t.Name()), "w"), harness.Admin, n)
	reader := harness.NewV2ClientWith(t, harness.UniqueName(harness.Slug(t.Name()), "r"), ro, n)
	sub := subscribe(t, reader, svc)
	p := inst(svc, "10.93.0.1", 8080, "")
	changed := time.Now()
	writer.MustRegister(t, p)
	expectPush(t, sub, "register, pushed to the read-only user", changed, pkey(p))
	got, err := reader.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || !harness.SameSet(keys(got), []string{pkey(p)}) {
		t.Fatalf("reader SelectAllInstances = %v, %v", keys(got), err)
	}
	if ok, err := reader.RegisterInstance(inst(svc, "10.93.0.2", 8080, "")); err == nil && ok {
		t.Fatal("the read-only user registered an instance")
	}
	if err := serverViewAs(n.AdminHTTP(t), svc, pkey(p)); err != nil {
		t.Fatal(err)
	}
}

func serverViewAs(h *harness.NacosHTTP, svc string, want ...string) error {
	s, err := h.ListInstances(harness.GroupedName("", svc), "", false)
	if err != nil {
		return err
	}
	if !harness.SameSet(s.Keys(), want) {
		return fmt.Errorf("server lists %v, want %v", s.Keys(), want)
	}
	return nil
}
