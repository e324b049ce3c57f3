package clustergrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// engineTransport and engineHandler are copies of the interfaces in
// internal/distro/transport.go; the assertions below keep this package
// conformant without importing the engine.
type engineTransport interface {
	Call(ctx context.Context, peer string, req *clusterpb.Request) (*clusterpb.Response, error)
	Snapshot(ctx context.Context, peer string, req *clusterpb.SnapshotRequest, fn func(*clusterpb.SnapshotChunk) error) error
}

type engineHandler interface {
	HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error)
	HandleSnapshot(ctx context.Context, from string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error
}

var (
	_ engineTransport = (*Client)(nil)
	_ Handler         = engineHandler(nil) // same method set both ways
	_ engineHandler   = Handler(nil)
)

const clientName = "127.0.0.9:8848"

func key(name string) *clusterpb.ServiceKey {
	return &clusterpb.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name}
}

func TestRoundTripEveryKind(t *testing.T) {
	n := startNode(t, secretA)
	c, _ := newTestClient(t, secretA, clientName)
	ctx := context.Background()
	tests := []struct {
		name  string
		req   *clusterpb.Request
		check func(t *testing.T, r *clusterpb.Response)
	}{
		{"sync", &clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: []*clusterpb.KeyRecords{{
			Key: key("a"), Records: []*clusterpb.Record{{Instance: &clusterpb.Instance{Ip: "1.2.3.4", Port: 80, Metadata: map[string]string{"k": "v"}}, Stamp: 1 << 60}}}}}}},
			func(t *testing.T, r *clusterpb.Response) {
				if r.GetAck() == nil {
					t.Fatalf("got %v", r)
				}
			}},
		{"probe", &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{ViewId: "v1", Ready: true}}},
			func(t *testing.T, r *clusterpb.Response) {
				p := r.GetProbe()
				if p.GetNode() != n.name || p.GetViewId() != "v1" || !p.GetReady() {
					t.Fatalf("got %v", r)
				}
			}},
		{"digest", &clusterpb.Request{Kind: &clusterpb.Request_Digest{Digest: &clusterpb.DigestRequest{BucketCount: 4, Buckets: []uint64{2, 3, 4, 5}}}},
			func(t *testing.T, r *clusterpb.Response) {
				if d := r.GetDigest().GetDiffering(); len(d) != 2 || d[0] != 1 || d[1] != 3 {
					t.Fatalf("got %v", r)
				}
			}},
		{"key_digest", &clusterpb.Request{Kind: &clusterpb.Request_KeyDigest{KeyDigest: &clusterpb.KeyDigestRequest{
			Buckets: []uint32{1}, Keys: []*clusterpb.KeyDigest{{Key: key("x"), Digest: 9}}}}},
			func(t *testing.T, r *clusterpb.Response) {
				kd := r.GetKeyDigest()
				if len(kd.GetWant()) != 1 || kd.Want[0].Name != "x" || kd.Push[0].Key.Name != "pushed" {
					t.Fatalf("got %v", r)
				}
			}},
		{"fetch", &clusterpb.Request{Kind: &clusterpb.Request_Fetch{Fetch: &clusterpb.FetchRequest{Keys: []*clusterpb.ServiceKey{key("f1"), key("f2")}}}},
			func(t *testing.T, r *clusterpb.Response) {
				e := r.GetFetch().GetEntries()
				if len(e) != 2 || e[1].Key.Name != "f2" || e[0].Records[0].Origin != n.name {
					t.Fatalf("got %v", r)
				}
			}},
		{"forward", &clusterpb.Request{Kind: &clusterpb.Request_Forward{Forward: &clusterpb.ForwardRequest{Op: &clusterpb.WriteOp{
			Kind: 1, Key: key("w"), Instance: &clusterpb.Instance{Ip: "9.9.9.9", Port: 1}}}}},
			func(t *testing.T, r *clusterpb.Response) {
				f := r.GetForward()
				if f.GetStatus() != 200 || f.GetMessage() != "9.9.9.9" || f.GetClientBeatInterval() != 5000 {
					t.Fatalf("got %v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := n.h.calls.Load()
			r, err := c.Call(ctx, n.name, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			if n.h.calls.Load() != before+1 || n.h.lastFrom.Load() != clientName {
				t.Fatalf("handler calls %d->%d from %v", before, n.h.calls.Load(), n.h.lastFrom.Load())
			}
		})
	}
	t.Run("snapshot", func(t *testing.T) {
		var got []string
		err := c.Snapshot(ctx, n.name, &clusterpb.SnapshotRequest{}, func(ch *clusterpb.SnapshotChunk) error {
			got = append(got, ch.Entries[0].Key.Name)
			return nil
		})
		if err != nil || strings.Join(got, ",") != "svc-0,svc-1,svc-2" {
			t.Fatalf("snapshot = %v, %v", got, err)
		}
	})
	if n.auth.total() != 0 {
		t.Fatalf("auth failures: %v", n.auth.reasons)
	}
}

func TestForgedEnvelopeRejected(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	n := startNode(t, secretA, func(c *ServerConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
		c.AuthLogInterval = time.Hour
	})
	forger, _ := newTestClient(t, secretB, clientName)
	probe := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}
	for i := range 50 {
		_, err := forger.Call(context.Background(), n.name, probe)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("call %d: err = %v, want Unauthenticated", i, err)
		}
		if IsRefused(err) {
			t.Fatal("auth failure reported as refused")
		}
	}
	err := forger.Snapshot(context.Background(), n.name, nil, func(*clusterpb.SnapshotChunk) error {
		t.Fatal("chunk delivered to a forger")
		return nil
	})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("snapshot err = %v", err)
	}
	if n.h.calls.Load() != 0 || n.h.snapshots.Load() != 0 {
		t.Fatalf("handler reached: %d calls, %d snapshots", n.h.calls.Load(), n.h.snapshots.Load())
	}
	if got := n.auth.get("bad_mac"); got != 51 {
		t.Fatalf("bad_mac counted %d times, want 51", got)
	}
	logMu.Lock()
	lines := strings.Count(logs.String(), "cluster call refused")
	logMu.Unlock()
	if lines != 1 {
		t.Fatalf("%d auth log lines for 51 failures, want 1 (rate-limited):\n%s", lines, logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// rawStub dials n directly, bypassing Client, to send hand-made envelopes.
func rawStub(t *testing.T, n *testNode) clusterpb.ClusterClient {
	t.Helper()
	cc, err := grpc.NewClient(n.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return clusterpb.NewClusterClient(cc)
}

func signer(t *testing.T, secret []byte, name string) *clusterauth.Signer {
	t.Helper()
	s, err := clusterauth.New(secret, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReplayedEnvelopeRejected(t *testing.T) {
	n := startNode(t, secretA)
	stub := rawStub(t, n)
	body, _ := proto.Marshal(&clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{}}})
	env := signer(t, secretA, clientName).Sign(n.name, body)
	ctx := context.Background()
	if _, err := stub.Call(ctx, env); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	_, err := stub.Call(ctx, env)
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("replay: err = %v", err)
	}
	// A captured Call envelope replayed on the Snapshot method is also refused.
	stream, err := stub.Snapshot(ctx, env)
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("replay on Snapshot: err = %v", err)
	}
	if n.h.calls.Load() != 1 || n.h.snapshots.Load() != 0 || n.auth.get("replay") != 2 {
		t.Fatalf("handler calls %d, snapshots %d, replay count %d", n.h.calls.Load(), n.h.snapshots.Load(), n.auth.get("replay"))
	}
}

func TestStaleAndMalformedEnvelopes(t *testing.T) {
	n := startNode(t, secretA)
	stub := rawStub(t, n)
	body, _ := proto.Marshal(&clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{}}})
	old, err := clusterauth.New(secretA, clientName, clusterauth.WithClock(func() time.Time { return time.Now().Add(-time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]*clusterpb.Envelope{
		"stale":     old.Sign(n.name, body),
		"malformed": {From: clientName, Body: body},
		"self":      signer(t, secretA, n.name).Sign(n.name, body),
	} {
		_, err := stub.Call(context.Background(), env)
		if status.Code(err) != codes.Unauthenticated || n.auth.get(name) != 1 {
			t.Errorf("%s: err = %v, counted %d", name, err, n.auth.get(name))
		}
	}
	if n.h.calls.Load() != 0 {
		t.Fatal("handler reached")
	}
}

func TestNonMemberRejected(t *testing.T) {
	n := startNode(t, secretA, func(c *ServerConfig) {
		c.IsMember = func(m string) bool { return m == "10.0.0.1:8848" }
	})
	c, _ := newTestClient(t, secretA, clientName)
	_, err := c.Call(context.Background(), n.name, &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("err = %v", err)
	}
	if n.h.calls.Load() != 0 || n.auth.get("not_member") != 1 {
		t.Fatalf("handler calls %d, not_member %d", n.h.calls.Load(), n.auth.get("not_member"))
	}
}

func TestInvalidRequests(t *testing.T) {
	n := startNode(t, secretA)
	stub := rawStub(t, n)
	s := signer(t, secretA, clientName)
	unknownKind := protowire.AppendTag(nil, 99, protowire.BytesType)
	unknownKind = protowire.AppendBytes(unknownKind, []byte{})
	snapReq, _ := proto.Marshal(&clusterpb.Request{Kind: &clusterpb.Request_Snapshot{Snapshot: &clusterpb.SnapshotRequest{}}})
	for name, body := range map[string][]byte{
		"empty":        nil,
		"unknown kind": unknownKind,
		"garbage":      {0xff, 0xff, 0xff},
		"snapshot":     snapReq,
	} {
		_, err := stub.Call(context.Background(), s.Sign(n.name, body))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
	probe, _ := proto.Marshal(&clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}})
	stream, err := stub.Snapshot(context.Background(), s.Sign(n.name, probe))
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("probe on Snapshot: err = %v", err)
	}
	if n.h.calls.Load() != 0 || n.h.snapshots.Load() != 0 || n.auth.total() != 0 {
		t.Fatal("handler reached or auth failure counted")
	}
	// The client refuses to send them in the first place.
	c, _ := newTestClient(t, secretA, clientName)
	for _, req := range []*clusterpb.Request{nil, {}, {Kind: &clusterpb.Request_Snapshot{}}} {
		if _, err := c.Call(context.Background(), n.name, req); !errors.Is(err, ErrProtocol) {
			t.Errorf("Call(%v) = %v, want ErrProtocol", req, err)
		}
	}
}

