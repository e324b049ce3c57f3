package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/distro-registry/distro/api/nacospb"
	"github.com/distro-registry/distro/internal/jsonscan"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
	"github.com/distro-registry/distro/internal/nacos/render"
)

// DefaultGRPCPortOffset is where Nacos 2 servers (and distrod) serve the
// client gRPC API: the HTTP port + 1000.
const DefaultGRPCPortOffset = 1000

// GRPCTargets maps HTTP targets (host:port) to their gRPC addresses,
// port + offset.
func GRPCTargets(targets []string, offset int) ([]string, error) {
	out := make([]string, 0, len(targets))
	for _, t := range targets {
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			return nil, err
		}
		p, err := strconv.Atoi(port)
		if err != nil || p+offset < 1 || p+offset > 65535 {
			return nil, errors.New("target " + t + ": port + gRPC port offset is not a port")
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(p+offset)))
	}
	return out, nil
}

// GRPCOptions tunes the v2 gRPC driver.
type GRPCOptions struct {
	// Conns is the number of client connections set up per target before
	// the first request (default 8). Requests go round-robin over them;
	// more are opened when registrations need them (see GRPCDriver).
	Conns int
	// Timeout bounds every request and the setup of a connection (default 5 s).
	Timeout time.Duration
	// MaxServicesPerConn bounds the services one connection registers
	// instances in (the server's per-connection limit, default 10000).
	MaxServicesPerConn int
	// CaptureDir, when set, receives the first successful answer to every
	// request type (see CaptureMethodGRPC); the gRPC ceiling replays them.
	CaptureDir string
}

// GRPCDriver is the Nacos v2 gRPC driver. Each connection does what a
// Nacos 2 client does on start: ServerCheckRequest (unary), opens the
// bi-stream, sends ConnectionSetupRequest and waits until the server
// accepts requests on it (HealthCheckRequest answered). Requests are JSON
// Payloads on /Request/request; pushes and probes on the stream are
// acked.
//
// v2 instances are held by the connection that registered them (they are
// always ephemeral: InstanceRequest refuses persistent ones, whatever
// Instance.Ephemeral says) and a connection holds one instance per
// service. The driver therefore gives each registered instance a
// connection slot: the first connection of the target that holds no
// instance of the service yet (and fewer than MaxServicesPerConn
// services), opening a new connection when none qualifies. The instance is
// re-registered and deregistered on that same connection. A pool of k
// instances per service thus needs k connections; scenarios that register
// an unbounded number of new instances (register) use a service per
// instance over this driver (ServicePerInstance). Closing the driver
// closes the connections, which removes whatever they still hold.
type GRPCDriver struct {
	targets []string
	opts    GRPCOptions
	nodes   []*grpcNode
	reqID   atomic.Uint64

	pushes, acked, bad atomic.Int64

	capMu    sync.Mutex
	captured map[string]bool
}

var _ Watcher = (*GRPCDriver)(nil)

