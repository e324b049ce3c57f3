package grpcapi

import (
	"fmt"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// TestLifecycle walks a client through the whole connection lifecycle over
// a real loopback gRPC connection: ServerCheck, 301 before setup, setup,
// register, subscribe with push and ack, and removal on disconnect.
func TestLifecycle(t *testing.T) {
	ts := newTestServer(t)

	pub := dial(t, ts.addr)
	_, sc := pub.call(TypeServerCheckRequest, `{"requestId":"","module":"internal"}`)
	id, _ := sc["connectionId"].(string)
	if !regexp.MustCompile(`^\d{13}_127\.0\.0\.1_\d+$`).MatchString(id) || sc["success"] != true {
		t.Fatalf("ServerCheck answered %v; want a connectionId millis_ip_port", sc)
	}
	// Not set up yet: every other request is refused with 301.
	pub.mustFail(TypeInstanceRequest, registerBody("demo", "10.0.0.1", 8080), CodeUnregistered)
	pub.mustFail(TypeHealthCheckRequest, `{}`, CodeUnregistered)

	pub.connID = id
	pub.openStream()
	pub.send(TypeConnectionSetupRequest, `{"requestId":"","module":"internal","clientVersion":"Nacos-Go-Client:v2.3.5",`+
		`"tenant":"","labels":{"module":"naming","source":"sdk"},"clientAbilities":{}}`)
	waitFor(t, "setup", func() bool { return ts.Clients() == 1 })
	pub.mustOK(TypeHealthCheckRequest, TypeHealthCheckResponse, `{"requestId":"","module":"internal"}`)

	m := pub.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 8080))
	if m["type"] != "registerInstance" {
		t.Fatalf("InstanceResponse type = %v", m["type"])
	}
	// The SDK registers twice at start-up: idempotent.
	pub.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 8080))
	if got := ts.live(demoKey); len(got) != 1 || got[model.InstanceKey{IP: "10.0.0.1", Port: 8080, Cluster: "DEFAULT"}] != id {
		t.Fatalf("store holds %v; want 10.0.0.1:8080 held by %s", got, id)
	}

	sub := connect(t, ts.addr)
	resp := sub.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	si := resp["serviceInfo"].(map[string]any)
	if si["name"] != "demo" || si["groupName"] != "DEFAULT_GROUP" || si["clusters"] != "" || len(hostsOf(resp)) != 1 {
		t.Fatalf("subscribe answered %v", si)
	}
	h := hostsOf(resp)[0].(map[string]any)
	if h["serviceName"] != "DEFAULT_GROUP@@demo" || h["metadata"].(map[string]any)["k"] != "v" || h["instanceId"] != "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@demo" {
		t.Fatalf("host = %v", h)
	}
	firstRef := si["lastRefTime"].(float64)

	// A second publisher's register is pushed to the subscriber, and acked.
	pub2 := connect(t, ts.addr)
	pub2.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.2", 8080))
	push := sub.waitPush(2)
	if push.requestID() == "" || push.Body["serviceName"] != "demo" || push.Body["groupName"] != "DEFAULT_GROUP" || push.Body["namespace"] != "public" {
		t.Fatalf("push = %s", push.Raw)
	}
	if ref := push.Body["serviceInfo"].(map[string]any)["lastRefTime"].(float64); ref <= firstRef {
		t.Fatalf("push lastRefTime %v not above the subscribe answer's %v", ref, firstRef)
	}
	waitFor(t, "the ack", func() bool { return ts.metric("push_acks_total") == 1 })
	if n := ts.metric("pushes_total"); n != 1 {
		t.Fatalf("pushes = %v; want 1", n)
	}

	// Disconnect: the publisher's instance goes and the subscriber is told.
	_ = pub.cc.Close()
	waitFor(t, "the instance to go", func() bool { return len(ts.live(demoKey)) == 1 })
	sub.waitPush(1)
	waitFor(t, "the connection to go", func() bool { return ts.Clients() == 2 && ts.transportCount() == 2 })
	if ts.connAlive(id) {
		t.Fatal("closed connection still alive")
	}

	// Unsubscribe: no more pushes.
	sub.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", false))
	if n := ts.subscriptionCount(); n != 0 {
		t.Fatalf("subscriptions = %d after unsubscribe", n)
	}
	if v := ts.metric("requests_total", "type", TypeInstanceRequest, "result", "301"); v != 1 {
		t.Fatalf("requests{InstanceRequest,301} = %v", v)
	}
	if ts.conns.sweeps.Load() != 1 {
		t.Fatalf("SweepConns called %d times; want once", ts.conns.sweeps.Load())
	}
}

