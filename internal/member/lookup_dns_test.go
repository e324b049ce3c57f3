package member

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeResolver answers SRV and A/AAAA queries from tables the test sets.
type fakeResolver struct {
	mu      sync.Mutex
	srv     map[string][]*net.SRV
	ips     map[string][]netip.Addr
	err     error
	queries []string
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{srv: map[string][]*net.SRV{}, ips: map[string][]netip.Addr{}}
}

func (f *fakeResolver) setSRV(name string, recs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []*net.SRV
	for _, r := range recs {
		host, port, _ := splitAddress(r)
		rs = append(rs, &net.SRV{Target: host + ".", Port: uint16(port), Weight: 1})
	}
	f.srv[name] = rs
}

func (f *fakeResolver) setIPs(host string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var as []netip.Addr
	for _, s := range ips {
		as = append(as, netip.MustParseAddr(s))
	}
	f.ips[host] = as
}

func (f *fakeResolver) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeResolver) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

func (f *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, "SRV "+name)
	if service != "" || proto != "" {
		return "", nil, errors.New("fake: service and proto must be in the name")
	}
	if f.err != nil {
		return "", nil, f.err
	}
	recs, ok := f.srv[name]
	if !ok {
		return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	// Answer in a rotated order, as DNS servers do.
	out := slices.Clone(recs)
	if len(out) > 1 {
		k := len(f.queries) % len(out)
		out = append(out[k:], out[:k]...)
	}
	return name, out, nil
}

func (f *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, "A "+host)
	if network != "ip" {
		return nil, errors.New("fake: want network ip")
	}
	if f.err != nil {
		return nil, f.err
	}
	as, ok := f.ips[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(as), nil
}

func TestDNSConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		srv     bool
		host    string
		port    int
		wantErr string
	}{
		{name: "_http._tcp.distro-headless.default.svc.cluster.local", srv: true, host: "_http._tcp.distro-headless.default.svc.cluster.local"},
		{name: "_HTTP._tcp.Distro-Headless", srv: true, host: "_http._tcp.distro-headless"},
		{name: "distro-headless", host: "distro-headless", port: DefaultPort},
		{name: "distro-headless.ns.svc.cluster.local.:9000", host: "distro-headless.ns.svc.cluster.local", port: 9000},
		{name: "_http._tcp", wantErr: "needs a domain"},
		{name: "_http._tcp.bad..name", wantErr: "invalid"},
		{name: "10.0.0.1", wantErr: "IP address"},
		{name: "host:99999", wantErr: "out of range"},
		{name: "", wantErr: "empty"},
	} {
		d, err := DNS(DNSConfig{Name: tc.name})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("DNS(%q) error %v, want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("DNS(%q): %v", tc.name, err)
			continue
		}
		if d.srv != tc.srv || d.host != tc.host || d.port != tc.port {
			t.Errorf("DNS(%q) = srv %v host %q port %d, want %v %q %d", tc.name, d.srv, d.host, d.port, tc.srv, tc.host, tc.port)
		}
	}
}

