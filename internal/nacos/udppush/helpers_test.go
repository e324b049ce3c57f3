package udppush

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

const (
	goAgent   = "Nacos-Go-Client:v1.1.6"
	javaAgent = "Nacos-Java-Client:v1.0.0" // what the Node client sends
	// waitLimit bounds every wait for something that must happen; a passing
	// test never waits this long.
	waitLimit = 5 * time.Second
	// quietPeriod is how long a client listens to confirm that nothing more
	// arrives. The pusher's counters are the primary check; this only
	// catches a stray datagram.
	quietPeriod = 50 * time.Millisecond
)

var (
	t0      = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	demoKey = model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}
)

// harness is a Pusher on a fake clock whose dispatcher rounds the test runs
// itself (advance), with the ack reader running as in Run.
type harness struct {
	t   testing.TB
	p   *Pusher
	st  *store.Store
	clk *clock.Fake
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	st := store.New("n1", hlc.New(nil))
	clk := clock.NewFake(t0)
	p, err := New(cfg, st, clk, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.readLoop()
	}()
	t.Cleanup(func() {
		_ = p.Close()
		<-done
	})
	return &harness{t: t, p: p, st: st, clk: clk}
}

// advance moves the fake clock by d and runs one dispatcher round, as Run
// does on each tick.
func (h *harness) advance(d time.Duration) {
	h.clk.Advance(d)
	h.p.step(h.clk.Now())
}

func (h *harness) subscribe(c *client, clusters, agent string) {
	h.t.Helper()
	if err := h.p.Subscribe(demoKey, clusters, c.addr(), agent, ""); err != nil {
		h.t.Fatalf("Subscribe: %v", err)
	}
}

func (h *harness) put(ip string, port int, cluster string, md map[string]string) {
	h.t.Helper()
	in := &model.Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true,
		Cluster: cluster, Metadata: md}
	if err := h.st.Update(demoKey, func(tx *store.Tx) error {
		tx.Put(in, store.KindLive, "", "")
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) remove(ip string, port int, cluster string) {
	h.t.Helper()
	in := &model.Instance{IP: ip, Port: port, Cluster: cluster, Enabled: true, Ephemeral: true}
	if err := h.st.Update(demoKey, func(tx *store.Tx) error {
		tx.Put(in, store.KindDeleted, "", "")
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// client is a fake Nacos client's push socket.
type client struct {
	t    testing.TB
	conn *net.UDPConn
}

func newClient(t testing.TB) *client {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &client{t: t, conn: conn}
}

func (c *client) addr() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// pushed is a received push packet, decoded.
type pushed struct {
	raw  []byte
	gzip bool
	plen int // length before compression
	typ  string
	id   int64
	data string // the ServiceInfo JSON as sent
	info serviceInfo
}

type serviceInfo struct {
	Name        string `json:"name"`
	GroupName   string `json:"groupName"`
	Clusters    string `json:"clusters"`
	CacheMillis int64  `json:"cacheMillis"`
	LastRefTime int64  `json:"lastRefTime"`
	Hosts       []struct {
		IP          string            `json:"ip"`
		Port        int               `json:"port"`
		ClusterName string            `json:"clusterName"`
		Healthy     bool              `json:"healthy"`
		Metadata    map[string]string `json:"metadata"`
	} `json:"hosts"`
}

func (si serviceInfo) hostIPs() []string {
	var out []string
	for _, h := range si.Hosts {
		out = append(out, h.IP)
	}
	return out
}

// recv waits for the next push and decodes it the way the Go SDK does.
func (c *client) recv() pushed {
	c.t.Helper()
	buf := make([]byte, 1<<16)
	_ = c.conn.SetReadDeadline(time.Now().Add(waitLimit))
	n, _, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		c.t.Fatalf("no push received: %v", err)
	}
	p, err := decodePush(buf[:n])
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// quiet fails if a datagram arrives within quietPeriod.
func (c *client) quiet() {
	c.t.Helper()
	buf := make([]byte, 1<<16)
	_ = c.conn.SetReadDeadline(time.Now().Add(quietPeriod))
	n, _, err := c.conn.ReadFromUDPAddrPort(buf)
	if err == nil {
		c.t.Fatalf("unexpected datagram: %.200q", buf[:n])
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatal(err)
	}
}

// ack answers push id from this client's socket: as a string (Go, Java) or
// a number (Node).
func (c *client) ack(p *Pusher, id int64, asString bool) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(ackBytes(id, asString), p.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		c.t.Fatal(err)
	}
}

func ackBytes(id int64, asString bool) []byte {
	v := strconv.FormatInt(id, 10)
	if asString {
		v = strconv.Quote(v)
	}
	return []byte(`{"type":"push-ack","lastRefTime":` + v + `,"data":""}`)
}

func decodePush(raw []byte) (pushed, error) {
	p := pushed{raw: bytes.Clone(raw)}
	plain := raw
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		p.gzip = true
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return p, err
		}
		if plain, err = io.ReadAll(zr); err != nil {
			return p, err
		}
	}
	p.plen = len(plain)
	var outer struct {
		Type        string `json:"type"`
		Data        string `json:"data"`
		LastRefTime int64  `json:"lastRefTime"`
	}
	if err := json.Unmarshal(plain, &outer); err != nil {
		return p, err
	}
	p.typ, p.id, p.data = outer.Type, outer.LastRefTime, outer.Data
	return p, json.Unmarshal([]byte(outer.Data), &p.info)
}

// testLogger writes logs to the test's output, shown on failure or with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