// NewGRPCDriver returns a driver for gRPC targets (host:port of the gRPC
// listeners). Connections are set up on first use.
func NewGRPCDriver(targets []string, opts GRPCOptions) *GRPCDriver {
	if opts.Conns <= 0 {
		opts.Conns = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxServicesPerConn <= 0 {
		opts.MaxServicesPerConn = 10000
	}
	d := &GRPCDriver{targets: targets, opts: opts}
	for _, t := range targets {
		d.nodes = append(d.nodes, &grpcNode{d: d, addr: t, held: map[holdKey]*grpcConn{}})
	}
	return d
}

// Name implements Driver.
func (d *GRPCDriver) Name() string { return "grpc-v2" }

// Nodes implements Driver.
func (d *GRPCDriver) Nodes() int { return len(d.nodes) }

// ServicePerInstance reports that registrations of many instances into few
// services do not map onto v2 connections (one instance per service each).
func (d *GRPCDriver) ServicePerInstance() bool { return true }

// PushStats returns the pushes (NotifySubscriberRequest) received, acked
// and undecodable.
func (d *GRPCDriver) PushStats() PushStats {
	return PushStats{Packets: d.pushes.Load(), Acked: d.acked.Load(), Bad: d.bad.Load()}
}

// Close implements Driver: closes every connection.
func (d *GRPCDriver) Close() error {
	for _, n := range d.nodes {
		n.mu.Lock()
		conns := n.conns
		n.conns, n.held, n.closed = nil, map[holdKey]*grpcConn{}, true
		n.mu.Unlock()
		for _, c := range conns {
			c.close()
		}
	}
	return nil
}

// holdKey names an instance within the driver: its service and address.
type holdKey struct {
	service string
	ep      Endpoint
}

type grpcNode struct {
	d    *GRPCDriver
	addr string
	rr   atomic.Uint64

	mu     sync.Mutex
	conns  []*grpcConn
	held   map[holdKey]*grpcConn
	closed bool
}

// grpcConn is one set-up client connection.
type grpcConn struct {
	d      *GRPCDriver
	cc     *grpc.ClientConn
	rc     nacospb.RequestClient
	stream grpc.BidiStreamingClient[nacospb.Payload, nacospb.Payload]
	cancel context.CancelFunc
	done   chan struct{}
	dead   atomic.Bool

	sendMu sync.Mutex

	// services it holds an instance of (guarded by grpcNode.mu).
	services map[string]struct{}

	subMu sync.Mutex
	subs  map[string]map[*grpcSub]struct{} // grouped service → subscribers
}

var errDriverClosed = errors.New("driver closed")

// ready makes sure the node has its initial connections. Called with n.mu held.
func (n *grpcNode) ready(ctx context.Context) error {
	if n.closed {
		return errDriverClosed
	}
	if len(n.conns) > 0 {
		return nil
	}
	conns := make([]*grpcConn, n.d.opts.Conns)
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { conns[i], errs[i] = n.d.dial(ctx, n.addr) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
		return err
	}
	n.conns = conns
	return nil
}

// any returns a connection for a request that needs no slot.
func (n *grpcNode) any(ctx context.Context) (*grpcConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ready(ctx); err != nil {
		return nil, err
	}
	return n.conns[n.rr.Add(1)%uint64(len(n.conns))], nil
}

// slot returns the connection that holds (or is to hold) the instance k,
// reserving it; fresh reports a new reservation.
func (n *grpcNode) slot(ctx context.Context, k holdKey) (c *grpcConn, fresh bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ready(ctx); err != nil {
		return nil, false, err
	}
	if c := n.held[k]; c != nil {
		return c, false, nil
	}
	start := n.rr.Add(1)
	for i := range n.conns {
		c := n.conns[(start+uint64(i))%uint64(len(n.conns))]
		if _, taken := c.services[k.service]; !taken && !c.dead.Load() && len(c.services) < n.d.opts.MaxServicesPerConn {
			c.services[k.service] = struct{}{}
			n.held[k] = c
			return c, true, nil
		}
	}
	c, err = n.d.dial(ctx, n.addr)
	if err != nil {
		return nil, false, err
	}
	n.conns = append(n.conns, c)
	c.services[k.service] = struct{}{}
	n.held[k] = c
	return c, true, nil
}

// release forgets that c holds k.
func (n *grpcNode) release(k holdKey, c *grpcConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held[k] == c {
		delete(n.held, k)
		delete(c.services, k.service)
	}
}

func (n *grpcNode) holder(k holdKey) *grpcConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.held[k]
}

// dial opens and sets up one connection.
func (d *GRPCDriver) dial(ctx context.Context, addr string) (*grpcConn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancel(context.Background())
	c := &grpcConn{d: d, cc: cc, rc: nacospb.NewRequestClient(cc), cancel: scancel, done: make(chan struct{}),
		services: map[string]struct{}{}, subs: map[string]map[*grpcSub]struct{}{}}
	fail := func(err error) (*grpcConn, error) {
		scancel()
		_ = cc.Close()
		if c.stream != nil {
			<-c.done
		}
		return nil, err
	}
	typ, _, err := c.call(ctx, grpcapi.TypeServerCheckRequest, []byte(`{"requestId":"","module":"internal","headers":{}}`))
	if err != nil {
		return fail(err)
	}
	if typ != grpcapi.TypeServerCheckResponse {
		return fail(errors.New(addr + ": ServerCheckRequest answered " + typ))
	}
	if c.stream, err = nacospb.NewBiRequestStreamClient(cc).RequestBiStream(sctx); err != nil {
		return fail(err)
	}
	go c.read()
	if err := c.send(grpcapi.TypeConnectionSetupRequest, []byte(`{"requestId":"","module":"internal","clientVersion":"distrobench",`+
		`"tenant":"","labels":{"module":"naming","source":"sdk"},"clientAbilities":{},"abilityTable":{}}`)); err != nil {
		return fail(err)
	}
	// The server sends nothing back on setup: the connection is ready once
	// a request is no longer refused as unregistered (301).
	for {
		typ, _, err := c.call(ctx, grpcapi.TypeHealthCheckRequest, []byte(`{"requestId":"","module":"internal"}`))
		if err != nil {
			return fail(err)
		}
		if typ == grpcapi.TypeHealthCheckResponse {
			return c, nil
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return fail(errors.New(addr + ": connection setup not accepted"))
		}
	}
}