// startRecording checks l's name and starts it with a listRecorder; the
// returned cancel stops it (and runs at cleanup).
func startRecording(t *testing.T, l Lookup, name string) (*listRecorder, context.CancelFunc) {
	t.Helper()
	if l.Name() != name {
		t.Fatalf("name %q, want %q", l.Name(), name)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	rec := &listRecorder{}
	if err := l.Start(ctx, rec.onChange); err != nil {
		t.Fatal(err)
	}
	return rec, cancel
}

const testSRV = "_http._tcp.distro-headless.ns.svc.cluster.local"

func TestDNSLookupSRVPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newTestLogger(t)
		r := newFakeResolver()
		pod := func(i int) string {
			return "distro-" + string(rune('0'+i)) + ".distro-headless.ns.svc.cluster.local:8848"
		}
		r.setSRV(testSRV, strings.ToUpper(pod(1)), pod(0), pod(2))
		l, err := DNS(DNSConfig{Name: testSRV, Resolver: r, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		rec, cancel := startRecording(t, l, "dns")
		want := [][]string{{pod(0), pod(1), pod(2)}}
		check := func(step string) {
			t.Helper()
			if got := rec.all(); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("%s: lists %q, want %q", step, got, want)
			}
		}
		check("start (sorted, lower-cased, trailing dot dropped)")

		advance(DefaultDNSInterval)
		if n := r.count(); n != 2 {
			t.Fatalf("%d queries after one interval, want 2", n)
		}
		check("unchanged list, other record order")

		// A scale-up is applied once two lookups agree.
		r.setSRV(testSRV, pod(0), pod(1), pod(2), pod(3))
		advance(DefaultDNSInterval)
		check("first sight of a change is not applied")
		advance(DefaultDNSInterval)
		want = append(want, []string{pod(0), pod(1), pod(2), pod(3)})
		check("confirmed change")

		// A one-off odd answer is never applied.
		r.setSRV(testSRV, pod(0))
		advance(DefaultDNSInterval)
		r.setSRV(testSRV, pod(0), pod(1), pod(2), pod(3))
		advance(DefaultDNSInterval)
		advance(DefaultDNSInterval)
		check("flap")

		// Two different changes in a row: the second needs its own confirmation.
		r.setSRV(testSRV, pod(0), pod(1))
		advance(DefaultDNSInterval)
		r.setSRV(testSRV, pod(0), pod(1), pod(2))
		advance(DefaultDNSInterval)
		check("unconfirmed second change")
		advance(DefaultDNSInterval)
		want = append(want, []string{pod(0), pod(1), pod(2)})
		check("scale-down confirmed")

		// Every kind of failure keeps the last good list and is counted.
		failures := []func(){
			func() { r.setErr(&net.DNSError{Err: "server misbehaving", Name: testSRV, IsTemporary: true}) },
			func() { r.setErr(nil); r.setSRV(testSRV) },                   // no records
			func() { r.setSRV(testSRV, "distro-0.x:0") },                  // port 0
			func() { r.setSRV(testSRV, "bad!host.x:8848", pod(0)) },       // invalid target
			func() { r.mu.Lock(); delete(r.srv, testSRV); r.mu.Unlock() }, // NXDOMAIN
		}
		for i, f := range failures {
			f()
			advance(DefaultDNSInterval)
			check("failure")
			if n := l.ConsecutiveFailures(); n != i+1 {
				t.Fatalf("consecutive failures %d, want %d", n, i+1)
			}
		}
		if n := len(logs.lines("keeping the last good list")); n != len(failures) {
			t.Fatalf("%d log lines for %d failed lookups", n, len(failures))
		}

		r.setSRV(testSRV, pod(0), pod(1), pod(2))
		advance(DefaultDNSInterval)
		if l.ConsecutiveFailures() != 0 || l.TotalFailures() != uint64(len(failures)) {
			t.Fatalf("after recovery: consecutive %d total %d", l.ConsecutiveFailures(), l.TotalFailures())
		}
		check("recovered, same list")

		cancel()
		synctest.Wait()
		n := r.count()
		advance(time.Minute)
		if r.count() != n {
			t.Fatal("still resolving after cancel")
		}
	})
}

func TestDNSLookupA(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newFakeResolver()
		r.setIPs("distro-headless", "10.1.0.7", "::ffff:10.1.0.5", "fd00::1")
		l, err := DNS(DNSConfig{Name: "distro-headless", Interval: time.Second, DefaultPort: 9000, Resolver: r})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rec := &listRecorder{}
		if err := l.Start(ctx, rec.onChange); err != nil {
			t.Fatal(err)
		}
		r.setIPs("distro-headless", "10.1.0.5", "10.1.0.9")
		advance(2 * time.Second)
		want := [][]string{{"10.1.0.5:9000", "10.1.0.7:9000", "[fd00::1]:9000"}, {"10.1.0.5:9000", "10.1.0.9:9000"}}
		if got := rec.all(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("lists %q, want %q", got, want)
		}
		// The lists are member identities every node renders the same way.
		for _, m := range want[0] {
			if a, err := ParseAddress(m, 1); err != nil || a != m {
				t.Fatalf("%q is not normalised (%q, %v)", m, a, err)
			}
		}
	})
}

