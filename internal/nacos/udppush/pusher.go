package udppush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/pushq"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/store"
)

// Config tunes the pusher. Zero values take the defaults.
type Config struct {
	// Listen is the UDP address pushes are sent from and acks arrive on.
	// Default "0.0.0.0:0": any interface, an ephemeral port (clients answer
	// the source address of each push, so the port need not be known).
	Listen string
	// MergeWindow is how long after a service's first change it is pushed;
	// further changes in the window join that push. Default 20ms. Nacos 2.x
	// waits 500ms; a short window keeps push latency low while still
	// collapsing a burst (a client registering several instances) into one
	// packet per subscriber.
	MergeWindow time.Duration
	// AckTimeout is how long a push waits for its ack before it is resent.
	// Default 1s (Nacos: 10s); a loopback or LAN ack takes well under that.
	AckTimeout time.Duration
	// MaxRetries is how many times an unacked push is resent before it is
	// counted as failed. Default 2 (Nacos: 1); negative means never resend.
	MaxRetries int
	// SubscriberTTL drops a subscriber that has not listed the service again
	// for this long. Default 3m (Nacos 2.x). Clients poll every cacheMillis
	// (10s), so only clients that went away reach it.
	SubscriberTTL time.Duration
	// CacheMillis is the cacheMillis written into pushed ServiceInfos.
	// Default render.DefaultCacheMillis. Use the value the HTTP API uses, so
	// that both share one cached rendering per service revision.
	CacheMillis int64
	// MaxSubscribers bounds memory: Subscribe refuses new subscribers beyond
	// it (the clients then simply poll). Default 100000.
	MaxSubscribers int
	// Guard, if set, is asked before a push whether a subscriber may still
	// read the service (auth on); nil pushes to every subscriber.
	Guard Guard
}

// Guard decides whether subscribers may read what they subscribed to.
// Epoch changes whenever such a decision may have changed, so that a
// subscriber is checked again only then.
type Guard interface {
	Epoch() uint64
	MayRead(who string, key model.ServiceKey) bool
}

// Defaults taken by zero Config fields.
const (
	DefaultMergeWindow    = 20 * time.Millisecond
	DefaultAckTimeout     = time.Second
	DefaultMaxRetries     = 2
	DefaultSubscriberTTL  = 3 * time.Minute
	DefaultMaxSubscribers = 100000

	// maxSweepInterval is how often idle subscribers are looked for (more
	// often when SubscriberTTL is short).
	maxSweepInterval = 10 * time.Second
	// maxClustersLen bounds the clusters string kept per subscriber.
	maxClustersLen = 4096
)

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "0.0.0.0:0"
	}
	if c.MergeWindow <= 0 {
		c.MergeWindow = DefaultMergeWindow
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.SubscriberTTL <= 0 {
		c.SubscriberTTL = DefaultSubscriberTTL
	}
	if c.CacheMillis <= 0 {
		c.CacheMillis = render.DefaultCacheMillis
	}
	if c.MaxSubscribers <= 0 {
		c.MaxSubscribers = DefaultMaxSubscribers
	}
	return c
}

// Errors returned by Subscribe. In every case the client still works by
// polling.
var (
	// ErrNotPushCapable: the User-Agent is not a client that listens for
	// UDP pushes (see PushCapable).
	ErrNotPushCapable = errors.New("udppush: client does not accept UDP pushes")
	// ErrBadAddress: the address cannot receive a push (invalid,
	// unspecified, multicast or port 0).
	ErrBadAddress = errors.New("udppush: invalid push address")
	// ErrClustersTooLong: the clusters string exceeds the limit kept per
	// subscriber.
	ErrClustersTooLong = errors.New("udppush: clusters string too long")
	// ErrTooManySubscribers: MaxSubscribers is reached.
	ErrTooManySubscribers = errors.New("udppush: subscriber limit reached")
)

