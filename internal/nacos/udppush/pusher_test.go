package udppush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/store"
)

func TestBurstWithinWindowIsOnePush(t *testing.T) {
	h := newHarness(t, Config{}) // MergeWindow 20ms, AckTimeout 1s
	c := newClient(t)
	h.subscribe(c, "", goAgent)

	for i := 1; i <= 5; i++ {
		h.put(fmt.Sprintf("10.0.0.%d", i), 8080, "DEFAULT", nil)
	}
	h.advance(10 * time.Millisecond)
	if s := h.p.Stats(); s.Pushes != 0 {
		t.Fatalf("pushed before the merge window closed: %+v", s)
	}
	// A change late in the window joins the push without postponing it.
	h.put("10.0.0.6", 8080, "DEFAULT", nil)
	h.advance(10 * time.Millisecond)
	if s := h.p.Stats(); s.Pushes != 1 || s.Pending != 1 {
		t.Fatalf("want 1 push pending its ack, got %+v", s)
	}

	p := c.recv()
	if p.typ != "dom" {
		t.Errorf("type = %q, want dom", p.typ)
	}
	if p.id <= 0 || p.id >= 1<<53 {
		t.Errorf("ack id %d not in (0, 2^53)", p.id)
	}
	if p.info.Name != "DEFAULT_GROUP@@demo" || p.info.GroupName != "DEFAULT_GROUP" || p.info.Clusters != "" {
		t.Errorf("name/group/clusters = %q/%q/%q", p.info.Name, p.info.GroupName, p.info.Clusters)
	}
	if p.info.CacheMillis != render.DefaultCacheMillis {
		t.Errorf("cacheMillis = %d", p.info.CacheMillis)
	}
	if v := h.st.View(demoKey); p.info.LastRefTime != v.LastRefTime {
		t.Errorf("lastRefTime = %d, want the view's %d", p.info.LastRefTime, v.LastRefTime)
	}
	want := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	if got := p.info.hostIPs(); !slices.Equal(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}

	// Nothing else is due until the ack timeout.
	h.advance(500 * time.Millisecond)
	if s := h.p.Stats(); s.Pushes != 1 || s.Retries != 0 {
		t.Fatalf("extra sends: %+v", s)
	}
	c.quiet()
}

func TestChangeAfterWindowStartsNewPush(t *testing.T) {
	h := newHarness(t, Config{})
	c := newClient(t)
	h.subscribe(c, "", goAgent)

	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	first := c.recv()
	h.put("10.0.0.2", 8080, "DEFAULT", nil)
	h.advance(19 * time.Millisecond)
	if s := h.p.Stats(); s.Pushes != 1 {
		t.Fatalf("second window closed early: %+v", s)
	}
	h.advance(time.Millisecond)
	second := c.recv()
	if second.id <= first.id {
		t.Errorf("ack ids not increasing: %d then %d", first.id, second.id)
	}
	if second.info.LastRefTime <= first.info.LastRefTime {
		t.Errorf("lastRefTime not increasing: %d then %d", first.info.LastRefTime, second.info.LastRefTime)
	}
	if got := second.info.hostIPs(); len(got) != 2 {
		t.Errorf("hosts = %v", got)
	}
}

