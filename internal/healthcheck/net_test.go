package healthcheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/testutil"
)

// realNode is a standalone node (store, registry, checker with the real
// prober) on real time, for checks of real loopback listeners.
func realNode(t *testing.T) (*store.Store, *registry.Local) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New("n1", hlc.New(time.Now))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, log)
	cfg := DefaultConfig()
	cfg.Interval, cfg.Timeout, cfg.Threshold, cfg.Tick = 100*time.Millisecond, time.Second, 2, 20*time.Millisecond
	c := New(cfg, st, local, local, nil, clock.Real{}, log, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return st, local
}

func storedHealth(st *store.Store, k model.ServiceKey, ik model.InstanceKey) (bool, error) {
	recs, _ := st.Records(k, []model.InstanceKey{ik})
	if len(recs) != 1 || !recs[0].Alive() {
		return false, fmt.Errorf("instance %s not stored", ik)
	}
	return recs[0].Healthy(), nil
}

func waitHealth(t *testing.T, st *store.Store, k model.ServiceKey, ik model.InstanceKey, want bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		got, err := storedHealth(st, k, ik)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("healthy = %v, want %v", got, want)
		}
		return nil
	})
}

// listenOn opens a TCP listener on a given loopback port, retrying while
// the port is still held by the socket that just closed.
func listenOn(t *testing.T, port int) net.Listener {
	t.Helper()
	var l net.Listener
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() (err error) {
		l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		return err
	})
	return l
}

// TestPortClosesAndReopens: a persistent instance whose TCP port closes
// turns unhealthy, and healthy again when the port reopens.
func TestPortClosesAndReopens(t *testing.T) {
	st, local := realNode(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	go serveAccept(l, &accepted)
	host, port := hostPort(t, l.Addr().String())
	in := model.Instance{IP: host, Port: port, Cluster: model.DefaultCluster, Weight: 1, Healthy: true, Enabled: true}
	ctx := context.Background()
	for _, op := range []*registry.Op{
		{Kind: registry.OpRegister, Key: svcKey, Instance: in},
		{Kind: registry.OpUpdateCluster, Key: svcKey, ClusterName: model.DefaultCluster, Cluster: tcpCluster()},
	} {
		if _, err := local.Apply(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	ik := in.Key()
	// Several checks of the open port (threshold 2) leave it healthy.
	waitChecks(t, &accepted, 4)
	if ok, err := storedHealth(st, svcKey, ik); err != nil || !ok {
		t.Fatalf("after %d passing checks: healthy %v, %v", accepted.Load(), ok, err)
	}
	l.Close()
	waitHealth(t, st, svcKey, ik, false)
	l = listenOn(t, port)
	defer l.Close()
	go serveAccept(l, &accepted)
	waitHealth(t, st, svcKey, ik, true)
}

// serveAccept counts and closes the connections l accepts, each after a
// minimal HTTP 200 answer (so that TCP and HTTP checks of it pass).
func serveAccept(l net.Listener, accepted *atomic.Int32) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		accepted.Add(1)
		go answerOK(c)
	}
}

// answerOK reads a request's head (or whatever arrives before the client
// closes, as a TCP check does) and only then answers 200: an answer
// written before the request makes net/http's client report an
// unsolicited response on an idle connection and fail the check.
func answerOK(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 0, 1024)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) && len(buf) < cap(buf) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return
		}
	}
	_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// waitChecks waits until n checks reached the instance.
func waitChecks(t *testing.T, checks *atomic.Int32, n int32) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got := checks.Load(); got < n {
			return fmt.Errorf("%d checks so far, want %d", got, n)
		}
		return nil
	})
}

// TestHTTPCheckEndToEnd: an HTTP checker with a path and an expected code
// follows what the instance's endpoint answers.
func TestHTTPCheckEndToEnd(t *testing.T) {
	st, local := realNode(t)
	var status, hits atomic.Int32
	status.Store(200)
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-Probe") != "1" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(int(status.Load()))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	defer srv.Close()
	host, port := hostPort(t, l.Addr().String())
	// The instance registers another port; the cluster checks checkPort.
	in := model.Instance{IP: host, Port: 1, Cluster: "web", Weight: 1, Healthy: true, Enabled: true}
	cm := model.ClusterMeta{CheckPort: port, HealthChecker: model.HealthChecker{Type: model.CheckHTTP, Path: "/health", Headers: "X-Probe:1", ExpectedCode: 200}}
	for _, op := range []*registry.Op{
		{Kind: registry.OpRegister, Key: svcKey, Instance: in},
		{Kind: registry.OpUpdateCluster, Key: svcKey, ClusterName: "web", Cluster: cm},
	} {
		if _, err := local.Apply(context.Background(), op); err != nil {
			t.Fatal(err)
		}
	}
	waitChecks(t, &hits, 4)
	if ok, err := storedHealth(st, svcKey, in.Key()); err != nil || !ok {
		t.Fatalf("after %d passing checks: healthy %v, %v", hits.Load(), ok, err)
	}
	status.Store(503)
	waitHealth(t, st, svcKey, in.Key(), false)
	status.Store(200)
	waitHealth(t, st, svcKey, in.Key(), true)
}
