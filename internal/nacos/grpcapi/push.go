package grpcapi

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/store"
)

// subKey names one subscription of a connection.
type subKey struct {
	key      model.ServiceKey
	clusters string
}

// subscription is one (connection, service, clusters) and its pending
// push, if any. c, key and clusters never change; the rest is guarded by
// Server.mu.
type subscription struct {
	c        *conn
	key      model.ServiceKey
	clusters string
	removed  bool
	// who subscribed, and the Guard epoch at which it last was allowed.
	who   string
	epoch uint64

	// The pending push, valid while reqID != "".
	reqID      string
	msg        encodedMsg
	sentAt     time.Time
	due        time.Time
	sent       int
	prev, next *subscription
}

// serviceSubs are the subscriptions of one service.
type serviceSubs struct {
	subs map[*subscription]struct{}
	// lastRef is the highest lastRefTime pushed for the service, so that
	// every push carries a strictly greater one.
	lastRef int64
}

// addSub subscribes c to (key, clusters); idempotent.
func (s *Server) addSub(c *conn, key model.ServiceKey, clusters, who string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state.Load() != stateRegistered {
		return errUnregistered
	}
	sk := subKey{key, clusters}
	if sub, _ := c.subs.get(sk); sub != nil {
		if sub.who != who {
			sub.who, sub.epoch = who, 0
		}
		return nil
	}
	if c.subs.len() >= s.cfg.MaxSubscriptions {
		return invalidf("connection has %d subscriptions; the limit is %d", c.subs.len(), s.cfg.MaxSubscriptions)
	}
	// Kept for the connection's life: the request's strings may share its
	// memory.
	key, clusters = key.Interned(), model.Intern(clusters)
	sk = subKey{key, clusters}
	sub := &subscription{c: c, key: key, clusters: clusters, who: who}
	c.subs.put(sk, sub)
	ss := s.subs[key]
	if ss == nil {
		ss = &serviceSubs{subs: make(map[*subscription]struct{})}
		s.subs[key] = ss
		s.qmu.Lock()
		s.watched[key] = struct{}{}
		s.qmu.Unlock()
	}
	ss.subs[sub] = struct{}{}
	s.nsubs++
	return nil
}

// unsubscribe removes c's subscription to (key, clusters), if any.
func (s *Server) unsubscribe(c *conn, key model.ServiceKey, clusters string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sk := subKey{key, clusters}
	if sub, _ := c.subs.get(sk); sub != nil {
		c.subs.delete(sk)
		s.removeSub(sub)
	}
}

// removeSub takes sub out of the index. Caller holds s.mu.
func (s *Server) removeSub(sub *subscription) {
	if sub.removed {
		return
	}
	sub.removed = true
	s.unpend(sub)
	s.nsubs--
	ss := s.subs[sub.key]
	if ss == nil {
		return
	}
	delete(ss.subs, sub)
	if len(ss.subs) == 0 {
		delete(s.subs, sub.key)
		s.qmu.Lock()
		delete(s.watched, sub.key)
		s.qmu.Unlock()
	}
}

// unpend drops sub's pending push. Caller holds s.mu.
func (s *Server) unpend(sub *subscription) {
	if sub.reqID == "" {
		return
	}
	sub.c.pending.delete(sub.reqID)
	s.retryQ.remove(sub)
	sub.reqID, sub.msg, sub.sent = "", nil, 0
}

// onChange is the store callback. It runs on the writer's goroutine, so it
// only queues the key, and only if someone subscribed to it. The deadline
// of the first change is kept: a busy service is still pushed every window.
func (s *Server) onChange(ev store.Event) {
	first := false
	s.qmu.Lock()
	if _, ok := s.watched[ev.Key]; ok {
		first = s.queue.Add(ev.Key, s.clk.Now().Add(s.cfg.MergeWindow)) && s.queue.Len() == 1
	}
	s.qmu.Unlock()
	if first {
		// The dispatcher sleeps until this deadline (later keys queue behind
		// it, with later deadlines).
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// nextDue returns the earliest push deadline, if a service is queued.
func (s *Server) nextDue() (time.Time, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.queue.Next()
}

// dispatchLoop is the one goroutine that pushes, resends and probes.
// Resends and probes run on the tick (housekeepingTick); a push runs when its merge window
// closes (a timer for the earliest deadline, re-armed as the queue moves),
// not at the next tick, which would add up to a tick to every push.
func (s *Server) dispatchLoop(ctx context.Context) {
	t := s.clk.NewTicker(s.tick)
	defer t.Stop()
	s.nextProbe = s.clk.Now().Add(s.cfg.ProbeInterval)
	var wake <-chan time.Time
	var armed time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			s.step(s.clk.Now())
		case <-s.kick:
		case <-wake:
			wake = nil
			s.dispatch(s.clk.Now())
		}
		if next, ok := s.nextDue(); !ok {
			wake = nil
		} else if wake == nil || !next.Equal(armed) {
			armed = next
			wake = s.clk.After(max(next.Sub(s.clk.Now()), 0))
		}
	}
}

