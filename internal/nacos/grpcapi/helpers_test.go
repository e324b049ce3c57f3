package grpcapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/distro-registry/distro/api/nacospb"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// waitLimit bounds every wait for something that must happen; a passing
// test never waits this long.
const waitLimit = 10 * time.Second

var demoKey = model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// countingConns wraps registry.Local to observe the connection hooks.
type countingConns struct {
	*registry.Local
	sweeps atomic.Int32
}

func (c *countingConns) SweepConns(self string) int {
	c.sweeps.Add(1)
	return c.Local.SweepConns(self)
}

// testServer is a Server on a loopback listener with a real store and
// write path.
type testServer struct {
	*Server
	st    *store.Store
	reg   *prometheus.Registry
	local *registry.Local
	conns *countingConns
	addr  string
}

func newTestServer(t testing.TB, mods ...func(*Config)) *testServer {
	t.Helper()
	log := testLogger(t)
	if _, ok := t.(*testing.B); ok {
		log = slog.New(slog.DiscardHandler)
	}
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, log)
	cc := &countingConns{Local: local}
	reg := prometheus.NewRegistry()
	cfg := Config{Store: st, Writer: raftcptest.Router(t, st, local), Conns: cc, Logger: log, Registerer: reg}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{Server: s, st: st, reg: reg, local: local, conns: cc, addr: ln.Addr().String()}
}

// live returns the present instances of k with their connection ids.
func (ts *testServer) live(k model.ServiceKey) map[model.InstanceKey]string {
	recs, _ := ts.st.Records(k, nil)
	out := map[model.InstanceKey]string{}
	for _, r := range recs {
		if r.Alive() {
			out[r.Key()] = r.Conn
		}
	}
	if v := ts.st.View(k); v != nil {
		for _, in := range v.Instances {
			if !in.Ephemeral {
				out[in.Key()] = "" // persistent: held by no connection
			}
		}
	}
	return out
}

// testClient is a Nacos 2 client built on the generated stubs: unary
// requests, and a stream whose server requests are collected (and answered
// when autoAck is set).
type testClient struct {
	t      testing.TB
	cc     *grpc.ClientConn
	rc     nacospb.RequestClient
	stream nacospb.BiRequestStream_RequestBiStreamClient
	connID string

	autoAck  atomic.Bool
	mu       sync.Mutex
	received []serverMsg
	ended    chan struct{}
	sendMu   sync.Mutex
}

// serverMsg is a request the server sent down the stream.
type serverMsg struct {
	Type string
	Body map[string]any
	Raw  []byte
}

func (m serverMsg) requestID() string { s, _ := m.Body["requestId"].(string); return s }

func dial(t testing.TB, addr string) *testClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{t: t, cc: cc, rc: nacospb.NewRequestClient(cc), ended: make(chan struct{})}
	c.autoAck.Store(true)
	t.Cleanup(func() { _ = cc.Close() })
	return c
}

// connect does what a Nacos client does on start: ServerCheck, open the
// stream, send ConnectionSetupRequest, and wait until the server accepts
// requests.
func connect(t testing.TB, addr string) *testClient {
	t.Helper()
	c := dial(t, addr)
	typ, body := c.call(TypeServerCheckRequest, `{"requestId":"","module":"internal"}`)
	if typ != TypeServerCheckResponse {
		t.Fatalf("ServerCheck answered %s %v", typ, body)
	}
	c.connID = body["connectionId"].(string)
	c.openStream()
	c.send(TypeConnectionSetupRequest, `{"requestId":"","module":"internal","clientVersion":"test","tenant":"",`+
		`"labels":{"module":"naming","source":"sdk"},"clientAbilities":{}}`)
	waitFor(t, "connection setup", func() bool {
		typ, _ := c.call(TypeHealthCheckRequest, `{"requestId":"","module":"internal"}`)
		return typ == TypeHealthCheckResponse
	})
	return c
}

// call sends a unary request and decodes the answer.
func (c *testClient) call(typ, body string) (string, map[string]any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p, err := c.rc.Request(ctx, EncodePayload(typ, []byte(body)))
	if err != nil {
		c.t.Fatalf("%s: %v", typ, err)
	}
	var m map[string]any
	if err := json.Unmarshal(p.GetBody().GetValue(), &m); err != nil {
		c.t.Fatalf("%s answer is not JSON: %v: %s", typ, err, p.GetBody().GetValue())
	}
	return p.GetMetadata().GetType(), m
}