func TestDNSLookupStartup(t *testing.T) {
	const self = "distro-1.distro-headless.ns.svc.cluster.local:8848"
	acceptSelf := func(list []string) error {
		if !slices.Contains(list, self) {
			return errors.New("this node is not listed yet")
		}
		return nil
	}
	t.Run("waits until self is published", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newFakeResolver() // NXDOMAIN first: the Service is new
			l, err := DNS(DNSConfig{Name: testSRV, Resolver: r, Accept: acceptSelf})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				time.Sleep(2500 * time.Millisecond)
				r.setSRV(testSRV, "distro-0.distro-headless.ns.svc.cluster.local:8848")
				time.Sleep(3 * time.Second)
				r.setSRV(testSRV, "distro-0.distro-headless.ns.svc.cluster.local:8848", self)
			}()
			start := time.Now()
			rec := &listRecorder{}
			if err := l.Start(ctx, rec.onChange); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 5500*time.Millisecond || d > 7*time.Second {
				t.Fatalf("Start returned after %v; want soon after self appeared at 5.5 s", d)
			}
			if got := rec.all(); len(got) != 1 || !slices.Contains(got[0], self) {
				t.Fatalf("lists %q", got)
			}
		})
	})
	t.Run("gives up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newFakeResolver()
			r.setSRV(testSRV, "distro-0.distro-headless.ns.svc.cluster.local:8848")
			l, err := DNS(DNSConfig{Name: testSRV, Resolver: r, Accept: acceptSelf, StartupTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			called := false
			err = l.Start(t.Context(), func([]string) { called = true })
			if err == nil || called || !strings.Contains(err.Error(), "not listed yet") {
				t.Fatalf("Start = %v, called %v; want the Accept error", err, called)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("gave up after %v, past the startup timeout", d)
			}
			synctest.Wait()
			n := r.count()
			advance(time.Minute)
			if r.count() != n {
				t.Fatal("resolving continued after a failed Start")
			}
		})
	})
	t.Run("cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, _ := DNS(DNSConfig{Name: testSRV, Resolver: newFakeResolver()})
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			if err := l.Start(ctx, func([]string) {}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Start = %v, want the context's error", err)
			}
		})
	})
}

// A StatefulSet pod finds itself among SRV members by resolving each target
// to its own pod IP, with no --advertise (self identity rules unchanged).
func TestDNSMembersResolveSelf(t *testing.T) {
	members := []string{
		"distro-0.distro-headless.ns.svc.cluster.local:8848",
		"distro-1.distro-headless.ns.svc.cluster.local:8848",
		"distro-2.distro-headless.ns.svc.cluster.local:8848",
	}
	r := newFakeResolver()
	r.setIPs("distro-0.distro-headless.ns.svc.cluster.local", "10.1.0.10")
	r.setIPs("distro-1.distro-headless.ns.svc.cluster.local", "10.1.0.11")
	r.setIPs("distro-2.distro-headless.ns.svc.cluster.local", "10.1.0.12")
	local := func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.0.11")}, nil
	}
	resolve := func(ctx context.Context, host string) ([]netip.Addr, error) { return r.LookupNetIP(ctx, "ip", host) }
	self, err := resolveSelf("", members, 8848, local, resolve)
	if err != nil || self != members[1] {
		t.Fatalf("self %q, %v; want %q", self, err, members[1])
	}
	// With --advertise set to the pod's stable name it must be listed.
	if _, err := resolveSelf("distro-3.distro-headless.ns.svc.cluster.local", members, 8848, local, resolve); err == nil {
		t.Fatal("an advertised name missing from the DNS list was accepted")
	}
	// Pod IP members (A records) match the pod IP.
	self, err = resolveSelf("", []string{"10.1.0.10:8848", "10.1.0.11:8848"}, 8848, local, resolve)
	if err != nil || self != "10.1.0.11:8848" {
		t.Fatalf("self %q, %v", self, err)
	}
}
