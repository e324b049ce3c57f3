package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Watch implements Watcher with the Nacos v1 UDP push protocol: a list
// call carrying udpPort and clientIP subscribes this driver's UDP socket;
// pushes ({"type":"dom",...}, gzip when they start with 1f 8b) are acked
// and delivered to the subscription of their service.
func (d *HTTPDriver) Watch(ctx context.Context, node int, service string) (Subscription, Outcome) {
	w, err := d.watcher(node)
	if err != nil {
		return nil, Outcome{Op: "subscribe", Kind: "udp_listen"}
	}
	grouped := DefaultGroup + "@@" + service
	sub := w.add(grouped)
	q := "serviceName=" + url.QueryEscape(grouped) + "&clusters=&healthyOnly=false&udpPort=" +
		strconv.Itoa(w.port()) + "&clientIP=" + url.QueryEscape(w.clientIP) + "&app=distrobench"
	o, _ := d.lookup(ctx, node, q)
	o.Op = "subscribe"
	if !o.OK() {
		sub.Close()
		return nil, o
	}
	return sub, o
}

// PushStats counts the UDP datagrams the driver received, acked and could
// not decode.
type PushStats struct {
	Packets, Acked, Bad int64
}

// PushStats returns the UDP push counters (zero before the first Watch).
func (d *HTTPDriver) PushStats() PushStats {
	d.udpMu.Lock()
	w := d.udp
	d.udpMu.Unlock()
	if w == nil {
		return PushStats{}
	}
	return PushStats{Packets: w.packets.Load(), Acked: w.acked.Load(), Bad: w.bad.Load()}
}

func (d *HTTPDriver) watcher(node int) (*udpWatcher, error) {
	d.udpMu.Lock()
	defer d.udpMu.Unlock()
	if d.udp != nil {
		return d.udp, nil
	}
	ip := localIPFor(d.targets[node])
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	w := &udpWatcher{conn: conn, clientIP: ip, subs: map[string]map[*udpSub]struct{}{}}
	w.wg.Go(w.read)
	d.udp = w
	return w, nil
}

// localIPFor is the local IPv4 address that reaches target: 127.0.0.1 for
// loopback targets.
func localIPFor(target string) string {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return "127.0.0.1"
	}
	// Ask the routing table which source address reaches the target.
	c, err := net.Dial("udp4", net.JoinHostPort(host, "9"))
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

type udpWatcher struct {
	conn     *net.UDPConn
	clientIP string
	wg       sync.WaitGroup

	mu   sync.Mutex
	subs map[string]map[*udpSub]struct{}

	packets, acked, bad atomic.Int64
}

type udpSub struct {
	w       *udpWatcher
	service string
	ch      chan Notification
	once    sync.Once
}

func (s *udpSub) C() <-chan Notification { return s.ch }

func (s *udpSub) Close() {
	s.once.Do(func() {
		s.w.mu.Lock()
		delete(s.w.subs[s.service], s)
		if len(s.w.subs[s.service]) == 0 {
			delete(s.w.subs, s.service)
		}
		s.w.mu.Unlock()
	})
}

func (w *udpWatcher) port() int { return w.conn.LocalAddr().(*net.UDPAddr).Port }

func (w *udpWatcher) add(service string) *udpSub {
	s := &udpSub{w: w, service: service, ch: make(chan Notification, 16)}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.subs[service]
	if m == nil {
		m = map[*udpSub]struct{}{}
		w.subs[service] = m
	}
	m[s] = struct{}{}
	return s
}

func (w *udpWatcher) close() error {
	err := w.conn.Close()
	w.wg.Wait()
	return err
}

func (w *udpWatcher) read() {
	buf := make([]byte, 65536)
	for {
		n, from, err := w.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		w.packets.Add(1)
		p, err := DecodePush(buf[:n])
		if err != nil {
			w.bad.Add(1)
			continue
		}
		if _, err := w.conn.WriteToUDP(p.Ack(), from); err == nil {
			w.acked.Add(1)
		}
		if p.Type != "dom" && p.Type != "service" {
			continue
		}
		note := Notification{Service: p.Service, Hosts: p.Hosts, At: at, Bytes: n}
		w.mu.Lock()
		for s := range w.subs[p.Service] {
			select {
			case s.ch <- note:
			default: // a slow reader loses notifications, never blocks the socket
			}
		}
		w.mu.Unlock()
	}
}

// Push is a decoded v1 UDP push datagram.
type Push struct {
	Type string
	// AckID is lastRefTime as sent (digits only).
	AckID string
	// Service is the grouped service name of a dom push.
	Service string
	Hosts   []Endpoint
}

// pushPacket is the outer JSON of a push: data is the ServiceInfo JSON as
// a string; lastRefTime is a number (or a string from some servers).
type pushPacket struct {
	Type        string          `json:"type"`
	Data        string          `json:"data"`
	LastRefTime json.RawMessage `json:"lastRefTime"`
}

// DecodePush decodes a push datagram, gunzipping it when it starts with the
// gzip magic bytes 1f 8b.
func DecodePush(b []byte) (Push, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return Push{}, err
		}
		if b, err = io.ReadAll(io.LimitReader(zr, 16<<20)); err != nil {
			return Push{}, err
		}
	}
	var pp pushPacket
	if err := json.Unmarshal(b, &pp); err != nil {
		return Push{}, err
	}
	p := Push{Type: pp.Type, AckID: strings.Trim(string(bytes.TrimSpace(pp.LastRefTime)), `"`)}
	if pp.Type == "dom" || pp.Type == "service" {
		var lr listReply
		if err := json.Unmarshal([]byte(pp.Data), &lr); err != nil {
			return Push{}, err
		}
		p.Service = lr.Name
		if !strings.Contains(p.Service, "@@") {
			p.Service = DefaultGroup + "@@" + p.Service
		}
		p.Hosts = lr.endpoints()
	}
	return p, nil
}

// Ack is the reply the Go SDK sends for p: push-ack for pushes, dump-ack
// for dump requests, unknow-ack otherwise (sic, as the Go SDK spells it).
func (p Push) Ack() []byte {
	typ := "unknow-ack"
	switch p.Type {
	case "dom", "service":
		typ = "push-ack"
	case "dump":
		typ = "dump-ack"
	}
	return []byte(`{"type":"` + typ + `","lastRefTime":"` + p.AckID + `","data":""}`)
}

// Subscribe implements Subscriber: an instance list carrying this
// driver's UDP push port (the v1 subscription), body discarded.
func (d *HTTPDriver) Subscribe(ctx context.Context, node int, service string) Outcome {
	w, err := d.watcher(node)
	if err != nil {
		return Outcome{Op: "subscribe", Kind: "udp_listen"}
	}
	q := "serviceName=" + url.QueryEscape(DefaultGroup+"@@"+service) + "&clusters=&healthyOnly=false&udpPort=" +
		strconv.Itoa(w.port()) + "&clientIP=" + url.QueryEscape(w.clientIP) + "&app=distrobench"
	o, _ := d.do(ctx, node, http.MethodGet, PathList, q, "", false)
	o.Op = "subscribe"
	return o
}