func TestHandlerErrorsMapToStatus(t *testing.T) {
	n := startNode(t, secretA)
	c, _ := newTestClient(t, secretA, clientName)
	probe := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}
	tests := []struct {
		name string
		ret  func() (*clusterpb.Response, error)
		want codes.Code
	}{
		{"status passes through", func() (*clusterpb.Response, error) {
			return nil, status.Error(codes.FailedPrecondition, "not ready")
		}, codes.FailedPrecondition},
		{"wrapped status passes through", func() (*clusterpb.Response, error) {
			return nil, fmt.Errorf("engine: %w", status.Error(codes.ResourceExhausted, "busy"))
		}, codes.ResourceExhausted},
		{"plain error is internal", func() (*clusterpb.Response, error) { return nil, errors.New("boom") }, codes.Internal},
		{"nil response is internal", func() (*clusterpb.Response, error) { return nil, nil }, codes.Internal},
		{"empty response is internal", func() (*clusterpb.Response, error) { return &clusterpb.Response{}, nil }, codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.h.call = func(context.Context, string, *clusterpb.Request) (*clusterpb.Response, error) { return tt.ret() }
			_, err := c.Call(context.Background(), n.name, probe)
			if status.Code(err) != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHandlerPanicRecovered(t *testing.T) {
	n := startNode(t, secretA)
	n.h.call = func(context.Context, string, *clusterpb.Request) (*clusterpb.Response, error) { panic("poison") }
	n.h.snap = func(context.Context, string, *clusterpb.SnapshotRequest, func(*clusterpb.SnapshotChunk) error) error {
		panic("poison")
	}
	c, _ := newTestClient(t, secretA, clientName)
	probe := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}
	if _, err := c.Call(context.Background(), n.name, probe); status.Code(err) != codes.Internal {
		t.Fatalf("err = %v", err)
	}
	if err := c.Snapshot(context.Background(), n.name, nil, func(*clusterpb.SnapshotChunk) error { return nil }); status.Code(err) != codes.Internal {
		t.Fatalf("snapshot err = %v", err)
	}
	n.h.call = nil
	if _, err := c.Call(context.Background(), n.name, probe); err != nil {
		t.Fatalf("server unusable after a panic: %v", err)
	}
}

func TestDeadlinePropagates(t *testing.T) {
	n := startNode(t, secretA)
	c, _ := newTestClient(t, secretA, clientName)
	sawCancel := make(chan struct{})
	n.h.call = func(ctx context.Context, _ string, _ *clusterpb.Request) (*clusterpb.Response, error) {
		<-ctx.Done()
		close(sawCancel)
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, n.name, &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}})
	if status.Code(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-sawCancel:
	case <-time.After(5 * time.Second):
		t.Fatal("server handler never saw the deadline")
	}
}