func (c *grpcConn) close() {
	c.cancel()
	_ = c.cc.Close()
	if c.stream != nil {
		<-c.done
	}
}

func (c *grpcConn) send(typ string, body []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.stream.Send(grpcapi.EncodePayload(typ, body))
}

// call sends a unary request and returns the answer's type and body.
func (c *grpcConn) call(ctx context.Context, typ string, body []byte) (string, []byte, error) {
	p, err := c.rc.Request(ctx, grpcapi.EncodePayload(typ, body))
	if err != nil {
		return "", nil, err
	}
	f, err := grpcapi.DecodePayload(p, 0)
	if err != nil {
		return "", nil, err
	}
	c.d.captureGRPC(typ, f.Type, f.Body)
	return f.Type, f.Body, nil
}

// read serves the stream: acks pushes (delivering them to subscribers) and
// answers probes, until the stream ends.
func (c *grpcConn) read() {
	defer close(c.done)
	defer c.dead.Store(true)
	for {
		p, err := c.stream.Recv()
		if err != nil {
			return
		}
		at := time.Now()
		f, err := grpcapi.DecodePayload(p, 0)
		if err != nil {
			c.d.bad.Add(1)
			continue
		}
		switch f.Type {
		case grpcapi.TypeNotifySubscriberRequest:
			c.d.pushes.Add(1)
			var nr notifyRequest
			if err := nr.decode(f.Body); err != nil {
				c.d.bad.Add(1)
				continue
			}
			if c.send(grpcapi.TypeNotifySubscriberResponse, ackBody(nr.RequestID)) == nil {
				c.d.acked.Add(1)
			}
			c.deliver(nr.grouped(), Notification{Service: nr.grouped(), Hosts: nr.ServiceInfo.endpoints(), At: at, Bytes: len(f.Body)})
		case grpcapi.TypeClientDetectionRequest:
			_ = c.send(grpcapi.TypeClientDetectionResponse, ackBody(requestIDOf(f.Body)))
		case grpcapi.TypeConnectResetRequest:
			// Acknowledged, not followed: a benchmark keeps its connections.
			_ = c.send(grpcapi.TypeConnectResetResponse, ackBody(requestIDOf(f.Body)))
		}
	}
}

func (c *grpcConn) deliver(service string, n Notification) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for s := range c.subs[service] {
		select {
		case s.ch <- n:
		default: // a slow reader loses notifications, never blocks the stream
		}
	}
}

// ackBody is a success response to a server request.
func ackBody(requestID string) []byte {
	b := make([]byte, 0, 80+len(requestID))
	b = append(b, `{"resultCode":200,"errorCode":0,"success":true,"message":"","requestId":`...)
	return append(render.AppendString(b, requestID), '}')
}

// decode reads the fields of a NotifySubscriberRequest the driver uses
// (requestId, the service, the hosts' ip and port), skipping the rest: a
// fan-out delivers a push to many connections of this one process, whose
// own decoding cost must stay small next to the server's.
func (n *notifyRequest) decode(body []byte) error {
	d := jsonscan.New(string(body))
	d.BeginObject()
	for {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		switch k {
		case "requestId":
			n.RequestID, _ = d.String()
		case "serviceName":
			n.ServiceName, _ = d.String()
		case "groupName":
			n.GroupName, _ = d.String()
		case "serviceInfo":
			n.ServiceInfo.decode(&d)
		default:
			d.Skip()
		}
	}
	return d.End()
}

