package v1

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// TestAuth runs the v1 SDK against a node with client auth on: clients
// configured with a user name and password log in and work (register,
// select, UDP push), a user with read-only permission on the namespace can
// list and subscribe but not register, and a request without a token gets
// Nacos's 403. (A v1 client with a wrong password is not run here: v1.1.6
// retries a failed login in a tight loop for the life of the process; the
// wrong-password case is covered with the v2 SDK and the npm client.)
func TestAuth(t *testing.T) {
	t.Parallel()
	n := harness.StartNode(t, harness.Options{Name: "v1-auth", Args: harness.AuthArgs()})
	roCreds := n.AddUser(t, "reader", "reader-password", "public:*:*", "r")
	admin := harness.NewV1ClientWith(t, "admin", harness.Admin, n)
	ro := harness.NewV1ClientWith(t, "reader", roCreds, n)
	svc := uniq(t, "svc")

	sub := newSubscriber()
	if err := ro.Subscribe(&vo.SubscribeParam{ServiceName: svc, SubscribeCallback: sub.Callback}); err != nil {
		t.Fatalf("reader Subscribe: %v", err)
	}
	changed := time.Now()
	admin.MustRegister(t, inst(svc, "10.91.0.1", 8080, ""))
	expectPush(t, sub, "register by the admin, pushed to the reader", changed, "10.91.0.1:8080")
	waitFirstBeat(t, admin, "10.91.0.1", 8080) // beats carry the token too (answered 200)

	got, err := ro.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || !sameSet(addrs(got), "10.91.0.1:8080") {
		t.Fatalf("reader SelectAllInstances = %v, %v", addrs(got), err)
	}
	if ok, err := ro.RegisterInstance(inst(svc, "10.91.0.2", 8080, "")); err == nil && ok {
		t.Fatal("the read-only user registered an instance")
	}
	h := n.AdminHTTP(t)
	if s, err := h.ListInstances(harness.GroupedName("", svc), "", false); err != nil || !sameSet(rawAddrs(s), "10.91.0.1:8080") {
		t.Fatalf("server list after the refused register: %v %v", s, err)
	}
	var he *harness.HTTPError
	_, err = n.HTTP().Do("GET", "/v1/ns/instance/list", url.Values{"serviceName": {harness.GroupedName("", svc)}})
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("list without a token: %v", err)
	}
}