func TestSnapshotManyChunksInOrder(t *testing.T) {
	n := startNode(t, secretA)
	n.h.chunks = 200
	c, _ := newTestClient(t, secretA, clientName)
	var got []*clusterpb.SnapshotChunk
	err := c.Snapshot(context.Background(), n.name, &clusterpb.SnapshotRequest{MaxChunkBytes: 1 << 16}, func(ch *clusterpb.SnapshotChunk) error {
		got = append(got, ch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 {
		t.Fatalf("%d chunks", len(got))
	}
	for i, ch := range got {
		if ch.Seq != uint64(i) || ch.Entries[0].Key.Name != fmt.Sprintf("svc-%d", i) || ch.Last != (i == 199) {
			t.Fatalf("chunk %d: %v", i, ch)
		}
	}
}

// TestSnapshotLargerThanMessageLimit streams a snapshot >10x the gRPC
// message limit on both sides (hazard H5: no size cliff).
func TestSnapshotLargerThanMessageLimit(t *testing.T) {
	const msgLimit = 128 << 10
	n := startNode(t, secretA, func(c *ServerConfig) { c.MaxMsgBytes = msgLimit; c.MaxChunkBytes = msgLimit / 2 })
	const keys, perKey = 200, 150
	n.h.snap = func(ctx context.Context, _ string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
		ck := clusterpb.NewChunker(clusterpb.ChunkBudget(req.MaxChunkBytes), send)
		for k := range keys {
			kr := &clusterpb.KeyRecords{Key: key(fmt.Sprintf("svc-%d", k)), Meta: &clusterpb.ServiceMeta{Stamp: 1}}
			for i := range perKey {
				kr.Records = append(kr.Records, &clusterpb.Record{Stamp: uint64(i), Origin: "n1:8848",
					Instance: &clusterpb.Instance{InstanceId: fmt.Sprintf("10.1.%d.%d#80#DEFAULT", k%256, i), Ip: "10.1.2.3", Port: 80,
						Metadata: map[string]string{"zone": "a", "version": "1.2.3"}}})
			}
			if err := ck.Add(kr); err != nil {
				return err
			}
		}
		return ck.Close()
	}
	c, _ := newTestClient(t, secretA, clientName, func(c *ClientConfig) { c.MaxMsgBytes = msgLimit })
	var total, records, chunks int
	err := c.Snapshot(context.Background(), n.name, &clusterpb.SnapshotRequest{MaxChunkBytes: 64 << 10}, func(ch *clusterpb.SnapshotChunk) error {
		chunks++
		total += proto.Size(ch)
		for _, e := range ch.Entries {
			records += len(e.Records)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records != keys*perKey || total < 10*msgLimit {
		t.Fatalf("%d records in %d chunks, %d bytes", records, chunks, total)
	}
	t.Logf("%d records, %d chunks, %.1f MiB through a %d KiB message limit", records, chunks, float64(total)/(1<<20), msgLimit>>10)
}

func TestSnapshotEndsWithoutLast(t *testing.T) {
	n := startNode(t, secretA)
	n.h.snap = func(_ context.Context, _ string, _ *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
		return send(&clusterpb.SnapshotChunk{Entries: []*clusterpb.KeyRecords{{Key: key("only")}}})
	}
	c, _ := newTestClient(t, secretA, clientName)
	var got []*clusterpb.SnapshotChunk
	err := c.Snapshot(context.Background(), n.name, nil, func(ch *clusterpb.SnapshotChunk) error {
		got = append(got, ch)
		return nil
	})
	if err != nil || len(got) != 2 || !got[1].Last || len(got[1].Entries) != 0 {
		t.Fatalf("err %v, chunks %v", err, got)
	}
}

func TestSnapshotHandlerErrorAndOversizedChunk(t *testing.T) {
	n := startNode(t, secretA, func(c *ServerConfig) { c.MaxChunkBytes = 1024 })
	var sendErr error
	n.h.snap = func(_ context.Context, _ string, _ *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
		if err := send(&clusterpb.SnapshotChunk{Entries: []*clusterpb.KeyRecords{{Key: key("a")}}}); err != nil {
			return err
		}
		sendErr = send(&clusterpb.SnapshotChunk{Entries: []*clusterpb.KeyRecords{{Key: key(strings.Repeat("x", 2000))}}})
		return sendErr
	}
	c, _ := newTestClient(t, secretA, clientName)
	got := 0
	err := c.Snapshot(context.Background(), n.name, nil, func(*clusterpb.SnapshotChunk) error { got++; return nil })
	if status.Code(err) != codes.Internal || got != 1 || !errors.Is(sendErr, ErrChunkTooLarge) {
		t.Fatalf("err = %v, chunks %d, send err %v", err, got, sendErr)
	}
}

func TestSnapshotCancellation(t *testing.T) {
	n := startNode(t, secretA)
	handlerDone := make(chan error, 1)
	n.h.snap = func(ctx context.Context, _ string, _ *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
		for {
			if err := send(&clusterpb.SnapshotChunk{Entries: []*clusterpb.KeyRecords{{Key: key("k")}}}); err != nil {
				handlerDone <- err
				return err
			}
		}
	}
	c, _ := newTestClient(t, secretA, clientName)
	stop := errors.New("enough")
	got := 0
	err := c.Snapshot(context.Background(), n.name, nil, func(*clusterpb.SnapshotChunk) error {
		if got++; got == 5 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("err = %v, want fn's error", err)
	}
	select {
	case <-handlerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("server kept streaming after the client gave up")
	}

	// Caller's ctx cancelled mid-stream.
	ctx, cancel := context.WithCancel(context.Background())
	got = 0
	err = c.Snapshot(ctx, n.name, nil, func(*clusterpb.SnapshotChunk) error {
		if got++; got == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case <-handlerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("server kept streaming after ctx was cancelled")
	}
}

func TestSnapshotIdleTimeout(t *testing.T) {
	n := startNode(t, secretA)
	n.h.snap = func(ctx context.Context, _ string, _ *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
		if err := send(&clusterpb.SnapshotChunk{}); err != nil {
			return err
		}
		<-ctx.Done() // stall
		return ctx.Err()
	}
	c, _ := newTestClient(t, secretA, clientName, func(c *ClientConfig) { c.SnapshotIdleTimeout = 200 * time.Millisecond })
	start := time.Now()
	err := c.Snapshot(context.Background(), n.name, nil, func(*clusterpb.SnapshotChunk) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no chunk for") || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestPeerDownIsRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	_ = l.Close() // nothing listens there now
	peer := fmt.Sprintf("127.0.0.1:%d", addr.Port-DefaultPortOffset)
	c, _ := newTestClient(t, secretA, clientName, func(c *ClientConfig) { c.ReconnectMaxDelay = 200 * time.Millisecond })
	probe := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}
	for i := range 3 { // first dial, and calls during reconnect backoff
		start := time.Now()
		_, err := c.Call(context.Background(), peer, probe)
		if !IsRefused(err) || status.Code(err) != codes.Unavailable {
			t.Fatalf("call %d: err = %v, want refused", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("refusal took %v", d)
		}
	}
	if err := c.Snapshot(context.Background(), peer, nil, func(*clusterpb.SnapshotChunk) error { return nil }); !IsRefused(err) {
		t.Fatalf("snapshot err = %v, want refused", err)
	}

	// The peer comes back on the same port; the same client reaches it.
	l2, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Skipf("port reused meanwhile: %v", err)
	}
	s := signer(t, secretA, peer)
	srv := NewServer(ServerConfig{Signer: s, Logger: quiet}, &fakeHandler{self: peer})
	go func() { _ = srv.Serve(l2) }()
	defer srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Call(context.Background(), peer, probe)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer never reached after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIsRefusedOnlyForRefusals(t *testing.T) {
	for _, err := range []error{nil, errors.New("x"), status.Error(codes.Unavailable, "transport is closing"), context.DeadlineExceeded} {
		if IsRefused(err) {
			t.Errorf("IsRefused(%v) = true", err)
		}
	}
}

func TestConcurrentCallsShareOneConnection(t *testing.T) {
	n1 := startNode(t, secretA)
	n2 := startNode(t, secretA)
	c, _ := newTestClient(t, secretA, clientName)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			peer := []*testNode{n1, n2}[g%2]
			for i := range 25 {
				r, err := c.Call(context.Background(), peer.name, &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{ViewId: fmt.Sprint(g, i)}}})
				if err != nil || r.GetProbe().GetViewId() != fmt.Sprint(g, i) || r.GetProbe().GetNode() != peer.name {
					failures.Add(1)
					t.Errorf("g%d i%d: %v %v", g, i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if failures.Load() > 0 {
		return
	}
	if n1.h.calls.Load() != 400 || n2.h.calls.Load() != 400 {
		t.Fatalf("handler calls %d, %d", n1.h.calls.Load(), n2.h.calls.Load())
	}
	if a1, a2 := n1.lis.accepted.Load(), n2.lis.accepted.Load(); a1 != 1 || a2 != 1 {
		t.Fatalf("accepted connections %d, %d; want 1 per peer", a1, a2)
	}
	c.mu.Lock()
	conns := len(c.peers)
	pc := c.peers[n1.name]
	c.mu.Unlock()
	if conns != 2 {
		t.Fatalf("%d cached conns", conns)
	}
	if again, _ := c.peer(n1.name); again != pc {
		t.Fatal("conn not reused")
	}
}

func TestRetainAndClose(t *testing.T) {
	n1 := startNode(t, secretA)
	n2 := startNode(t, secretA)
	c, _ := newTestClient(t, secretA, clientName)
	probe := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}
	for _, n := range []*testNode{n1, n2} {
		if _, err := c.Call(context.Background(), n.name, probe); err != nil {
			t.Fatal(err)
		}
	}
	dropped, _ := c.peer(n2.name)
	c.Retain([]string{n1.name})
	if st := dropped.cc.GetState(); st != connectivity.Shutdown {
		t.Fatalf("dropped conn state %v", st)
	}
	c.mu.Lock()
	_, has1 := c.peers[n1.name]
	_, has2 := c.peers[n2.name]
	c.mu.Unlock()
	if !has1 || has2 {
		t.Fatalf("after Retain: n1 %v n2 %v", has1, has2)
	}
	// A dropped peer that is called again gets a fresh connection.
	if _, err := c.Call(context.Background(), n2.name, probe); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), n1.name, probe); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := c.Snapshot(context.Background(), n1.name, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot after Close: %v", err)
	}
}

// evilServer answers with whatever envelope reply returns.
type evilServer struct {
	clusterpb.UnimplementedClusterServer
	reply func() *clusterpb.Envelope
}

func (e evilServer) Call(context.Context, *clusterpb.Envelope) (*clusterpb.Envelope, error) {
	return e.reply(), nil
}

func (e evilServer) Snapshot(_ *clusterpb.Envelope, stream grpc.ServerStreamingServer[clusterpb.Envelope]) error {
	return stream.Send(e.reply())
}

func TestClientVerifiesResponses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer := fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port-DefaultPortOffset)
	var reply atomic.Value // func() *clusterpb.Envelope
	gs := grpc.NewServer()
	clusterpb.RegisterClusterServer(gs, evilServer{reply: func() *clusterpb.Envelope { return reply.Load().(func() *clusterpb.Envelope)() }})
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()

	ack, _ := proto.Marshal(&clusterpb.Response{Kind: &clusterpb.Response_Ack{Ack: &clusterpb.Ack{}}})
	chunk, _ := proto.Marshal(&clusterpb.Response{Kind: &clusterpb.Response_Chunk{Chunk: &clusterpb.SnapshotChunk{Seq: 5}}})
	good := signer(t, secretA, peer)
	tests := []struct {
		name   string
		env    func() *clusterpb.Envelope
		want   error
		reason string
	}{
		{"forged", func() *clusterpb.Envelope { return signer(t, secretB, peer).Sign(clientName, ack) }, clusterauth.ErrBadMAC, "bad_mac"},
		{"wrong peer", func() *clusterpb.Envelope { return signer(t, secretA, "10.0.0.7:8848").Sign(clientName, ack) }, ErrWrongPeer, "wrong_peer"},
		{"garbage body", func() *clusterpb.Envelope { return good.Sign(clientName, []byte{0xff}) }, ErrProtocol, ""},
		{"empty response", func() *clusterpb.Envelope { return good.Sign(clientName, nil) }, ErrProtocol, ""},
		{"chunk to a call", func() *clusterpb.Envelope { return good.Sign(clientName, chunk) }, ErrProtocol, ""},
	}
	c, ac := newTestClient(t, secretA, clientName)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply.Store(tt.env)
			_, err := c.Call(context.Background(), peer, &clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{}}})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.reason != "" && ac.get(tt.reason) == 0 {
				t.Fatalf("reason %q not counted: %v", tt.reason, ac.reasons)
			}
		})
	}
	t.Run("snapshot out of order", func(t *testing.T) {
		reply.Store(func() *clusterpb.Envelope { return good.Sign(clientName, chunk) })
		err := c.Snapshot(context.Background(), peer, nil, func(*clusterpb.SnapshotChunk) error {
			t.Fatal("out-of-order chunk delivered")
			return nil
		})
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("snapshot truncated", func(t *testing.T) {
		first, _ := proto.Marshal(&clusterpb.Response{Kind: &clusterpb.Response_Chunk{Chunk: &clusterpb.SnapshotChunk{}}})
		reply.Store(func() *clusterpb.Envelope { return good.Sign(clientName, first) })
		err := c.Snapshot(context.Background(), peer, nil, func(*clusterpb.SnapshotChunk) error { return nil })
		if !errors.Is(err, ErrProtocol) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestInsecureMode(t *testing.T) {
	n := startNode(t, nil)
	c, _ := newTestClient(t, nil, clientName)
	if _, err := c.Call(context.Background(), n.name, &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}); err != nil {
		t.Fatal(err)
	}
	// A secure node refuses an insecure one.
	secure := startNode(t, secretA)
	if _, err := c.Call(context.Background(), secure.name, &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("err = %v", err)
	}
}

func TestClusterAddr(t *testing.T) {
	tests := []struct {
		member string
		offset int
		want   string
		ok     bool
	}{
		{"10.0.0.1:8848", 1001, "10.0.0.1:9849", true},
		{"node-a.example:8848", 1001, "node-a.example:9849", true},
		{"[::1]:8848", 1001, "[::1]:9849", true},
		{"10.0.0.1:8848", 0, "10.0.0.1:8848", true},
		{"10.0.0.1:65000", 1001, "", false},
		{"10.0.0.1", 1001, "", false},
		{":8848", 1001, "", false},
		{"10.0.0.1:0", 1001, "", false},
		{"10.0.0.1:http", 1001, "", false},
	}
	for _, tt := range tests {
		got, err := ClusterAddr(tt.member, tt.offset)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ClusterAddr(%q, %d) = %q, %v", tt.member, tt.offset, got, err)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	r := rateLimiter{every: time.Second}
	t0 := time.Unix(100, 0)
	if ok, _ := r.allow(t0); !ok {
		t.Fatal("first event suppressed")
	}
	for i := range 10 {
		if ok, _ := r.allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatal("burst not limited")
		}
	}
	if ok, n := r.allow(t0.Add(time.Second)); !ok || n != 10 {
		t.Fatalf("after interval: %v, suppressed %d", ok, n)
	}
}

// A probe reaches a peer that comes back at once, whatever gRPC's reconnect
// backoff has grown to while the peer was away: probes are how a heal is
// noticed.
func TestProbeIgnoresReconnectBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	_ = l.Close()
	peer := fmt.Sprintf("127.0.0.1:%d", addr.Port-DefaultPortOffset)
	c, _ := newTestClient(t, secretA, clientName, func(c *ClientConfig) { c.ReconnectMaxDelay = time.Minute })
	probe := &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{}}}
	// Let the backoff grow (100 ms × 1.6 per attempt): after 5 s of
	// refused attempts the next one is seconds away.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		_, _ = c.Call(context.Background(), peer, probe)
		time.Sleep(100 * time.Millisecond)
	}
	l2, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Skipf("port reused meanwhile: %v", err)
	}
	s := signer(t, secretA, peer)
	srv := NewServer(ServerConfig{Signer: s, Logger: quiet}, &fakeHandler{self: peer})
	go func() { _ = srv.Serve(l2) }()
	defer srv.Stop()
	// Probes every 100 ms reach the peer well within a second.
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.Call(ctx, peer, probe)
		cancel()
		if err == nil {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("probes did not reach the peer that came back within %v: %v", time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
