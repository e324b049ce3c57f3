package clustergrpc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
)

var (
	secretA = []byte("k7Qp2vX9mZr4Lw8TnB3yHc6JdF1sGa5E") // test only
	secretB = []byte("Yu3Nf8Rk1Wq6Zp9Dc4Vm7Lx2Ts5Hb0Gj")
)

var quiet = slog.New(slog.DiscardHandler)

// countingListener counts accepted TCP connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// authCounter records OnAuthFailure reasons.
type authCounter struct {
	mu      sync.Mutex
	reasons map[string]int
}

func (a *authCounter) inc(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reasons == nil {
		a.reasons = map[string]int{}
	}
	a.reasons[reason]++
}

func (a *authCounter) get(reason string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reasons[reason]
}

func (a *authCounter) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range a.reasons {
		n += v
	}
	return n
}

// fakeHandler answers every request kind deterministically.
type fakeHandler struct {
	self      string
	calls     atomic.Int64
	snapshots atomic.Int64
	lastFrom  atomic.Value // string
	// call overrides HandleCall when set.
	call func(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error)
	// snap overrides HandleSnapshot when set; otherwise chunks are sent.
	snap   func(ctx context.Context, from string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error
	chunks int
}

func (h *fakeHandler) HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error) {
	h.calls.Add(1)
	h.lastFrom.Store(from)
	if h.call != nil {
		return h.call(ctx, from, req)
	}
	switch k := req.Kind.(type) {
	case *clusterpb.Request_Sync:
		return &clusterpb.Response{Kind: &clusterpb.Response_Ack{Ack: &clusterpb.Ack{}}}, nil
	case *clusterpb.Request_Probe:
		return &clusterpb.Response{Kind: &clusterpb.Response_Probe{Probe: &clusterpb.ProbeReply{
			Node: h.self, Ready: true, ViewId: k.Probe.ViewId}}}, nil
	case *clusterpb.Request_Digest:
		var diff []uint32
		for i, b := range k.Digest.Buckets {
			if b%2 == 1 {
				diff = append(diff, uint32(i))
			}
		}
		return &clusterpb.Response{Kind: &clusterpb.Response_Digest{Digest: &clusterpb.DigestReply{Differing: diff}}}, nil
	case *clusterpb.Request_KeyDigest:
		r := &clusterpb.KeyDigestReply{}
		for _, kd := range k.KeyDigest.Keys {
			r.Want = append(r.Want, kd.Key)
		}
		r.Push = []*clusterpb.KeyRecords{{Key: &clusterpb.ServiceKey{Namespace: "public", Name: "pushed"}}}
		return &clusterpb.Response{Kind: &clusterpb.Response_KeyDigest{KeyDigest: r}}, nil
	case *clusterpb.Request_Fetch:
		r := &clusterpb.FetchReply{}
		for _, key := range k.Fetch.Keys {
			r.Entries = append(r.Entries, &clusterpb.KeyRecords{Key: key, Records: []*clusterpb.Record{{
				Instance: &clusterpb.Instance{Ip: "10.0.0.1", Port: 80}, Stamp: 7, Origin: h.self}}})
		}
		return &clusterpb.Response{Kind: &clusterpb.Response_Fetch{Fetch: r}}, nil
	case *clusterpb.Request_Forward:
		return &clusterpb.Response{Kind: &clusterpb.Response_Forward{Forward: &clusterpb.ForwardReply{
			Status: 200, Message: k.Forward.Op.GetInstance().GetIp(), ClientBeatInterval: 5000}}}, nil
	}
	return nil, fmt.Errorf("fake handler: unexpected %T", req.Kind)
}

func (h *fakeHandler) HandleSnapshot(ctx context.Context, from string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
	h.snapshots.Add(1)
	h.lastFrom.Store(from)
	if h.snap != nil {
		return h.snap(ctx, from, req, send)
	}
	for i := range h.chunks {
		ch := &clusterpb.SnapshotChunk{Last: i == h.chunks-1, Entries: []*clusterpb.KeyRecords{{
			Key: &clusterpb.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i)}}}}
		if err := send(ch); err != nil {
			return err
		}
	}
	return nil
}

// testNode is one member's server side.
type testNode struct {
	name   string
	signer *clusterauth.Signer
	lis    *countingListener
	srv    *Server
	h      *fakeHandler
	auth   *authCounter
}

type nodeOpt func(*ServerConfig)

// startNode runs a server on 127.0.0.1:0 whose member name maps to its
// port under the default offset (HTTP port = cluster port - 1001).
func startNode(t testing.TB, secret []byte, opts ...nodeOpt) *testNode {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	n := &testNode{name: fmt.Sprintf("127.0.0.1:%d", port-DefaultPortOffset), lis: &countingListener{Listener: l}, auth: &authCounter{}}
	if secret == nil {
		n.signer = clusterauth.Insecure(n.name)
	} else if n.signer, err = clusterauth.New(secret, n.name); err != nil {
		t.Fatal(err)
	}
	n.h = &fakeHandler{self: n.name, chunks: 3}
	cfg := ServerConfig{Signer: n.signer, Logger: quiet, OnAuthFailure: n.auth.inc}
	for _, o := range opts {
		o(&cfg)
	}
	n.srv = NewServer(cfg, n.h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.srv.Serve(n.lis)
	}()
	t.Cleanup(func() {
		n.srv.Stop()
		<-done
	})
	return n
}

// newTestClient returns a client named name (a member that is not the
// server), closed at cleanup.
func newTestClient(t testing.TB, secret []byte, name string, mut ...func(*ClientConfig)) (*Client, *authCounter) {
	t.Helper()
	var s *clusterauth.Signer
	if secret == nil {
		s = clusterauth.Insecure(name)
	} else {
		var err error
		if s, err = clusterauth.New(secret, name); err != nil {
			t.Fatal(err)
		}
	}
	ac := &authCounter{}
	cfg := ClientConfig{Signer: s, Logger: quiet, OnAuthFailure: ac.inc}
	for _, m := range mut {
		m(&cfg)
	}
	c := NewClient(cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c, ac
}