// TestNotReady: before the node is ready ServerCheck answers 300 (the
// client tries another node) and the leftover sweep waits.
func TestNotReady(t *testing.T) {
	ready := make(chan struct{})
	ts := newTestServer(t, func(c *Config) { c.Ready = ready })
	c := dial(t, ts.addr)
	c.mustFail(TypeServerCheckRequest, `{"requestId":"","module":"internal"}`, CodeServerStarting)
	if ts.conns.sweeps.Load() != 0 {
		t.Fatal("swept before ready")
	}
	close(ready)
	c.mustOK(TypeServerCheckRequest, TypeServerCheckResponse, `{"requestId":"","module":"internal"}`)
	waitFor(t, "the sweep", func() bool { return ts.conns.sweeps.Load() == 1 })
}

// TestPushMergeAndSupersede: changes within the merge window become one
// push; an unacknowledged push is superseded by a newer one.
func TestPushMergeAndSupersede(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MergeWindow = 300 * time.Millisecond })
	sub := connect(t, ts.addr)
	sub.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	start := time.Now()
	var pubs []*testClient
	for i := range 4 {
		p := connect(t, ts.addr)
		pubs = append(pubs, p)
		p.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", fmt.Sprintf("10.0.0.%d", i+1), 80))
	}
	within := time.Since(start) < 250*time.Millisecond
	sub.waitPush(4)
	if n := len(sub.messages(TypeNotifySubscriberRequest)); within && n != 1 {
		t.Fatalf("%d pushes for changes within one window; want 1", n)
	}
	_ = pubs
}

// TestPushRetryThenDrop: a subscriber that never acks gets the push resent
// with the same request id, then its connection is dropped.
func TestPushRetryThenDrop(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AckTimeout, c.MaxRetries = 30*time.Millisecond, 2 })
	sub := connect(t, ts.addr)
	sub.autoAck.Store(false)
	sub.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	subHeld := connect(t, ts.addr) // this client's instance must go when it is dropped
	subHeld.autoAck.Store(false)
	subHeld.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	subHeld.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("other", "10.0.0.9", 9))

	pub := connect(t, ts.addr)
	pub.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 80))
	waitFor(t, "the unacked subscribers to be dropped", func() bool { return sub.streamEnded() && subHeld.streamEnded() })
	msgs := sub.messages(TypeNotifySubscriberRequest)
	if len(msgs) != 3 {
		t.Fatalf("%d sends; want 1 + 2 retries", len(msgs))
	}
	for _, m := range msgs {
		if m.requestID() != msgs[0].requestID() {
			t.Fatalf("resend changed the request id: %s vs %s", m.requestID(), msgs[0].requestID())
		}
	}
	other := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "other"}
	waitFor(t, "the dropped client's instance to go", func() bool { return len(ts.live(other)) == 0 })
	if ts.metric("push_failures_total") < 2 || ts.metric("push_retries_total") < 4 {
		t.Fatalf("failures %v retries %v", ts.metric("push_failures_total"), ts.metric("push_retries_total"))
	}
	// A dropped client's requests get 301, so it reconnects.
	sub.mustFail(TypeHealthCheckRequest, `{}`, CodeUnregistered)
	pub.mustOK(TypeHealthCheckRequest, TypeHealthCheckResponse, `{}`)
}