// step does one dispatcher round at time now. Only the dispatcher calls it.
func (s *Server) step(now time.Time) {
	s.dispatch(now)
	s.resend(now)
	if !now.Before(s.nextProbe) {
		s.probe(now)
		s.forgetUntagged(now)
		s.nextProbe = now.Add(s.cfg.ProbeInterval)
	}
}

// dispatchDue takes the services whose merge window has closed. Deadlines
// are "first change + MergeWindow", so the queue is in deadline order.
func (s *Server) dispatchDue(now time.Time) []model.ServiceKey {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.queue.PopDue(now, s.dueKeys[:0])
}

// dispatch pushes every service whose merge window has closed.
func (s *Server) dispatch(now time.Time) {
	due := s.dispatchDue(now)
	for _, k := range due {
		s.pushKey(k, now)
	}
	clear(due)
	s.dueKeys = due[:0]
}

// pushKey sends the current state of key to all its subscribers: one
// rendering and one message per distinct clusters filter, shared by every
// subscriber with that filter.
func (s *Server) pushKey(key model.ServiceKey, now time.Time) {
	subs := s.scratch[:0]
	s.mu.Lock()
	ss := s.subs[key]
	var lastRef int64
	if ss != nil {
		lastRef = ss.lastRef
		for sub := range ss.subs {
			subs = append(subs, sub)
		}
	}
	s.mu.Unlock()
	defer func() {
		clear(subs)
		s.scratch = subs[:0]
	}()
	if len(subs) == 0 {
		return
	}
	slices.SortFunc(subs, func(a, b *subscription) int { return strings.Compare(a.clusters, b.clusters) })

	// The view is read after the key left the dirty queue: a change from
	// here on queues it again, so none is lost.
	v := s.st.ListView(key)
	ref := lastRef + 1
	if v != nil {
		ref = max(v.LastRefTime, ref)
	}
	type group struct {
		start, end int
		msg        encodedMsg
		id         string
	}
	var groups []group
	for i := 0; i < len(subs); {
		j := i + 1
		for j < len(subs) && subs[j].clusters == subs[i].clusters {
			j++
		}
		id := s.nextRequestID()
		info := s.pushInfo(key, v, subs[i].clusters, ref)
		// Encoded once: every subscriber of the group gets the same bytes.
		msg, err := encodeMsg(EncodePayload(TypeNotifySubscriberRequest, notifyBody(id, key.Namespace, key.Group, key.Name, info)))
		if err != nil {
			s.log.Error("cannot encode a push", "service", key.String(), "error", err)
			i = j
			continue
		}
		groups = append(groups, group{start: i, end: j, id: id, msg: msg})
		i = j
	}

	var stuck []*conn
	var epoch uint64
	guard := s.cfg.Guard
	if guard != nil {
		epoch = guard.Epoch()
	}
	s.mu.Lock()
	if ss := s.subs[key]; ss != nil {
		ss.lastRef = max(ss.lastRef, ref)
	}
	for _, g := range groups {
		for _, sub := range subs[g.start:g.end] {
			if sub.removed {
				continue
			}
			if guard != nil && sub.epoch != epoch {
				// Permissions changed since this subscriber was allowed:
				// one that may no longer read the service loses the
				// subscription.
				if !guard.MayRead(sub.who, key) {
					sub.c.subs.delete(subKey{sub.key, sub.clusters})
					s.removeSub(sub)
					continue
				}
				sub.epoch = epoch
			}
			s.unpend(sub) // a newer push supersedes the older one
			sub.reqID, sub.msg, sub.sent, sub.sentAt, sub.due = g.id, g.msg, 1, now, now.Add(s.cfg.AckTimeout)
			sub.c.pending.put(g.id, sub)
			s.retryQ.pushBack(sub)
			if !sub.c.send(g.msg) {
				stuck = append(stuck, sub.c)
				continue
			}
			// Counted under the lock: the ack (which needs it) is always
			// counted after its push.
			s.m.pushes.Inc()
		}
	}
	s.mu.Unlock()
	for _, c := range stuck {
		s.drop(c, "send queue full")
	}
}

