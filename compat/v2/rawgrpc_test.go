package v2

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/distro-registry/distro/compat/harness"
)

// rawConn is a bare Nacos 2 gRPC client connection (what every SDK does:
// ServerCheckRequest, then ConnectionSetupRequest on the bi-stream), used
// to stand in for many other clients cheaply.
type rawConn struct {
	cc     *grpc.ClientConn
	req    pb.RequestClient
	cancel context.CancelFunc
}

func dialRaw(t *testing.T, n *harness.Node) *rawConn {
	t.Helper()
	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(n.GRPCPort()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rawConn{cc: cc, req: pb.NewRequestClient(cc), cancel: cancel}
	t.Cleanup(func() { cancel(); cc.Close() })
	if typ, body, err := r.call("ServerCheckRequest", map[string]any{"requestId": "", "module": "internal"}); err != nil || typ != "ServerCheckResponse" {
		t.Fatalf("ServerCheckRequest: %s %s %v", typ, body, err)
	}
	stream, err := pb.NewBiRequestStreamClient(cc).RequestBiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // drain server requests (none expected: nothing is subscribed)
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	setup := map[string]any{"requestId": "", "module": "internal", "clientVersion": "compat-raw", "tenant": "",
		"labels": map[string]string{"module": "naming", "source": "sdk"}, "clientAbilities": map[string]any{}}
	if err := stream.Send(payload("ConnectionSetupRequest", setup)); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		typ, body, err := r.call("HealthCheckRequest", map[string]any{"requestId": "", "module": "internal"})
		if err != nil || typ != "HealthCheckResponse" {
			return fmt.Errorf("HealthCheckRequest: %s %s %v (connection not set up yet)", typ, body, err)
		}
		return nil
	})
	return r
}

func payload(typ string, body any) *pb.Payload {
	b, _ := json.Marshal(body)
	return &pb.Payload{Metadata: &pb.Metadata{Type: typ, ClientIp: "127.0.0.1"}, Body: &anypb.Any{Value: b}}
}

func (r *rawConn) call(typ string, body any) (string, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := r.req.Request(ctx, payload(typ, body))
	if err != nil {
		return "", nil, err
	}
	return resp.GetMetadata().GetType(), resp.GetBody().GetValue(), nil
}

// TestFirstPushAfterQueryBurst: other clients query services that do not
// exist (3000 ServiceQueryRequests in a burst, as many applications
// starting at once would); afterwards a v2 subscriber of a fresh service
// must still be pushed its first instance. The lastRefTime a node answers
// for unknown services must not run ahead of the lastRefTime its later
// pushes carry, or the SDK drops those pushes as out of date.
func TestFirstPushAfterQueryBurst(t *testing.T) {
	eachOwnTopology(t, func(t *testing.T, tp topo) {
		const (
			queries = 3000
			workers = 32
		)
		raw := dialRaw(t, tp.reader)
		base := uniq(t, "unknown")
		var maxRef atomic.Int64
		errs := make(chan error, workers)
		next := atomic.Int64{}
		start := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > queries {
						return
					}
					typ, body, err := raw.call("ServiceQueryRequest", map[string]any{
						"requestId": "", "namespace": "public", "serviceName": fmt.Sprintf("%s-%05d", base, i), "groupName": "DEFAULT_GROUP",
						"module": "naming", "cluster": "", "healthyOnly": false, "udpPort": 0})
					if err != nil || typ != "QueryServiceResponse" {
						errs <- fmt.Errorf("ServiceQueryRequest: %s %s %v", typ, body, err)
						return
					}
					var r struct {
						ServiceInfo struct {
							LastRefTime int64 `json:"lastRefTime"`
						} `json:"serviceInfo"`
					}
					if err := json.Unmarshal(body, &r); err == nil {
						for {
							m := maxRef.Load()
							if r.ServiceInfo.LastRefTime <= m || maxRef.CompareAndSwap(m, r.ServiceInfo.LastRefTime) {
								break
							}
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		now := time.Now()
		t.Logf("%d ServiceQueryRequests for unknown services in %v; highest lastRefTime answered %d, %+d ms from the wall clock",
			queries, now.Sub(start).Round(time.Millisecond), maxRef.Load(), maxRef.Load()-now.UnixMilli())

		prov := newClient(t, "prov", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc := uniq(t, "svc")
		sub := subscribe(t, cons, svc) // empty: an unknown service
		p := inst(svc, "10.51.0.1", 80, "")
		changed := time.Now()
		prov.MustRegister(t, p)
		if _, seen, ok := sub.WaitForHosts(pushDeadline, pkey(p)); !ok {
			t.Errorf("the subscriber was never told about the first instance of %s:\n  %s", svc, lostPushEvidence(t, cons, tp.reader, svc, changed, sub.Describe(seen)))
		}
	})
}