// mustOK calls and fails unless the answer is of type want with success.
func (c *testClient) mustOK(typ, want, body string) map[string]any {
	c.t.Helper()
	got, m := c.call(typ, body)
	if got != want || m["success"] != true || m["resultCode"] != 200.0 {
		c.t.Fatalf("%s answered %s %v; want %s success", typ, got, m, want)
	}
	return m
}

// mustFail calls and fails unless the answer is an ErrorResponse with code.
func (c *testClient) mustFail(typ, body string, code int) map[string]any {
	c.t.Helper()
	got, m := c.call(typ, body)
	if got != TypeErrorResponse || m["errorCode"] != float64(code) || m["success"] != false || m["resultCode"] != 500.0 {
		c.t.Fatalf("%s answered %s %v; want ErrorResponse %d", typ, got, m, code)
	}
	if msg, _ := m["message"].(string); msg == "" {
		c.t.Fatalf("%s: ErrorResponse without a message", typ)
	}
	return m
}

func (c *testClient) openStream() {
	c.t.Helper()
	s, err := nacospb.NewBiRequestStreamClient(c.cc).RequestBiStream(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	c.stream = s
	go func() {
		defer close(c.ended)
		for {
			p, err := s.Recv()
			if err != nil {
				return
			}
			m := serverMsg{Type: p.GetMetadata().GetType(), Raw: p.GetBody().GetValue()}
			_ = json.Unmarshal(m.Raw, &m.Body)
			c.mu.Lock()
			c.received = append(c.received, m)
			c.mu.Unlock()
			if c.autoAck.Load() {
				c.answer(m, 200)
			}
		}
	}()
}

// answer replies to a server request as the SDK does.
func (c *testClient) answer(m serverMsg, code int) {
	resp := map[string]string{
		TypeNotifySubscriberRequest: TypeNotifySubscriberResponse,
		TypeClientDetectionRequest:  TypeClientDetectionResponse,
		TypeConnectResetRequest:     TypeConnectResetResponse,
	}[m.Type]
	if resp == "" {
		return
	}
	c.send(resp, fmt.Sprintf(`{"resultCode":%d,"errorCode":0,"success":%v,"message":"","requestId":%q}`, code, code == 200, m.requestID()))
}

func (c *testClient) send(typ, body string) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.stream.Send(EncodePayload(typ, []byte(body))); err != nil {
		c.t.Logf("stream send %s: %v", typ, err)
	}
}

// messages returns the server requests received so far of type typ.
func (c *testClient) messages(typ string) []serverMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []serverMsg
	for _, m := range c.received {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// waitPush waits for a NotifySubscriberRequest whose host count is n and
// returns it.
func (c *testClient) waitPush(n int) serverMsg {
	c.t.Helper()
	var got serverMsg
	waitFor(c.t, fmt.Sprintf("a push with %d hosts", n), func() bool {
		for _, m := range c.messages(TypeNotifySubscriberRequest) {
			if len(hostsOf(m.Body)) == n {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// hostsOf returns serviceInfo.hosts of a push or response body.
func hostsOf(body map[string]any) []any {
	si, _ := body["serviceInfo"].(map[string]any)
	h, _ := si["hosts"].([]any)
	return h
}

// streamEnded reports whether the server closed the stream.
func (c *testClient) streamEnded() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

func registerBody(svc, ip string, port int) string {
	return fmt.Sprintf(`{"requestId":"","namespace":"public","serviceName":%q,"groupName":"DEFAULT_GROUP","module":"naming",`+
		`"type":"registerInstance","instance":{"instanceId":"","ip":%q,"port":%d,"weight":1,"healthy":true,"enabled":true,`+
		`"ephemeral":true,"clusterName":"","serviceName":"","metadata":{"k":"v"},"instanceHeartBeatInterval":0,`+
		`"ipDeleteTimeout":0,"instanceHeartBeatTimeOut":0}}`, svc, ip, port)
}

func subscribeBody(svc, clusters string, sub bool) string {
	return fmt.Sprintf(`{"requestId":"","namespace":"public","serviceName":%q,"groupName":"DEFAULT_GROUP","module":"naming",`+
		`"subscribe":%v,"clusters":%q}`, svc, sub, clusters)
}

// metric reads the counter or gauge distro_grpc_<name> whose labels
// include the given name/value pairs (0 if there is none).
func (ts *testServer) metric(name string, labels ...string) float64 {
	mfs, err := ts.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "distro_grpc_"+name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