func TestEachClustersStringGetsItsOwnPayload(t *testing.T) {
	h := newHarness(t, Config{})
	a1, a2, ab, all := newClient(t), newClient(t), newClient(t), newClient(t)
	h.subscribe(a1, "a", goAgent)
	h.subscribe(a2, "a", javaAgent)
	h.subscribe(ab, "a,b", goAgent)
	h.subscribe(all, "", goAgent)
	h.put("10.0.0.1", 80, "a", nil)
	h.put("10.0.0.2", 80, "b", nil)
	h.put("10.0.0.3", 80, "c", nil)
	h.advance(20 * time.Millisecond)

	for _, tc := range []struct {
		name     string
		c        *client
		clusters string
		hosts    []string
	}{
		{"a", a1, "a", []string{"10.0.0.1"}},
		{"a,b", ab, "a,b", []string{"10.0.0.1", "10.0.0.2"}},
		{"all", all, "", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
	} {
		p := tc.c.recv()
		if p.info.Clusters != tc.clusters || p.info.Name != "DEFAULT_GROUP@@demo" {
			t.Errorf("%s: name %q clusters %q", tc.name, p.info.Name, p.info.Clusters)
		}
		if got := p.info.hostIPs(); !slices.Equal(got, tc.hosts) {
			t.Errorf("%s: hosts %v, want %v", tc.name, got, tc.hosts)
		}
		if tc.c == a1 {
			// One packet per clusters string and round: the other "a"
			// subscriber receives the very same bytes and ack id.
			if q := a2.recv(); !bytes.Equal(q.raw, p.raw) {
				t.Errorf("subscribers of the same clusters got different packets")
			}
		}
	}
	if s := h.p.Stats(); s.Pushes != 4 || s.Pending != 4 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAckStopsResends(t *testing.T) {
	for _, tc := range []struct {
		name     string
		asString bool
	}{{"go string ack", true}, {"node number ack", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := newClient(t)
			h.subscribe(c, "", goAgent)
			h.put("10.0.0.1", 8080, "DEFAULT", nil)
			h.advance(20 * time.Millisecond)
			p := c.recv()

			c.ack(h.p, p.id, tc.asString)
			waitFor(t, "the ack", func() bool { s := h.p.Stats(); return s.Acks == 1 && s.Pending == 0 })

			for range 4 {
				h.advance(time.Second)
			}
			if s := h.p.Stats(); s.Retries != 0 || s.Failed != 0 || s.Pushes != 1 {
				t.Fatalf("acked push was resent or failed: %+v", s)
			}
			c.quiet()
		})
	}
}

func TestNoAckResendsThenFails(t *testing.T) {
	h := newHarness(t, Config{AckTimeout: time.Second, MaxRetries: 2})
	c := newClient(t)
	h.subscribe(c, "", goAgent)
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	first := c.recv()

	// An ack with the right id from another address settles nothing.
	h.p.handleAck(ackBytes(first.id, true), netip.MustParseAddrPort("127.0.0.1:1"))

	h.advance(999 * time.Millisecond)
	if s := h.p.Stats(); s.Retries != 0 {
		t.Fatalf("resent before the ack timeout: %+v", s)
	}
	for i := 1; i <= 2; i++ {
		h.advance(time.Second)
		if s := h.p.Stats(); s.Retries != uint64(i) || s.Pending != 1 || s.Failed != 0 {
			t.Fatalf("resend %d: %+v", i, s)
		}
		if again := c.recv(); !bytes.Equal(again.raw, first.raw) {
			t.Fatalf("resend %d differs from the original", i)
		}
	}
	h.advance(time.Second)
	if s := h.p.Stats(); s.Failed != 1 || s.Pending != 0 || s.Retries != 2 || s.Acks != 0 {
		t.Fatalf("after the last resend timed out: %+v", s)
	}
	h.advance(time.Second)
	c.quiet()
}

func TestNegativeMaxRetriesNeverResends(t *testing.T) {
	h := newHarness(t, Config{MaxRetries: -1})
	c := newClient(t)
	h.subscribe(c, "", goAgent)
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	c.recv()
	h.advance(time.Second)
	if s := h.p.Stats(); s.Retries != 0 || s.Failed != 1 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewerPushSupersedesPending(t *testing.T) {
	h := newHarness(t, Config{})
	c := newClient(t)
	h.subscribe(c, "", goAgent)
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	old := c.recv()
	h.put("10.0.0.2", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	cur := c.recv()
	if s := h.p.Stats(); s.Pending != 1 {
		t.Fatalf("want only the newest push pending: %+v", s)
	}

	// Only the newest push is retransmitted.
	h.advance(time.Second)
	if again := c.recv(); again.id != cur.id || len(again.info.Hosts) != 2 {
		t.Fatalf("resent push %d with %d hosts, want %d with 2", again.id, len(again.info.Hosts), cur.id)
	}
	c.quiet()

	// A late ack of the superseded push settles nothing.
	h.p.handleAck(ackBytes(old.id, true), c.addr())
	if s := h.p.Stats(); s.Acks != 0 || s.Pending != 1 {
		t.Fatalf("stale ack was taken: %+v", s)
	}
	c.ack(h.p, cur.id, true)
	waitFor(t, "the ack", func() bool { return h.p.Stats().Pending == 0 })
	if s := h.p.Stats(); s.Acks != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestIdleSubscriberExpires(t *testing.T) {
	h := newHarness(t, Config{SubscriberTTL: time.Minute})
	idle, polling := newClient(t), newClient(t)
	h.subscribe(idle, "", goAgent)
	h.subscribe(polling, "", goAgent)
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	idle.ack(h.p, idle.recv().id, true)
	polling.ack(h.p, polling.recv().id, true)
	waitFor(t, "the acks", func() bool { return h.p.Stats().Pending == 0 })

	h.advance(40 * time.Second)
	h.subscribe(polling, "", goAgent) // the client polls: refreshed
	h.advance(30 * time.Second)       // idle: 70s without a poll
	if s := h.p.Stats(); s.Subscribers != 1 || s.Pending != 0 {
		t.Fatalf("after the idle sweep: %+v", s)
	}

	h.put("10.0.0.2", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	if p := polling.recv(); len(p.info.Hosts) != 2 {
		t.Fatalf("hosts %v", p.info.hostIPs())
	}
	idle.quiet()

	h.advance(time.Minute)
	if n := h.p.SubscriberCount(); n != 0 {
		t.Fatalf("subscribers = %d", n)
	}
	// With nobody subscribed, changes are not even queued.
	h.put("10.0.0.3", 8080, "DEFAULT", nil)
	h.p.qmu.Lock()
	queued := h.p.queue.Len()
	h.p.qmu.Unlock()
	if queued != 0 {
		t.Fatalf("change of an unwatched service was queued")
	}
}

func TestGzipFromOneKiB(t *testing.T) {
	h := newHarness(t, Config{})
	c := newClient(t)
	h.subscribe(c, "", javaAgent)

	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	small := c.recv()
	if small.gzip || small.plen >= 1024 || small.raw[0] != '{' {
		t.Fatalf("small packet: gzip=%v len=%d", small.gzip, small.plen)
	}

	for i := 2; i <= 20; i++ {
		h.put(fmt.Sprintf("10.0.0.%d", i), 8080, "DEFAULT", map[string]string{"zone": "z1", "version": "1.2.3"})
	}
	h.advance(20 * time.Millisecond)
	large := c.recv()
	if !large.gzip || large.plen < 1024 || len(large.raw) >= large.plen {
		t.Fatalf("large packet: gzip=%v plain=%d sent=%d", large.gzip, large.plen, len(large.raw))
	}
	if len(large.info.Hosts) != 20 || large.info.Hosts[1].Metadata["zone"] != "z1" {
		t.Fatalf("decoded %d hosts: %+v", len(large.info.Hosts), large.info.Hosts[:1])
	}
}

func TestServiceGonePushesEmptyList(t *testing.T) {
	h := newHarness(t, Config{})
	c := newClient(t)
	h.subscribe(c, "DEFAULT", goAgent)
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	c.recv()

	h.remove("10.0.0.1", 8080, "DEFAULT")
	if h.st.View(demoKey) != nil {
		t.Fatal("service still exists")
	}
	h.advance(20 * time.Millisecond)
	p := c.recv()
	if p.info.Hosts == nil || len(p.info.Hosts) != 0 || p.info.Name != "DEFAULT_GROUP@@demo" || p.info.Clusters != "DEFAULT" {
		t.Fatalf("got %+v, want hosts [] for DEFAULT_GROUP@@demo clusters DEFAULT", p.info)
	}
	if !bytes.Contains(p.raw, []byte(`\"hosts\":[]`)) {
		t.Errorf("hosts not an empty array: %s", p.raw)
	}
}

// randomMetadata makes instances whose JSON does not compress well.
func randomMetadata(r *rand.Rand, n int) map[string]string {
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdef"[r.IntN(16)]
	}
	return map[string]string{"blob": string(b)}
}

func TestPacketSizeLimits(t *testing.T) {
	t.Run("beyond a Go client's read buffer", func(t *testing.T) {
		h := newHarness(t, Config{})
		goc, javac := newClient(t), newClient(t)
		h.subscribe(goc, "", goAgent)
		h.subscribe(javac, "", javaAgent)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 200 {
			h.put(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), 8080, "DEFAULT", randomMetadata(r, 64))
		}
		h.advance(20 * time.Millisecond)
		p := javac.recv()
		if len(p.raw) <= goClientReadBuffer || len(p.info.Hosts) != 200 {
			t.Fatalf("test needs a packet above %d bytes, got %d", goClientReadBuffer, len(p.raw))
		}
		goc.quiet()
		if s := h.p.Stats(); s.Pushes != 1 || s.Failed != 1 || s.Pending != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("beyond a datagram", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := newClient(t)
		h.subscribe(c, "", javaAgent)
		h.put("10.0.0.1", 8080, "DEFAULT", nil)
		h.advance(20 * time.Millisecond)
		c.recv() // now pending

		r := rand.New(rand.NewPCG(3, 4))
		for i := range 1000 {
			h.put(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), 8080, "DEFAULT", randomMetadata(r, 256))
		}
		h.advance(20 * time.Millisecond)
		// The stale pending push is dropped, not retransmitted.
		if s := h.p.Stats(); s.Pushes != 1 || s.Failed != 1 || s.Pending != 0 {
			t.Fatalf("stats %+v", s)
		}
		h.advance(time.Second)
		c.quiet()
	})
}

func TestSubscribeValidation(t *testing.T) {
	h := newHarness(t, Config{MaxSubscribers: 2})
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	for _, tc := range []struct {
		name     string
		addr     netip.AddrPort
		clusters string
		agent    string
		want     error
	}{
		{"curl", ap("127.0.0.1:5000"), "", "curl/8.5.0", ErrNotPushCapable},
		{"old go client", ap("127.0.0.1:5000"), "", "Nacos-Go-Client:v0.0.1", ErrNotPushCapable},
		{"port 0", ap("127.0.0.1:0"), "", goAgent, ErrBadAddress},
		{"unspecified", ap("0.0.0.0:5000"), "", goAgent, ErrBadAddress},
		{"multicast", ap("224.0.0.1:5000"), "", goAgent, ErrBadAddress},
		{"zero addr", netip.AddrPort{}, "", goAgent, ErrBadAddress},
		{"long clusters", ap("127.0.0.1:5000"), strings.Repeat("a,", 3000), goAgent, ErrClustersTooLong},
		{"first", ap("127.0.0.1:5000"), "", goAgent, nil},
		{"first again", ap("127.0.0.1:5000"), "", goAgent, nil},
		{"mapped form of first", ap("[::ffff:127.0.0.1]:5000"), "", goAgent, nil},
		{"second", ap("127.0.0.1:5001"), "", goAgent, nil},
		{"third", ap("127.0.0.1:5002"), "", goAgent, ErrTooManySubscribers},
		{"refresh at limit", ap("127.0.0.1:5001"), "", goAgent, nil},
	} {
		if err := h.p.Subscribe(demoKey, tc.clusters, tc.addr, tc.agent, ""); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := h.p.SubscriberCount(); n != 2 {
		t.Fatalf("subscribers = %d, want 2", n)
	}
}

func TestMappedAddressesMatch(t *testing.T) {
	h := newHarness(t, Config{})
	c := newClient(t)
	mapped := netip.AddrPortFrom(netip.AddrFrom16(c.addr().Addr().As16()), c.addr().Port())
	if err := h.p.Subscribe(demoKey, "", mapped, goAgent, ""); err != nil {
		t.Fatal(err)
	}
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	p := c.recv()
	// A dual-stack socket reports IPv4 senders in mapped form.
	h.p.handleAck(ackBytes(p.id, true), mapped)
	if s := h.p.Stats(); s.Acks != 1 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRunEndToEnd(t *testing.T) {
	st := store.New("n1", hlc.New(nil))
	p, err := New(Config{Listen: "127.0.0.1:0", MergeWindow: 5 * time.Millisecond}, st, clock.Real{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	h := &harness{t: t, p: p, st: st}
	c := newClient(t)
	h.subscribe(c, "", goAgent)
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	got := c.recv()
	if len(got.info.Hosts) != 1 {
		t.Fatalf("hosts %v", got.info.hostIPs())
	}
	c.ack(p, got.id, true)
	waitFor(t, "the ack", func() bool { s := p.Stats(); return s.Acks == 1 && s.Pending == 0 })

	if err := p.Run(ctx); err == nil {
		t.Error("second Run did not fail")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := p.conn.WriteToUDPAddrPort([]byte("x"), c.addr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("socket still open after Run: %v", err)
	}
}

// TestConcurrentUse exercises every entry point at once under -race and then
// checks the pending bookkeeping.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, Config{MaxSubscribers: 50, SubscriberTTL: time.Second})
	keys := []model.ServiceKey{demoKey, {Namespace: "public", Group: "g", Name: "other"}}
	sink := newClient(t)
	base := sink.addr()

	var wg sync.WaitGroup
	var iterations atomic.Int64
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[i%len(keys)]
				// Distinct loopback addresses at the sink's port: nobody
				// else can be listening there.
				addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + (w*7+i)%60)}), base.Port())
				_ = h.p.Subscribe(key, []string{"", "a"}[i%2], addr, javaAgent, "")
				_ = h.st.Update(key, func(tx *store.Tx) error {
					tx.Put(&model.Instance{IP: fmt.Sprintf("10.0.%d.%d", w, i%50), Port: 80, Weight: 1,
						Healthy: true, Enabled: true, Ephemeral: true, Cluster: "a"}, store.KindLive, "", "")
					return nil
				})
				h.p.handleAck(ackBytes(int64(i), true), addr)
				_ = h.p.Stats()
				iterations.Add(1)
			}
		})
	}
	// Run dispatcher rounds until the workers have done a fair amount,
	// subscribers have expired (TTL 1s) and pushes have gone out. The
	// goal is counted, not timed: the deadline only guards against a hang,
	// so it is generous enough for -race on a loaded 2-core machine.
	deadline := time.Now().Add(12 * waitLimit)
	for rounds := 0; rounds < 300 || iterations.Load() < 2000 || h.p.Stats().Pushes < 100; rounds++ {
		if time.Now().After(deadline) {
			t.Fatalf("too little progress: %d iterations, %+v", iterations.Load(), h.p.Stats())
		}
		h.advance(7 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	n := 0
	for s := h.p.retryQ.head; s != nil; s = s.next {
		if h.p.pending[ackKey{s.addr, s.ackID}] != s || s.removed {
			t.Fatalf("retry list and pending table disagree")
		}
		n++
	}
	if n != len(h.p.pending) || n > h.p.nsubs || h.p.nsubs > 50 {
		t.Fatalf("list %d, pending %d, subscribers %d", n, len(h.p.pending), h.p.nsubs)
	}
}