func (si *serviceInfo) decode(d *jsonscan.Decoder) {
	if d.Peek() == jsonscan.Null {
		d.Null()
		return
	}
	d.BeginObject()
	for {
		k, ok := d.NextKey()
		if !ok {
			return
		}
		switch k {
		case "name":
			si.Name, _ = d.String()
		case "groupName":
			si.GroupName, _ = d.String()
		case "hosts":
			if d.Peek() != jsonscan.Array {
				d.Skip()
				continue
			}
			d.BeginArray()
			for d.NextElem() {
				var ip string
				var port int
				d.BeginObject()
				for {
					hk, ok := d.NextKey()
					if !ok {
						break
					}
					switch hk {
					case "ip":
						ip, _ = d.String()
					case "port":
						n, _ := d.Number()
						port, _ = strconv.Atoi(n)
					default:
						d.Skip()
					}
				}
				si.Hosts = append(si.Hosts, struct {
					IP   string `json:"ip"`
					Port int    `json:"port"`
				}{ip, port})
			}
		default:
			d.Skip()
		}
	}
}

func requestIDOf(body []byte) string {
	var r struct {
		RequestID string `json:"requestId"`
	}
	_ = json.Unmarshal(body, &r)
	return r.RequestID
}

// serviceInfo is the part of a v2 ServiceInfo the driver decodes.
type serviceInfo struct {
	Name      string `json:"name"`
	GroupName string `json:"groupName"`
	Hosts     []struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	} `json:"hosts"`
}

func (s *serviceInfo) endpoints() []Endpoint {
	out := make([]Endpoint, 0, len(s.Hosts))
	for _, h := range s.Hosts {
		out = append(out, Endpoint{IP: h.IP, Port: h.Port})
	}
	return out
}

type notifyRequest struct {
	RequestID   string      `json:"requestId"`
	ServiceName string      `json:"serviceName"`
	GroupName   string      `json:"groupName"`
	ServiceInfo serviceInfo `json:"serviceInfo"`
}

func (n *notifyRequest) grouped() string {
	if strings.Contains(n.ServiceName, "@@") {
		return n.ServiceName
	}
	g := n.GroupName
	if g == "" {
		g = DefaultGroup
	}
	return g + "@@" + n.ServiceName
}

// wireResult is the common part of every response.
type wireResult struct {
	ResultCode  int          `json:"resultCode"`
	ErrorCode   int          `json:"errorCode"`
	ServiceInfo *serviceInfo `json:"serviceInfo"`
}

// grpcKind names a failed RPC.
func grpcKind(err error) string {
	if errors.Is(err, errDriverClosed) {
		return "closed"
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.DeadlineExceeded:
			return "timeout"
		case codes.Canceled:
			return "canceled"
		case codes.Unavailable:
			return "unavailable"
		}
		return "grpc_" + strings.ToLower(st.Code().String())
	}
	return TransportKind(err)
}

func (d *GRPCDriver) nextID() string { return strconv.FormatUint(d.reqID.Add(1), 10) }