// Stats is a snapshot of the pusher's counters.
type Stats struct {
	// Subscribers and Pending (pushes awaiting an ack) are current sizes.
	Subscribers int
	Pending     int
	// Pushes counts packets sent for a change (one per subscriber per round),
	// Acks the acks that settled one, Retries the resends, and Failed the
	// pushes given up: unacked after every resend, or too large to send.
	Pushes  uint64
	Acks    uint64
	Retries uint64
	Failed  uint64
}

// Pusher sends service changes to v1 UDP subscribers. Create it with New,
// then call Run once.
type Pusher struct {
	cfg        Config
	st         *store.Store
	clk        clock.Clock
	log        *slog.Logger
	conn       *net.UDPConn
	tick       time.Duration
	sweepEvery time.Duration

	// qmu guards the dirty queue and the set of watched keys. The store
	// callback takes only this lock.
	qmu     sync.Mutex
	watched map[model.ServiceKey]struct{}
	queue   *pushq.Queue[model.ServiceKey]

	// mu guards subscribers and pending pushes.
	mu      sync.Mutex
	subs    map[model.ServiceKey]map[string]map[netip.AddrPort]*subscriber
	nsubs   int
	pending map[ackKey]*subscriber
	retryQ  subList // subscribers with a pending push, by ack deadline

	lastID                        atomic.Int64
	pushes, acks, retries, failed atomic.Uint64

	running   atomic.Bool
	closeOnce sync.Once

	// Dispatcher state: used only by the goroutine that calls step.
	nextSweep time.Time
	pk        packer
	dueKeys   []model.ServiceKey
	flat      []*subscriber
	groups    []group
	sends     []send
}

type ackKey struct {
	addr netip.AddrPort
	id   int64
}

// subscriber is one (service, clusters, address) and its pending push, if
// any. key, clusters and addr never change; the rest is guarded by mu.
type subscriber struct {
	key       model.ServiceKey
	clusters  string
	addr      netip.AddrPort
	maxPacket int
	lastSeen  time.Time
	removed   bool
	// who subscribed, and the Guard epoch at which it last was allowed.
	who   string
	epoch uint64

	// The pending push, valid while ackID != 0.
	ackID      int64
	pkt        []byte
	due        time.Time
	sent       int
	prev, next *subscriber
}

// group is one clusters string's subscribers within flat.
type group struct {
	clusters   string
	start, end int
}

type send struct {
	pkt  []byte
	addr netip.AddrPort
}

// New opens the UDP socket and registers for the store's change events, so
// call it while wiring, before the store is shared. clk nil means the real
// clock; log nil discards logs.
func New(cfg Config, st *store.Store, clk clock.Clock, log *slog.Logger) (*Pusher, error) {
	if st == nil {
		return nil, errors.New("udppush: nil store")
	}
	cfg = cfg.withDefaults()
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	laddr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("udppush: listen address %q: %w", cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("udppush: %w", err)
	}
	p := &Pusher{
		cfg:        cfg,
		st:         st,
		clk:        clk,
		log:        log,
		conn:       conn,
		tick:       max(cfg.MergeWindow/2, time.Millisecond),
		sweepEvery: max(min(maxSweepInterval, cfg.SubscriberTTL/2), time.Millisecond),
		watched:    make(map[model.ServiceKey]struct{}),
		queue:      pushq.New[model.ServiceKey](),
		subs:       make(map[model.ServiceKey]map[string]map[netip.AddrPort]*subscriber),
		pending:    make(map[ackKey]*subscriber),
	}
	p.nextSweep = clk.Now().Add(p.sweepEvery)
	st.OnChange(p.onChange)
	return p, nil
}

// LocalAddr returns the address pushes are sent from.
func (p *Pusher) LocalAddr() net.Addr { return p.conn.LocalAddr() }

// Close releases the socket. Run does it on return; Close is for a Pusher
// whose Run never started. It is idempotent.
func (p *Pusher) Close() error {
	var err error
	p.closeOnce.Do(func() { err = p.conn.Close() })
	return err
}