// pushInfo renders the ServiceInfo of a push with lastRefTime ref. When ref
// is the view's own lastRefTime (the usual case) the rendering cached on
// the view is reused.
func (s *Server) pushInfo(key model.ServiceKey, v *store.View, clusters string, ref int64) []byte {
	if v != nil && v.LastRefTime == ref {
		return s.renderInfo(key, v, clusters, false)
	}
	q := render.Query{Clusters: clusters, Style: render.V2, CacheMillis: s.cfg.CacheMillis}
	var at *store.View
	if v != nil {
		// A copy of the view's data with a later lastRefTime (only after a
		// push of the empty service used a synthetic one).
		at = &store.View{Key: v.Key, Revision: v.Revision, LastRefTime: ref, Meta: v.Meta, Instances: v.Instances}
	}
	return echoClusters(render.ServiceInfo(nil, key, at, q, ref), clusters)
}

// resend resends pushes whose ack is overdue; a push still unacknowledged
// after MaxRetries resends means the client stopped answering, and its
// connection is dropped.
func (s *Server) resend(now time.Time) {
	var dead []*conn
	retries, failed := 0, 0
	s.mu.Lock()
	for sub := s.retryQ.head; sub != nil && !sub.due.After(now); sub = s.retryQ.head {
		if sub.sent > s.cfg.MaxRetries {
			s.unpend(sub)
			failed++
			dead = append(dead, sub.c)
			continue
		}
		s.retryQ.remove(sub)
		sub.sent++
		sub.due = now.Add(s.cfg.AckTimeout)
		s.retryQ.pushBack(sub)
		if !sub.c.send(sub.msg) {
			s.unpend(sub)
			dead = append(dead, sub.c)
			continue
		}
		retries++
	}
	s.mu.Unlock()
	s.m.retries.Add(float64(retries))
	s.m.failures.Add(float64(failed))
	for _, c := range dead {
		s.drop(c, "push unacknowledged")
	}
}

// probe sends ClientDetectionRequest to connections idle for IdleTimeout
// and drops those that did not answer a probe (or a ConnectResetRequest)
// in time.
func (s *Server) probe(now time.Time) {
	list := s.connList[:0]
	s.connMu.RLock()
	for _, c := range s.conns {
		if c.state.Load() == stateRegistered {
			list = append(list, c)
		}
	}
	s.connMu.RUnlock()
	defer func() {
		clear(list)
		s.connList = list[:0]
	}()
	idleSince := s.since(now.Add(-s.cfg.IdleTimeout))
	type verdict struct {
		c      *conn
		reason string
	}
	var dead []verdict
	probes := 0
	s.mu.Lock()
	for _, c := range list {
		switch {
		case c.state.Load() != stateRegistered:
		case c.resetID != "" && now.After(c.resetDue):
			dead = append(dead, verdict{c, "connect reset"})
		case c.probeID != "":
			if now.After(c.probeDue) {
				dead = append(dead, verdict{c, "client detection unanswered"})
			}
		case c.active.Load() <= idleSince:
			c.probeID, c.probeDue = s.nextRequestID(), now.Add(s.cfg.ProbeTimeout)
			if !c.send(EncodePayload(TypeClientDetectionRequest, internalRequestBody(c.probeID))) {
				dead = append(dead, verdict{c, "send queue full"})
				continue
			}
			probes++
		}
	}
	s.mu.Unlock()
	s.m.probes.Add(float64(probes))
	for _, d := range dead {
		s.drop(d.c, d.reason)
	}
}

// subList is an intrusive doubly linked list of subscriptions with a
// pending push. Ack deadlines are appended in time order, so the head is
// the earliest.
type subList struct{ head, tail *subscription }

func (l *subList) pushBack(s *subscription) {
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *subList) remove(s *subscription) {
	if s.prev != nil {
		s.prev.next = s.next
	} else if l.head == s {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else if l.tail == s {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}
