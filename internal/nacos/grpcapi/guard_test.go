package grpcapi

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// fakeGuard takes the accessToken header as the user name: "" is refused,
// "ro" may only read, and users in revoked may not read any more.
type fakeGuard struct {
	mu      sync.Mutex
	epoch   uint64
	revoked map[string]bool
}

func (g *fakeGuard) Authorize(typ string, _ []byte, h map[string]string, _ string) (string, int, string) {
	who := h["accessToken"]
	switch typ {
	case TypeHealthCheckRequest:
		return "", 0, ""
	case TypeInstanceRequest, TypeBatchInstanceRequest, TypePersistentInstanceRequest:
		if who == "ro" {
			return "", CodeNoRight, "authorization failed!"
		}
	}
	if who == "" {
		return "", CodeNoRight, "user not found!"
	}
	return who, 0, ""
}
func (g *fakeGuard) Epoch() uint64 { g.mu.Lock(); defer g.mu.Unlock(); return g.epoch }
func (g *fakeGuard) MayRead(who string, _ model.ServiceKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.revoked[who]
}

// callAs sends a unary request with an accessToken header.
func (c *testClient) callAs(who, typ, body string) (string, map[string]any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p := EncodePayload(typ, []byte(body))
	p.Metadata.Headers = map[string]string{"accessToken": who}
	out, err := c.rc.Request(ctx, p)
	if err != nil {
		c.t.Fatalf("%s: %v", typ, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.GetBody().GetValue(), &m); err != nil {
		c.t.Fatal(err)
	}
	return out.GetMetadata().GetType(), m
}

// TestGuard: refused requests are answered with their own response type and
// errorCode 403 (not ErrorResponse, which makes the SDKs switch servers),
// and a subscriber whose read permission is revoked gets no more pushes.
func TestGuard(t *testing.T) {
	g := &fakeGuard{epoch: 1, revoked: map[string]bool{}}
	ts := newTestServer(t, func(c *Config) { c.Guard = g; c.MergeWindow = 5 * time.Millisecond })
	w, r := connect(t, ts.addr), connect(t, ts.addr)
	for _, c := range []struct{ who, want string }{{"", "user not found!"}, {"ro", "authorization failed!"}} {
		typ, m := w.callAs(c.who, TypeInstanceRequest, registerBody("guarded", "10.0.0.1", 80))
		if typ != TypeInstanceResponse || m["errorCode"] != 403.0 || m["resultCode"] != 500.0 || m["message"] != c.want {
			t.Fatalf("register as %q answered %s %v", c.who, typ, m)
		}
	}
	if typ, m := w.callAs("rw", TypeInstanceRequest, registerBody("guarded", "10.0.0.1", 80)); typ != TypeInstanceResponse || m["success"] != true {
		t.Fatalf("register as rw answered %s %v", typ, m)
	}
	if typ, m := r.callAs("ro", TypeSubscribeServiceRequest, subscribeBody("guarded", "", true)); typ != TypeSubscribeServiceResponse || m["success"] != true {
		t.Fatalf("subscribe as ro answered %s %v", typ, m)
	}
	w.callAs("rw", TypeInstanceRequest, registerBody("guarded", "10.0.0.2", 80))
	r.waitPush(1)
	g.mu.Lock()
	g.revoked["ro"] = true
	g.epoch++
	g.mu.Unlock()
	w.callAs("rw", TypeBatchInstanceRequest, `{"requestId":"","namespace":"public","serviceName":"guarded","groupName":"DEFAULT_GROUP",`+
		`"type":"batchRegisterInstance","instances":[{"ip":"10.0.0.3","port":80},{"ip":"10.0.0.4","port":80}]}`)
	// The push round that drops the subscription sends it nothing.
	waitFor(t, "the revoked subscription to go", func() bool { return ts.subscriptionCount() == 0 })
	for _, m := range r.messages(TypeNotifySubscriberRequest) {
		if len(hostsOf(m.Body)) == 2 {
			t.Fatal("a push reached a subscriber whose read permission was revoked")
		}
	}
}