// do sends one request on c and classifies the answer; with decode the
// answer's serviceInfo is decoded.
func (d *GRPCDriver) do(ctx context.Context, c *grpcConn, op, typ string, body []byte, decode bool) (Outcome, *serviceInfo) {
	o := Outcome{Op: op}
	if c.dead.Load() {
		return o.Failed("conn_closed"), nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	rtyp, rb, err := c.call(ctx, typ, body)
	if err != nil {
		return o.Failed(grpcKind(err)), nil
	}
	o.Bytes = int64(len(rb))
	var wr wireResult
	if decode || rtyp == grpcapi.TypeErrorResponse {
		if err := json.Unmarshal(rb, &wr); err != nil {
			return o.Failed("bad_json"), nil
		}
	} else {
		wr.ResultCode = 200
	}
	o.Status = wr.ResultCode
	if rtyp == grpcapi.TypeErrorResponse || wr.ResultCode != 200 {
		return o.Failed("v2_" + strconv.Itoa(wr.ErrorCode)), nil
	}
	if decode && wr.ServiceInfo == nil {
		return o.Failed("bad_json"), nil
	}
	return o, wr.ServiceInfo
}

// v2 request bodies.

type v2Instance struct {
	IP          string          `json:"ip"`
	Port        int             `json:"port"`
	Weight      float64         `json:"weight"`
	Healthy     bool            `json:"healthy"`
	Enabled     bool            `json:"enabled"`
	Ephemeral   bool            `json:"ephemeral"`
	ClusterName string          `json:"clusterName"`
	ServiceName string          `json:"serviceName"`
	Metadata    json.RawMessage `json:"metadata"`
}

type v2InstanceRequest struct {
	RequestID   string     `json:"requestId"`
	Module      string     `json:"module"`
	Namespace   string     `json:"namespace"`
	ServiceName string     `json:"serviceName"`
	GroupName   string     `json:"groupName"`
	Type        string     `json:"type"`
	Instance    v2Instance `json:"instance"`
}

type v2ServiceRequest struct {
	RequestID   string `json:"requestId"`
	Module      string `json:"module"`
	Namespace   string `json:"namespace"`
	ServiceName string `json:"serviceName"`
	GroupName   string `json:"groupName"`
	// ServiceQueryRequest
	Cluster     *string `json:"cluster,omitempty"`
	HealthyOnly *bool   `json:"healthyOnly,omitempty"`
	// SubscribeServiceRequest
	Subscribe *bool   `json:"subscribe,omitempty"`
	Clusters  *string `json:"clusters,omitempty"`
}

func (d *GRPCDriver) instanceBody(typ string, in *Instance) []byte {
	md := json.RawMessage(in.Metadata)
	if len(md) == 0 || !json.Valid(md) {
		md = json.RawMessage("{}")
	}
	b, _ := json.Marshal(v2InstanceRequest{RequestID: d.nextID(), Module: "naming", Namespace: "public",
		ServiceName: in.Service, GroupName: DefaultGroup, Type: typ,
		Instance: v2Instance{IP: in.IP, Port: in.Port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true,
			ClusterName: "DEFAULT", ServiceName: in.Grouped(), Metadata: md}})
	return b
}

func (d *GRPCDriver) serviceRequest(service string) v2ServiceRequest {
	return v2ServiceRequest{RequestID: d.nextID(), Module: "naming", Namespace: "public", ServiceName: service, GroupName: DefaultGroup}
}

func (d *GRPCDriver) queryBody(service string) []byte {
	r := d.serviceRequest(service)
	cluster, healthy := "", false
	r.Cluster, r.HealthyOnly = &cluster, &healthy
	b, _ := json.Marshal(r)
	return b
}

func (d *GRPCDriver) subscribeBody(service string, sub bool) []byte {
	r := d.serviceRequest(service)
	clusters := ""
	r.Subscribe, r.Clusters = &sub, &clusters
	b, _ := json.Marshal(r)
	return b
}

// Register implements Driver: InstanceRequest registerInstance on the
// instance's connection slot of node.
func (d *GRPCDriver) Register(ctx context.Context, node int, in *Instance) Outcome {
	k := holdKey{service: in.Service, ep: in.Endpoint()}
	n := d.nodes[node]
	c, fresh, err := n.slot(ctx, k)
	if err != nil {
		return Outcome{Op: "register", Kind: grpcKind(err)}
	}
	o, _ := d.do(ctx, c, "register", grpcapi.TypeInstanceRequest, d.instanceBody("registerInstance", in), false)
	if !o.OK() && fresh {
		n.release(k, c)
	}
	return o
}

// Deregister implements Driver: InstanceRequest deregisterInstance on the
// connection that registered the instance on node, and on any other
// node's connection that holds it too (converge re-registers its
// background pool on random nodes). An instance the driver does not hold
// is deregistered on any connection of node (the server answers success
// and removes nothing: a v2 connection only removes its own instances).
func (d *GRPCDriver) Deregister(ctx context.Context, node int, in *Instance) Outcome {
	k := holdKey{service: in.Service, ep: in.Endpoint()}
	var first Outcome
	done := false
	for i := range d.nodes {
		ni := (node + i) % len(d.nodes)
		n := d.nodes[ni]
		c := n.holder(k)
		if c == nil {
			if ni != node {
				continue
			}
			var err error
			if c, err = n.any(ctx); err != nil {
				first, done = Outcome{Op: "deregister", Kind: grpcKind(err)}, true
				continue
			}
		}
		o, _ := d.do(ctx, c, "deregister", grpcapi.TypeInstanceRequest, d.instanceBody("deregisterInstance", in), false)
		if o.OK() {
			n.release(k, c)
		}
		if !done || first.OK() && !o.OK() {
			first, done = o, true
		}
	}
	return first
}

// Beat implements Driver: v2 has no heartbeats (the connection keeps its
// instances alive), so every beat is unsupported.
func (d *GRPCDriver) Beat(context.Context, int, *Instance) Outcome { return unsupported("beat") }

// Query implements Driver: ServiceQueryRequest, answer not decoded.
func (d *GRPCDriver) Query(ctx context.Context, node int, service string) Outcome {
	c, err := d.nodes[node].any(ctx)
	if err != nil {
		return Outcome{Op: "query", Kind: grpcKind(err)}
	}
	o, _ := d.do(ctx, c, "query", grpcapi.TypeServiceQueryRequest, d.queryBody(service), false)
	return o
}

// Lookup implements Driver: ServiceQueryRequest, hosts decoded.
func (d *GRPCDriver) Lookup(ctx context.Context, node int, service string) (Outcome, []Endpoint) {
	c, err := d.nodes[node].any(ctx)
	if err != nil {
		return Outcome{Op: "lookup", Kind: grpcKind(err)}, nil
	}
	o, si := d.do(ctx, c, "lookup", grpcapi.TypeServiceQueryRequest, d.queryBody(service), true)
	if !o.OK() {
		return o, nil
	}
	return o, si.endpoints()
}

// Watch implements Watcher: SubscribeServiceRequest on one of node's
// connections; the NotifySubscriberRequests that follow on its stream are
// acked and delivered. Closing the subscription unsubscribes.
func (d *GRPCDriver) Watch(ctx context.Context, node int, service string) (Subscription, Outcome) {
	c, err := d.nodes[node].any(ctx)
	if err != nil {
		return nil, Outcome{Op: "subscribe", Kind: grpcKind(err)}
	}
	s, o := d.watchOn(ctx, c, service)
	if !o.OK() {
		return nil, o
	}
	return s, o
}

func (d *GRPCDriver) watchOn(ctx context.Context, c *grpcConn, service string) (*grpcSub, Outcome) {
	s := &grpcSub{c: c, service: service, grouped: DefaultGroup + "@@" + service, ch: make(chan Notification, 16)}
	c.subMu.Lock()
	m := c.subs[s.grouped]
	if m == nil {
		m = map[*grpcSub]struct{}{}
		c.subs[s.grouped] = m
	}
	m[s] = struct{}{}
	c.subMu.Unlock()
	o, _ := d.do(ctx, c, "subscribe", grpcapi.TypeSubscribeServiceRequest, d.subscribeBody(service, true), false)
	if !o.OK() {
		s.Close()
		return nil, o
	}
	return s, o
}

type grpcSub struct {
	c                *grpcConn
	service, grouped string
	ch               chan Notification
	once             sync.Once
}

func (s *grpcSub) C() <-chan Notification { return s.ch }

// Close stops delivery and unsubscribes the connection when it was the
// service's last subscription on it.
func (s *grpcSub) Close() {
	s.once.Do(func() {
		c := s.c
		c.subMu.Lock()
		delete(c.subs[s.grouped], s)
		last := len(c.subs[s.grouped]) == 0
		if last {
			delete(c.subs, s.grouped)
		}
		c.subMu.Unlock()
		if last && !c.dead.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), c.d.opts.Timeout)
			defer cancel()
			_, _, _ = c.call(ctx, grpcapi.TypeSubscribeServiceRequest, c.d.subscribeBody(s.service, false))
		}
	})
}

