package grpcapi

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// Connection states. A connection moves new → registered → closed, or new →
// closed, never back.
const (
	stateNew int32 = iota
	stateRegistered
	stateClosed
)

// Bounds on what ConnectionSetupRequest may carry.
const (
	maxLabels     = 64
	maxLabelBytes = 4096
	maxVersionLen = 256
)

// maxClustersLen bounds a cluster filter (subscriptions keep it).
const maxClustersLen = 4096

// conn is one client transport connection and, once set up, the Nacos
// connection (client) it carries.
type conn struct {
	id       string
	remote   string
	remoteIP string
	created  time.Time
	nc       net.Conn // nil if the socket is not tracked
	// active is when the client last sent anything (Server.since units).
	active atomic.Int64
	state  atomic.Int32

	// opMu serialises the connection's writes with its teardown, so that no
	// instance is registered for a connection after its instances were
	// dropped.
	opMu     sync.Mutex
	services smallMap[model.ServiceKey, struct{}]

	// Guarded by Server.mu.
	info     connInfo
	out      *outbox
	subs     smallMap[subKey, *subscription]
	pending  smallMap[string, *subscription] // push request id → subscription
	probeID  string
	probeDue time.Time
	resetID  string
	resetDue time.Time
}

// connInfo is what the client told in ConnectionSetupRequest.
type connInfo struct {
	clientVersion string
	clientIP      string
	tenant        string
	labels        map[string]string
}

func (c *conn) touch(now int64) { c.active.Store(now) }