// TestIdleProbe: idle connections get ClientDetectionRequest; one that
// answers stays, one that does not is dropped with its instances.
func TestIdleProbe(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.IdleTimeout, c.ProbeInterval, c.ProbeTimeout = 50*time.Millisecond, 10*time.Millisecond, time.Second
	})
	live := connect(t, ts.addr)
	dead := connect(t, ts.addr)
	dead.autoAck.Store(false)
	dead.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 80))
	waitFor(t, "the silent client to be dropped", dead.streamEnded)
	waitFor(t, "its instance to go", func() bool { return len(ts.live(demoKey)) == 0 })
	if len(dead.messages(TypeClientDetectionRequest)) == 0 {
		t.Fatal("no ClientDetectionRequest before the drop")
	}
	waitFor(t, "two probes answered", func() bool { return len(live.messages(TypeClientDetectionRequest)) >= 2 })
	if live.streamEnded() || !ts.connAlive(live.connID) {
		t.Fatal("a client answering probes was dropped")
	}
}

// TestConnectReset: an operator reset asks the client to move, and closes
// the connection if the client has not left after ResetTimeout.
func TestConnectReset(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.ResetTimeout, c.ProbeInterval = 200*time.Millisecond, 20*time.Millisecond })
	a := connect(t, ts.addr)
	b := connect(t, ts.addr)
	a.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 80))
	if n := ts.Reset(1, a.connID, "10.1.1.1", "8848"); n != 1 {
		t.Fatalf("Reset = %d", n)
	}
	waitFor(t, "the reset connection to close", a.streamEnded)
	m := a.messages(TypeConnectResetRequest)
	if len(m) != 1 || m[0].Body["serverIp"] != "10.1.1.1" || m[0].Body["serverPort"] != "8848" || m[0].requestID() == "" {
		t.Fatalf("reset requests = %v", m)
	}
	waitFor(t, "its instance to go", func() bool { return len(ts.live(demoKey)) == 0 })
	if b.streamEnded() || !ts.connAlive(b.connID) {
		t.Fatal("reset touched another connection")
	}
	// Also a client that does not answer.
	b.autoAck.Store(false)
	if n := ts.Reset(0, "", "", ""); n != 1 {
		t.Fatalf("Reset(all) = %d", n)
	}
	waitFor(t, "the silent client to be closed", b.streamEnded)
}

// TestClustersFilter: a subscription with a cluster filter sees only those
// clusters, and its ServiceInfo echoes the filter as Nacos does.
func TestClustersFilter(t *testing.T) {
	ts := newTestServer(t)
	c := connect(t, ts.addr)
	body := `{"requestId":"","namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":"registerInstance",` +
		`"instance":{"ip":"10.0.0.%d","port":80,"clusterName":%q}}`
	c.mustOK(TypeInstanceRequest, TypeInstanceResponse, fmt.Sprintf(body, 1, "a"))
	d := connect(t, ts.addr)
	d.mustOK(TypeInstanceRequest, TypeInstanceResponse, fmt.Sprintf(body, 2, "b"))
	m := c.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "a", true))
	si := m["serviceInfo"].(map[string]any)
	if si["clusters"] != "a" || len(hostsOf(m)) != 1 || hostsOf(m)[0].(map[string]any)["clusterName"] != "a" {
		t.Fatalf("filtered subscribe = %v", si)
	}
	q := c.mustOK(TypeServiceQueryRequest, TypeQueryServiceResponse,
		`{"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","cluster":"b","healthyOnly":false}`)
	if q["serviceInfo"].(map[string]any)["clusters"] != "b" || len(hostsOf(q)) != 1 {
		t.Fatalf("filtered query = %v", q)
	}
	// Absent fields took the Java defaults.
	h := hostsOf(q)[0].(map[string]any)
	if h["weight"] != 1.0 || h["healthy"] != true || h["enabled"] != true || h["ephemeral"] != true {
		t.Fatalf("defaults not applied: %v", h)
	}
}