// Subscribe implements Subscriber: SubscribeServiceRequest (subscribe
// true) on one of node's connections, answer not decoded. The server keeps
// the subscription until the connection closes.
func (d *GRPCDriver) Subscribe(ctx context.Context, node int, service string) Outcome {
	c, err := d.nodes[node].any(ctx)
	if err != nil {
		return Outcome{Op: "subscribe", Kind: grpcKind(err)}
	}
	o, _ := d.do(ctx, c, "subscribe", grpcapi.TypeSubscribeServiceRequest, d.subscribeBody(service, true), false)
	return o
}

// WatchOwnConn implements OwnConnWatcher: Watch on a connection set up
// for this subscription alone, closed with it.
func (d *GRPCDriver) WatchOwnConn(ctx context.Context, node int, service string) (Subscription, Outcome) {
	c, err := d.dial(ctx, d.nodes[node].addr)
	if err != nil {
		return nil, Outcome{Op: "subscribe", Kind: grpcKind(err)}
	}
	sub, o := d.watchOn(ctx, c, service)
	if !o.OK() {
		c.close()
		return nil, o
	}
	return &ownConnSub{grpcSub: sub, conn: c}, o
}

// ownConnSub closes its connection with the subscription.
type ownConnSub struct {
	*grpcSub
	conn *grpcConn
	once sync.Once
}

func (s *ownConnSub) Close() { s.once.Do(func() { s.conn.close() }) }
