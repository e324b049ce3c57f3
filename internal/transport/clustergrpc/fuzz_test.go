package clustergrpc

import (
	"context"
	"errors"
	"testing"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/clusterauth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// touchHandler reads every decoded request through its getters and acks.
type touchHandler struct{}

func (touchHandler) HandleCall(_ context.Context, _ string, req *clusterpb.Request) (*clusterpb.Response, error) {
	_ = proto.Size(req)
	for _, e := range req.GetSync().GetEntries() {
		_ = e.GetKey().GetName()
		for _, r := range e.GetRecords() {
			_ = r.GetInstance().GetMetadata()
		}
	}
	_ = req.GetForward().GetOp().GetInstance().GetIp()
	return &clusterpb.Response{Kind: &clusterpb.Response_Ack{Ack: &clusterpb.Ack{}}}, nil
}

func (touchHandler) HandleSnapshot(context.Context, string, *clusterpb.SnapshotRequest, func(*clusterpb.SnapshotChunk) error) error {
	return nil
}

// FuzzDecodeRequest feeds arbitrary bytes, under a valid MAC, through the
// server's whole Call path (verify, decode, dispatch) and the client's
// response decoding. Neither may panic, and every server failure must be
// a gRPC status.
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []*clusterpb.Request{
		{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: []*clusterpb.KeyRecords{{Key: key("a"), Records: []*clusterpb.Record{{Instance: &clusterpb.Instance{Ip: "1.1.1.1", Metadata: map[string]string{"a": "b"}}}}}}}}},
		{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{ViewId: "v"}}},
		{Kind: &clusterpb.Request_Forward{Forward: &clusterpb.ForwardRequest{Op: &clusterpb.WriteOp{Fields: []string{"x"}}}}},
		{Kind: &clusterpb.Request_Snapshot{Snapshot: &clusterpb.SnapshotRequest{MaxChunkBytes: 1}}},
		{Kind: &clusterpb.Request_Digest{Digest: &clusterpb.DigestRequest{Buckets: []uint64{1, 2}}}},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x10})

	const self, from = "10.0.0.1:8848", "10.0.0.2:8848"
	mk := func(name string) *clusterauth.Signer {
		// Every iteration is a fresh nonce; lift the cap so long runs do
		// not hit ErrReplayCacheFull (entries still expire after the skew).
		s, err := clusterauth.New(secretA, name, clusterauth.WithMaxNonces(1<<30))
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	serverSigner, clientSigner := mk(self), mk(from)
	srv := NewServer(ServerConfig{Signer: serverSigner, Logger: quiet}, touchHandler{})
	svc := service{s: srv}
	cli := NewClient(ClientConfig{Signer: mk(from), Logger: quiet})
	f.Cleanup(func() { _ = cli.Close() })

	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := svc.Call(context.Background(), clientSigner.Sign(self, body))
		if err != nil {
			if st, ok := status.FromError(err); !ok || st.Code() != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		} else if _, _, err := clientSigner.Verify(out); err != nil {
			t.Fatalf("server reply does not verify: %v", err)
		}
		if _, err := cli.open(self, serverSigner.Sign(from, body)); err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("client open: %v", err)
		}
	})
}