// TestLastRefTimeIncreases: pushes for one service carry strictly greater
// lastRefTimes, also across the service becoming empty and coming back.
func TestLastRefTimeIncreases(t *testing.T) {
	ts := newTestServer(t)
	sub := connect(t, ts.addr)
	sub.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	pub := connect(t, ts.addr)
	dereg := `{"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":"deregisterInstance",` +
		`"instance":{"ip":"10.0.0.1","port":80,"weight":0,"enabled":false,"metadata":null}}`
	for i := range 3 {
		pub.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 80))
		waitFor(t, "push", func() bool { return len(sub.messages(TypeNotifySubscriberRequest)) >= 2*i+1 })
		pub.mustOK(TypeInstanceRequest, TypeInstanceResponse, dereg)
		waitFor(t, "push", func() bool { return len(sub.messages(TypeNotifySubscriberRequest)) >= 2*i+2 })
	}
	var last float64
	for _, m := range sub.messages(TypeNotifySubscriberRequest) {
		ref := m.Body["serviceInfo"].(map[string]any)["lastRefTime"].(float64)
		if ref <= last {
			t.Fatalf("lastRefTime %v after %v", ref, last)
		}
		last = ref
	}
}

// TestBatchAndPersistent covers BatchInstanceRequest (replace, deregister
// part) and PersistentInstanceRequest (not connection-held).
func TestBatchAndPersistent(t *testing.T) {
	ts := newTestServer(t)
	c := connect(t, ts.addr)
	batch := func(typ string, ips ...string) string {
		s := `{"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":%q,"instances":[`
		s = fmt.Sprintf(s, typ)
		for i, ip := range ips {
			if i > 0 {
				s += ","
			}
			s += fmt.Sprintf(`{"ip":%q,"port":80,"weight":1,"healthy":true,"enabled":true,"ephemeral":true}`, ip)
		}
		return s + "]}"
	}
	m := c.mustOK(TypeBatchInstanceRequest, TypeBatchInstanceResponse, batch("batchRegisterInstance", "10.0.0.1", "10.0.0.2", "10.0.0.2"))
	if m["type"] != "batchRegisterInstance" || len(ts.live(demoKey)) != 2 {
		t.Fatalf("batch register: %v, store %v", m, ts.live(demoKey))
	}
	c.mustOK(TypeBatchInstanceRequest, TypeBatchInstanceResponse, batch("batchRegisterInstance", "10.0.0.3", "10.0.0.2"))
	if got := ts.live(demoKey); len(got) != 2 || got[model.InstanceKey{IP: "10.0.0.1", Port: 80, Cluster: "DEFAULT"}] != "" {
		t.Fatalf("batch did not replace: %v", got)
	}
	c.mustOK(TypeBatchInstanceRequest, TypeBatchInstanceResponse, batch("batchDeregisterInstance", "10.0.0.3"))
	if got := ts.live(demoKey); len(got) != 1 {
		t.Fatalf("batch deregister left %v", got)
	}
	// A single register replaces the batch: one instance per service.
	c.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.4", 80))
	if got := ts.live(demoKey); len(got) != 1 {
		t.Fatalf("register after batch left %v", got)
	}

	p := `{"namespace":"public","serviceName":"db","groupName":"DEFAULT_GROUP","type":%q,"instance":{"ip":"10.0.1.1","port":3306,"ephemeral":false}}`
	c.mustOK(TypePersistentInstanceRequest, TypeInstanceResponse, fmt.Sprintf(p, "registerInstance"))
	db := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "db"}
	if recs, _ := ts.st.Records(db, nil); len(recs) != 0 {
		t.Fatalf("persistent register stored ephemeral records %+v", recs)
	}
	if in := ts.st.PersistentInstance(db, model.InstanceKey{IP: "10.0.1.1", Port: 3306, Cluster: "DEFAULT"}); in == nil || in.Ephemeral {
		t.Fatalf("persistent register stored %+v", in)
	}
	_ = c.cc.Close()
	waitFor(t, "the ephemeral instance to go", func() bool { return len(ts.live(demoKey)) == 0 })
	if len(ts.live(db)) != 1 {
		t.Fatal("a persistent instance went with the connection")
	}
	c2 := connect(t, ts.addr)
	c2.mustOK(TypePersistentInstanceRequest, TypeInstanceResponse, fmt.Sprintf(p, "deregisterInstance"))
	if len(ts.live(db)) != 0 {
		t.Fatal("persistent deregister did not remove it")
	}
}