// closeNet closes the client's socket, which ends the transport (and so
// every stream on it); the client notices and reconnects.
func (c *conn) closeNet() {
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

// openConn records a new transport. Its id has the Nacos form
// <millis>_<remoteIp>_<remotePort>.
func (s *Server) openConn(remote net.Addr) *conn {
	now := s.clk.Now()
	c := &conn{created: now}
	c.touch(s.since(now))
	ip, port := "", 0
	if remote != nil {
		c.remote = remote.String()
		if ap, err := netip.ParseAddrPort(c.remote); err == nil {
			ip, port = ap.Addr().Unmap().String(), int(ap.Port())
		} else if h, p, err := net.SplitHostPort(c.remote); err == nil {
			ip = h
			port, _ = strconv.Atoi(p)
		}
	}
	c.remoteIP = ip
	ms := now.UnixMilli()
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for i := 0; i < 1000; i++ {
		c.id = strconv.FormatInt(ms, 10) + "_" + ip + "_" + strconv.Itoa(port)
		if _, taken := s.conns[c.id]; !taken {
			break
		}
		ms++
	}
	if a := s.nets[c.remote]; a != nil {
		c.nc, a.tagged = a.nc, true
	}
	s.conns[c.id] = c
	return c
}

// closeConn handles the end of a transport.
func (s *Server) closeConn(c *conn) {
	s.teardown(c, "transport closed")
	s.connMu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	if a := s.nets[c.remote]; a != nil && a.nc == c.nc {
		delete(s.nets, c.remote)
	}
	s.connMu.Unlock()
}

// connAlive reports whether connection id is open and set up on this node
// (registry.Local uses it to refute peers' lease expiries).
func (s *Server) connAlive(id string) bool {
	s.connMu.RLock()
	c := s.conns[id]
	s.connMu.RUnlock()
	return c != nil && c.state.Load() == stateRegistered
}

// teardown unregisters c: its subscriptions and pending pushes go, and
// every instance it registered is removed (subscribers of those services
// are pushed the change). It reports whether it did anything (the first
// call does).
func (s *Server) teardown(c *conn, reason string) bool {
	old := c.state.Swap(stateClosed)
	if old == stateClosed {
		return false
	}
	if old == stateRegistered {
		s.registered.Add(-1)
	}
	// Wait for a write in flight; later writes see the closed state.
	c.opMu.Lock()
	services := c.services
	c.services = smallMap[model.ServiceKey, struct{}]{}
	c.opMu.Unlock()

	s.mu.Lock()
	for _, sub := range c.subs.all() {
		s.removeSub(sub)
	}
	c.subs = smallMap[subKey, *subscription]{}
	c.pending = smallMap[string, *subscription]{}
	c.probeID, c.resetID = "", ""
	ob := c.out
	s.mu.Unlock()
	if ob != nil {
		ob.close()
	}
	n := 0
	if services.len() > 0 {
		n = s.cfg.Conns.DropConn(c.id, services.keys())
	}
	if old == stateRegistered {
		s.log.Debug("client disconnected", "conn", c.id, "reason", reason, "instances_removed", n)
	}
	return true
}

// drop closes c for reason: it is torn down at once and its transport is
// closed, so the client reconnects (to this node or another).
func (s *Server) drop(c *conn, reason string) {
	if s.teardown(c, reason) {
		s.m.dropped.WithLabelValues(reason).Inc()
		s.log.Info("client connection dropped", "conn", c.id, "reason", reason)
	}
	c.closeNet()
}

// setup registers c on ConnectionSetupRequest.
func (s *Server) setup(c *conn, f Frame) error {
	var req connectionSetupRequest
	if err := decodeBody(f, &req); err != nil {
		return err
	}
	if !s.isReady() {
		// The client's requests get 301 and it reconnects, likely elsewhere.
		return &rpcError{code: CodeServerStarting, msg: "server is starting"}
	}
	if len(req.Labels) > maxLabels || len(req.ClientVersion) > maxVersionLen || len(req.Tenant) > maxVersionLen {
		return invalidf("ConnectionSetupRequest carries too much data")
	}
	size := 0
	for k, v := range req.Labels {
		size += len(k) + len(v)
	}
	if size > maxLabelBytes {
		return invalidf("ConnectionSetupRequest labels are too large")
	}
	ip := c.remoteIP
	if a, err := netip.ParseAddr(f.ClientIP); err == nil {
		ip = a.Unmap().String()
	}
	s.mu.Lock()
	if c.state.Load() == stateClosed {
		s.mu.Unlock()
		return errUnregistered
	}
	c.info = connInfo{clientVersion: req.ClientVersion, clientIP: ip, tenant: req.Tenant, labels: model.ShareMetadata(req.Labels)}
	first := c.state.CompareAndSwap(stateNew, stateRegistered)
	s.mu.Unlock()
	if first {
		s.registered.Add(1)
		s.log.Debug("client connected", "conn", c.id, "version", req.ClientVersion, "client_ip", ip)
	}
	return nil
}

// settle matches a client's answer on the stream to the server request it
// answers (by requestId).
func (s *Server) settle(c *conn, f Frame) error {
	var r wireResponse
	if err := decodeWireResponse(f, &r); err != nil {
		return err
	}
	now := s.clk.Now()
	s.mu.Lock()
	switch f.Type {
	case TypeNotifySubscriberResponse:
		if sub, _ := c.pending.get(r.RequestID); sub != nil && r.ResultCode == 200 {
			s.m.ackTime.Observe(now.Sub(sub.sentAt).Seconds())
			s.unpend(sub)
			s.m.acks.Inc()
		}
	case TypeClientDetectionResponse:
		if c.probeID != "" && c.probeID == r.RequestID && r.ResultCode == 200 {
			c.probeID = ""
		}
	case TypeConnectResetResponse:
		// Nothing to do: a client that moves closes this connection itself
		// once it is connected elsewhere; one that stays (nacos-sdk-go
		// without a redirect only health-checks) is closed at resetDue.
		// Closing at once would race with that health check and make the
		// Go SDK reconnect twice.
	}
	s.mu.Unlock()
	return nil
}

// send queues a server request for c's stream. Caller holds s.mu. It
// reports false when the connection cannot take it (no stream, or its queue
// is full); the caller then drops the connection. m is a *nacospb.Payload
// or an encodedMsg (a push encoded once for all its subscribers).
func (c *conn) send(m any) bool {
	return c.out != nil && c.out.push(m)
}

// outbox is one stream's queue of outgoing messages. A stream needs a
// single sender, and a send can block on a client that stops reading, so
// queued messages are sent by a goroutine of the stream's own; it runs only
// while the queue is not empty (an idle connection has none), and sends
// everything queued meanwhile in one go, which the transport writes in one
// batch.
type outbox struct {
	send func(any) error

	mu      sync.Mutex
	queue   []any
	max     int
	closed  bool
	running bool
	// exited is closed when the sender stops after close (nil if none ran).
	exited chan struct{}
}

func newOutbox(max int, send func(any) error) *outbox {
	return &outbox{max: max, send: send}
}

// push queues m; false if the outbox is closed or full.
func (o *outbox) push(m any) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || len(o.queue) >= o.max {
		return false
	}
	o.queue = append(o.queue, m)
	if !o.running {
		o.running = true
		go o.drain()
	}
	return true
}

// drain sends until the queue is empty, the outbox closes, or a send fails
// (the stream is gone; its teardown follows).
func (o *outbox) drain() {
	var batch []any
	for {
		o.mu.Lock()
		if o.closed || len(o.queue) == 0 {
			o.stop()
			o.mu.Unlock()
			return
		}
		batch, o.queue = o.queue, batch[:0]
		o.mu.Unlock()
		for i, m := range batch {
			if o.isClosed() {
				o.mu.Lock()
				o.stop()
				o.mu.Unlock()
				return
			}
			if err := o.send(m); err != nil {
				o.mu.Lock()
				o.closed, o.queue = true, nil
				o.stop()
				o.mu.Unlock()
				return
			}
			batch[i] = nil
		}
	}
}

// stop marks the sender stopped. Caller holds o.mu.
func (o *outbox) stop() {
	o.running = false
	if o.exited != nil {
		close(o.exited)
		o.exited = nil
	}
}

func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// close stops accepting messages and drops what is queued. It returns a
// channel closed once no send is in progress any more.
func (o *outbox) close() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed, o.queue = true, nil
	if !o.running {
		return closedCh
	}
	if o.exited == nil {
		o.exited = make(chan struct{})
	}
	return o.exited
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
