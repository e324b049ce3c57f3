package grpcapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/distro-registry/distro/api/nacospb"
	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// BenchmarkRegister measures InstanceRequest register throughput over real
// loopback gRPC connections (GOMAXPROCS parallel clients, each with its
// own connection). Every request is a real write: the client moves its
// instance of one of 100 services to a new port, which replaces the
// previous one.
func BenchmarkRegister(b *testing.B) {
	ts := newTestServer(b)
	n := runtime.GOMAXPROCS(0) // RunParallel's goroutine count
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = connect(b, ts.addr)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1)) - 1
		c := clients[g%n]
		ctx := context.Background()
		bodies := make([][]byte, 64)
		for i := range bodies {
			bodies[i] = []byte(registerBody(fmt.Sprintf("bench-%d-%d", g, i%100), "10.0.0.1", 1+i))
		}
		i := 0
		for pb.Next() {
			p, err := c.rc.Request(ctx, EncodePayload(TypeInstanceRequest, bodies[i%len(bodies)]))
			if err != nil || p.GetMetadata().GetType() != TypeInstanceResponse {
				b.Errorf("register: %v %v", err, p)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registers/s")
}

// memHelperEnv makes the test binary act as the client side of
// BenchmarkClientMemory (a separate process, so that the server's heap is
// measured alone).
const memHelperEnv = "GRPCAPI_MEM_HELPER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(memHelperEnv); addr != "" {
		os.Exit(memHelper(addr))
	}
	os.Exit(m.Run())
}

// memHelper opens N Nacos connections to addr (ServerCheck, stream, setup,
// one registered instance each), prints "ready", and holds them until
// stdin closes.
func memHelper(addr string) int {
	n, _ := strconv.Atoi(os.Getenv(memHelperEnv + "_N"))
	var keep []*grpc.ClientConn
	for i := range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		keep = append(keep, cc)
		rc := nacospb.NewRequestClient(cc)
		ctx := context.Background()
		if _, err := rc.Request(ctx, EncodePayload(TypeServerCheckRequest, []byte(`{}`))); err != nil {
			fmt.Println("error", err)
			return 1
		}
		st, err := nacospb.NewBiRequestStreamClient(cc).RequestBiStream(ctx)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		go func() { // answer server requests, as a client does
			for {
				p, err := st.Recv()
				if err != nil {
					return
				}
				_ = p
			}
		}()
		_ = st.Send(EncodePayload(TypeConnectionSetupRequest, []byte(`{"clientVersion":"bench","labels":{"module":"naming"}}`)))
		body := []byte(registerBody(fmt.Sprintf("mem-%d", i%100), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 8080))
		for attempt := 0; ; attempt++ {
			p, err := rc.Request(ctx, EncodePayload(TypeInstanceRequest, body))
			if err == nil && p.GetMetadata().GetType() == TypeInstanceResponse {
				break
			}
			if attempt == 1000 {
				fmt.Println("error register", err, p)
				return 1
			}
			time.Sleep(time.Millisecond) // setup is processed asynchronously
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, cc := range keep {
		_ = cc.Close()
	}
	return 0
}

// BenchmarkClientMemory measures the server memory one connected client
// costs: 1000 connections, each set up with one registered instance, held
// by a helper process. It reports the growth of the live heap and of
// goroutine stacks, per client.
func BenchmarkClientMemory(b *testing.B) { benchMem(b, nil) }

func benchMem(b *testing.B, opts []grpc.ServerOption) {
	const n = 1000
	ts := newTestServer(b, func(c *Config) { c.ServerOptions = opts })
	for range b.N {
		var before runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), memHelperEnv+"="+ts.addr, memHelperEnv+"_N="+strconv.Itoa(n))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			_ = cmd.Process.Kill()
			b.Fatalf("helper: %q", line)
		}
		waitFor(b, "all clients", func() bool {
			_, inst := ts.st.Counts()
			return ts.Clients() == n && inst == n
		})
		var after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
		b.ReportMetric(heap, "heap-B/client")
		b.ReportMetric(stack, "stack-B/client")
		b.ReportMetric(heap+stack, "B/client")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/client")

		_ = stdin.Close()
		_ = cmd.Wait()
		waitFor(b, "all clients to go", func() bool {
			_, inst := ts.st.Counts()
			return ts.Clients() == 0 && ts.transportCount() == 0 && inst == 0
		})
	}
}

// BenchmarkHandle measures the server's own work for one unary request,
// without the transport: answer on a set-up connection, as the gRPC
// handler calls it (decode, route, write or read, build the reply; the
// codec's encoding of the reply is not included).
// Under callgrind (GOGC=off) it gives a deterministic instruction count.
func BenchmarkHandle(b *testing.B) {
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, slog.New(slog.DiscardHandler))
	s, err := New(Config{Store: st, Writer: local, Conns: local})
	if err != nil {
		b.Fatal(err)
	}
	c := s.openConn(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000})
	c.out = newOutbox(1<<20, func(any) error { return nil })
	c.state.Store(stateRegistered)
	ctx := context.WithValue(context.Background(), connKey{}, c)
	for i := range 100 {
		p := EncodePayload(TypeInstanceRequest, []byte(registerBody(fmt.Sprintf("q-%d", i), "10.0.0.1", 8080)))
		if out := s.handleUnary(ctx, p); out.GetMetadata().GetType() != TypeInstanceResponse {
			b.Fatalf("setup: %v", out)
		}
	}
	cases := []struct {
		name string
		typ  string
		body func(i int) []byte
		want string
	}{
		{"register", TypeInstanceRequest, func(i int) []byte {
			return []byte(registerBody(fmt.Sprintf("r-%d", i%1000), "10.0.0.2", 1+i%60000))
		}, TypeInstanceResponse},
		{"query", TypeServiceQueryRequest, func(i int) []byte {
			return []byte(`{"requestId":"` + strconv.Itoa(i) + `","module":"naming","namespace":"public","serviceName":"q-` + strconv.Itoa(i%100) +
				`","groupName":"DEFAULT_GROUP","cluster":"","healthyOnly":false,"udpPort":0,"headers":{}}`)
		}, TypeQueryServiceResponse},
		{"subscribe", TypeSubscribeServiceRequest, func(i int) []byte {
			return []byte(subscribeBody("q-"+strconv.Itoa(i%100), "", true))
		}, TypeSubscribeServiceResponse},
		{"health", TypeHealthCheckRequest, func(i int) []byte {
			return []byte(`{"requestId":"` + strconv.Itoa(i) + `","module":"internal","headers":{}}`)
		}, TypeHealthCheckResponse},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			bodies := make([]*nacospb.Payload, 1024)
			for i := range bodies {
				bodies[i] = EncodePayload(tc.typ, tc.body(i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if out := s.answer(ctx, bodies[i%len(bodies)]); out.typ != tc.want {
					b.Fatalf("%s: %s %s", tc.name, out.typ, out.body())
				}
				i++
			}
		})
	}
}