// TestServiceList pages bare names 1-based.
func TestServiceList(t *testing.T) {
	ts := newTestServer(t)
	c := connect(t, ts.addr)
	for i := range 5 {
		d := connect(t, ts.addr)
		d.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody(fmt.Sprintf("svc%d", i), "10.0.0.1", 80))
	}
	list := func(no, size int) (float64, []any) {
		m := c.mustOK(TypeServiceListRequest, TypeServiceListResponse,
			fmt.Sprintf(`{"namespace":"","serviceName":"","groupName":"","pageNo":%d,"pageSize":%d,"selector":""}`, no, size))
		names, ok := m["serviceNames"].([]any)
		if !ok {
			t.Fatalf("serviceNames = %v", m["serviceNames"])
		}
		return m["count"].(float64), names
	}
	if n, names := list(2, 2); n != 5 || fmt.Sprint(names) != "[svc2 svc3]" {
		t.Fatalf("page 2 = %v %v", n, names)
	}
	if _, names := list(0, 2); fmt.Sprint(names) != "[svc0 svc1]" {
		t.Fatalf("page 0 = %v", names)
	}
	if _, names := list(9, 2); len(names) != 0 {
		t.Fatalf("page 9 = %v", names)
	}
	if _, names := list(1<<40, 1<<40); len(names) != 0 {
		t.Fatalf("huge page = %v", names)
	}
}

// TestDisconnectRacesRegister: registers in flight while the connection
// closes never leave an instance behind.
func TestDisconnectRacesRegister(t *testing.T) {
	ts := newTestServer(t)
	for round := range 5 {
		c := connect(t, ts.addr)
		var wg sync.WaitGroup
		var done atomic.Int64
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					svc := fmt.Sprintf("race%d-%d", round, g)
					if _, err := c.rc.Request(t.Context(), EncodePayload(TypeInstanceRequest, []byte(registerBody(svc, "10.0.0.1", 1+i)))); err == nil {
						done.Add(1)
					}
				}
			})
		}
		// Close after a number of writes that varies by round.
		waitFor(t, "some registers", func() bool { return done.Load() >= int64(round*40) })
		_ = c.cc.Close()
		wg.Wait()
		waitFor(t, "the connection to go", func() bool { return ts.Clients() == 0 })
		for g := range 4 {
			k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("race%d-%d", round, g)}
			if got := ts.live(k); len(got) != 0 {
				t.Fatalf("round %d: %v left behind", round, got)
			}
		}
	}
}

// TestAcceptedSockets: the socket of a transport is forgotten when the
// transport ends, and one whose transport never started (no HTTP/2
// preface) is forgotten once it is old.
func TestAcceptedSockets(t *testing.T) {
	ts := newTestServer(t)
	socks := func() (tagged, untagged int) {
		ts.connMu.RLock()
		defer ts.connMu.RUnlock()
		for _, a := range ts.nets {
			if a.tagged {
				tagged++
			} else {
				untagged++
			}
		}
		return
	}
	c := connect(t, ts.addr)
	if tg, _ := socks(); tg != 1 {
		t.Fatalf("%d tagged sockets with one client, want 1", tg)
	}
	_ = c.cc.Close()
	waitFor(t, "the closed transport's socket to be forgotten", func() bool { tg, _ := socks(); return tg == 0 })

	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = raw.Write([]byte("not http/2\r\n\r\n"))
	waitFor(t, "the garbage socket to be accepted", func() bool { _, u := socks(); return u == 1 })
	ts.forgetUntagged(time.Now())
	if _, u := socks(); u != 1 {
		t.Fatal("a fresh untagged socket was forgotten")
	}
	ts.forgetUntagged(time.Now().Add(untaggedMaxAge + time.Second))
	if _, u := socks(); u != 0 {
		t.Fatalf("%d untagged sockets after their age limit", u)
	}
	_ = raw.Close()
}