// Subscribe registers (or refreshes) the subscriber (key, clusters, addr)
// for a list call from a client with this User-Agent; it refuses agents that
// fail PushCapable, so callers need not check. Call it before reading
// the view the list call answers with: a change that lands in between is
// then pushed rather than missed until the next poll. It is idempotent;
// each call resets the subscriber's idle time.
//
// who is the authenticated caller (see Config.Guard), "" without auth.
func (p *Pusher) Subscribe(key model.ServiceKey, clusters string, addr netip.AddrPort, agent, who string) error {
	if !PushCapable(agent) {
		return ErrNotPushCapable
	}
	ip := addr.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || addr.Port() == 0 {
		return ErrBadAddress
	}
	if len(clusters) > maxClustersLen {
		return ErrClustersTooLong
	}
	addr = netip.AddrPortFrom(ip, addr.Port())
	maxPacket := maxPacketFor(agent)
	now := p.clk.Now()

	p.mu.Lock()
	defer p.mu.Unlock()
	byClusters := p.subs[key]
	if s := byClusters[clusters][addr]; s != nil {
		s.lastSeen = now
		s.maxPacket = maxPacket
		if s.who != who {
			s.who, s.epoch = who, 0
		}
		return nil
	}
	if p.nsubs >= p.cfg.MaxSubscribers {
		return ErrTooManySubscribers
	}
	if byClusters == nil {
		byClusters = make(map[string]map[netip.AddrPort]*subscriber)
		p.subs[key] = byClusters
		p.qmu.Lock()
		p.watched[key] = struct{}{}
		p.qmu.Unlock()
	}
	byAddr := byClusters[clusters]
	if byAddr == nil {
		byAddr = make(map[netip.AddrPort]*subscriber)
		byClusters[clusters] = byAddr
	}
	byAddr[addr] = &subscriber{key: key, clusters: clusters, addr: addr, maxPacket: maxPacket, lastSeen: now, who: who}
	p.nsubs++
	return nil
}

// SubscriberCount returns the number of subscribers (operator metrics).
func (p *Pusher) SubscriberCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nsubs
}

// Stats returns the current counters.
func (p *Pusher) Stats() Stats {
	p.mu.Lock()
	s := Stats{Subscribers: p.nsubs, Pending: len(p.pending)}
	p.mu.Unlock()
	s.Pushes = p.pushes.Load()
	s.Acks = p.acks.Load()
	s.Retries = p.retries.Load()
	s.Failed = p.failed.Load()
	return s
}

// Run pushes until ctx ends, then closes the socket and returns nil. Call it
// once.
func (p *Pusher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("udppush: Run called twice")
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		p.readLoop()
	}()
	t := p.clk.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = p.Close()
			<-readerDone
			return nil
		case <-t.C():
			p.step(p.clk.Now())
		}
	}
}

// onChange is the store callback: it runs on the writer's goroutine, so it
// only queues the key, and only if someone subscribed to it.
func (p *Pusher) onChange(ev store.Event) {
	p.qmu.Lock()
	if _, ok := p.watched[ev.Key]; ok {
		p.queue.Add(ev.Key, p.clk.Now().Add(p.cfg.MergeWindow))
	}
	p.qmu.Unlock()
}

// step does one dispatcher round at time now: due pushes, due resends, and
// now and then the idle sweep. Only one goroutine may call it.
func (p *Pusher) step(now time.Time) {
	p.dispatch(now)
	p.resend(now)
	if !now.Before(p.nextSweep) {
		p.sweep(now)
		p.nextSweep = now.Add(p.sweepEvery)
	}
}

// dispatch pushes every service whose merge window has closed.
func (p *Pusher) dispatch(now time.Time) {
	p.qmu.Lock()
	due := p.queue.PopDue(now, p.dueKeys[:0])
	p.qmu.Unlock()
	for _, k := range due {
		p.pushKey(k, now)
	}
	clear(due)
	p.dueKeys = due[:0]
}

// pushKey sends the current state of service key to all its subscribers:
// one rendering and one packet per clusters string.
func (p *Pusher) pushKey(key model.ServiceKey, now time.Time) {
	flat, groups := p.flat[:0], p.groups[:0]
	p.mu.Lock()
	for clusters, byAddr := range p.subs[key] {
		start := len(flat)
		for _, s := range byAddr {
			flat = append(flat, s)
		}
		groups = append(groups, group{clusters: clusters, start: start, end: len(flat)})
	}
	p.mu.Unlock()
	defer func() {
		clear(flat)
		clear(groups)
		p.flat, p.groups = flat[:0], groups[:0]
	}()
	if len(flat) == 0 {
		return
	}

	// Read the view after the key left the dirty queue: a change from here
	// on queues the key again, so none is lost.
	v := p.st.ListView(key)
	for _, g := range groups {
		q := render.Query{Clusters: g.clusters, Style: render.V1, CacheMillis: p.cfg.CacheMillis}
		var info []byte
		if v != nil {
			info = v.Rendered(q.CacheKey(), func() []byte {
				return render.ServiceInfo(make([]byte, 0, 256+200*len(v.Instances)), key, v, q, 0)
			})
		} else {
			// The service is gone: push the empty list.
			info = render.ServiceInfo(nil, key, nil, q, now.UnixMilli())
		}
		id := p.nextID(now)
		pkt := p.pk.pack(info, id)
		if len(pkt) > maxDatagram {
			p.log.Warn("udp push too large; subscribers fall back to polling",
				"service", key.String(), "clusters", g.clusters, "bytes", len(pkt), "subscribers", g.end-g.start)
		}
		p.register(flat[g.start:g.end], pkt, id, now)
	}
}

// register makes pkt the pending push of each subscriber (superseding an
// older one) and sends it.
func (p *Pusher) register(subs []*subscriber, pkt []byte, id int64, now time.Time) {
	sends := p.sends[:0]
	tooLarge := 0
	var epoch uint64
	if p.cfg.Guard != nil {
		epoch = p.cfg.Guard.Epoch()
	}
	p.mu.Lock()
	for _, s := range subs {
		if s.removed {
			continue
		}
		if p.cfg.Guard != nil && s.epoch != epoch {
			if !p.cfg.Guard.MayRead(s.who, s.key) {
				p.removeLocked(s)
				continue
			}
			s.epoch = epoch
		}
		p.unpend(s)
		if len(pkt) > s.maxPacket {
			tooLarge++
			continue
		}
		s.ackID, s.pkt, s.sent, s.due = id, pkt, 1, now.Add(p.cfg.AckTimeout)
		p.pending[ackKey{s.addr, id}] = s
		p.retryQ.pushBack(s)
		sends = append(sends, send{pkt, s.addr})
	}
	p.mu.Unlock()
	if tooLarge > 0 {
		p.failed.Add(uint64(tooLarge))
		if len(pkt) <= maxDatagram {
			p.log.Debug("udp push larger than some clients read; they fall back to polling",
				"service", subs[0].key.String(), "bytes", len(pkt), "subscribers", tooLarge)
		}
	}
	p.pushes.Add(uint64(len(sends)))
	p.flush(sends)
	p.sends = sends[:0]
}

// resend retransmits pushes whose ack is overdue, or gives them up after
// MaxRetries resends.
func (p *Pusher) resend(now time.Time) {
	sends := p.sends[:0]
	gaveUp := 0
	p.mu.Lock()
	for s := p.retryQ.head; s != nil && !s.due.After(now); s = p.retryQ.head {
		if s.sent > p.cfg.MaxRetries {
			p.unpend(s)
			gaveUp++
			continue
		}
		p.retryQ.remove(s)
		s.sent++
		s.due = now.Add(p.cfg.AckTimeout)
		p.retryQ.pushBack(s)
		sends = append(sends, send{s.pkt, s.addr})
	}
	p.mu.Unlock()
	p.failed.Add(uint64(gaveUp))
	p.retries.Add(uint64(len(sends)))
	p.flush(sends)
	p.sends = sends[:0]
}

// sweep drops subscribers idle for SubscriberTTL.
func (p *Pusher) sweep(now time.Time) {
	ttl := p.cfg.SubscriberTTL
	dropped := 0
	p.mu.Lock()
	for key, byClusters := range p.subs {
		for clusters, byAddr := range byClusters {
			for addr, s := range byAddr {
				if now.Sub(s.lastSeen) >= ttl {
					p.unpend(s)
					s.removed = true
					delete(byAddr, addr)
					dropped++
				}
			}
			if len(byAddr) == 0 {
				delete(byClusters, clusters)
			}
		}
		if len(byClusters) == 0 {
			delete(p.subs, key)
			p.qmu.Lock()
			delete(p.watched, key)
			p.qmu.Unlock()
		}
	}
	p.nsubs -= dropped
	p.mu.Unlock()
	if dropped > 0 {
		p.log.Debug("udp push subscribers expired", "count", dropped)
	}
}

// removeLocked drops subscriber s. Caller holds mu.
func (p *Pusher) removeLocked(s *subscriber) {
	p.unpend(s)
	s.removed = true
	byClusters := p.subs[s.key]
	byAddr := byClusters[s.clusters]
	if byAddr[s.addr] != s {
		return
	}
	delete(byAddr, s.addr)
	p.nsubs--
	if len(byAddr) == 0 {
		delete(byClusters, s.clusters)
	}
	if len(byClusters) == 0 {
		delete(p.subs, s.key)
		p.qmu.Lock()
		delete(p.watched, s.key)
		p.qmu.Unlock()
	}
}

// flush sends packets outside any lock. A failed send is left to the resend
// path.
func (p *Pusher) flush(sends []send) {
	for i, sd := range sends {
		if _, err := p.conn.WriteToUDPAddrPort(sd.pkt, sd.addr); err != nil && !errors.Is(err, net.ErrClosed) {
			p.log.Debug("udp push send failed", "addr", sd.addr.String(), "error", err)
		}
		sends[i] = send{}
	}
}

// unpend drops s's pending push, if any. Caller holds mu.
func (p *Pusher) unpend(s *subscriber) {
	if s.ackID == 0 {
		return
	}
	delete(p.pending, ackKey{s.addr, s.ackID})
	p.retryQ.remove(s)
	s.ackID, s.pkt, s.sent = 0, nil, 0
}

// nextID returns a new ack id: Unix microseconds, strictly increasing, and
// below 2^53 so that it survives a JavaScript client's round trip.
func (p *Pusher) nextID(now time.Time) int64 {
	t := now.UnixMicro()
	for {
		last := p.lastID.Load()
		id := max(t, last+1)
		if p.lastID.CompareAndSwap(last, id) {
			return id
		}
	}
}

// readLoop reads acks until the socket is closed.
func (p *Pusher) readLoop() {
	buf := make([]byte, 2048)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. an ICMP error reported on the socket): keep
			// reading, but do not spin if the error repeats.
			p.log.Debug("udp push read failed", "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.handleAck(buf[:n], from)
	}
}

// handleAck settles the pending push an ack names. Acks for superseded,
// settled or unknown pushes are ignored.
func (p *Pusher) handleAck(b []byte, from netip.AddrPort) {
	id, ok := parseAck(b)
	if !ok {
		return
	}
	key := ackKey{netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), id}
	p.mu.Lock()
	s := p.pending[key]
	if s != nil {
		p.unpend(s)
	}
	p.mu.Unlock()
	if s != nil {
		p.acks.Add(1)
	}
}

// subList is an intrusive doubly linked list of subscribers with a pending
// push. Ack deadlines are appended in time order, so the head is the
// earliest.
type subList struct{ head, tail *subscriber }

func (l *subList) pushBack(s *subscriber) {
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *subList) remove(s *subscriber) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}
