package v2

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// healthCheckArgs make server-side checks fast enough for a test.
var healthCheckArgs = []string{"--health-check-interval", "200ms", "--health-check-threshold", "2"}

// TestPersistentInstanceHealthCheck: the SDK registers a persistent
// instance (Ephemeral false, which v2.3.5 sends over HTTP v1) on a loopback
// port; its cluster gets a TCP checker through PUT /v1/ns/cluster (what the
// console sends); a subscriber on another node sees healthy=false pushed
// when the instance's listener closes, and true again when it reopens.
func TestPersistentInstanceHealthCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		nodes int
	}{{"single", 1}, {"cluster", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			begin(t)
			opts := harness.Options{Name: "hc-" + tc.name, Args: healthCheckArgs}
			var nodes []*harness.Node
			if tc.nodes == 1 {
				nodes = []*harness.Node{harness.StartNode(t, opts)}
			} else {
				opts.Args = append(append([]string{}, clusterArgs...), healthCheckArgs...)
				c := harness.StartCluster(t, tc.nodes, opts)
				if err := c.WaitAllUp(10 * time.Second); err != nil {
					t.Fatal(err)
				}
				nodes = c.Nodes
			}
			writer, reader := nodes[0], nodes[len(nodes)-1]
			harness.DumpLogsOnFailure(t, nodes...)

			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go acceptAndClose(l)
			port := uint64(l.Addr().(*net.TCPAddr).Port)
			svc := uniq(t, "pg")
			p := inst(svc, "127.0.0.1", port, "")
			p.Ephemeral = false
			newClient(t, "prov", writer).MustRegister(t, p)
			eventuallyListed(t, nodes, svc, pkey(p))
			if _, err := writer.HTTP().Do("PUT", "/v1/ns/cluster", url.Values{"serviceName": {svc}, "clusterName": {"DEFAULT"},
				"checkPort": {"80"}, "useInstancePort4Check": {"true"}, "healthChecker": {`{"type":"TCP"}`}}); err != nil {
				t.Fatalf("PUT /v1/ns/cluster: %v", err)
			}

			cons := newClient(t, "cons", reader)
			sub := newSubscriber()
			if err := cons.Subscribe(&vo.SubscribeParam{ServiceName: svc, SubscribeCallback: sub.Callback}); err != nil {
				t.Fatal(err)
			}
			waitHealth := func(what string, healthy bool) {
				t.Helper()
				_, seen, ok := sub.WaitFor(15*time.Second, func(ev harness.V2SubscribeEvent) bool {
					return ev.Err == nil && len(ev.Hosts) == 1 && ev.Hosts[0].Healthy == healthy
				})
				if !ok {
					t.Fatalf("%s: no callback with healthy=%v; callbacks: %s", what, healthy, sub.Describe(seen))
				}
			}
			waitHealth("subscribe", true)
			l.Close()
			waitHealth("listener closed", false)
			got, err := cons.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
			if err != nil || len(got) != 1 || got[0].Healthy || got[0].Ephemeral {
				t.Fatalf("SelectAllInstances = %v, %v; want the persistent instance with healthy=false", describe(got), err)
			}
			harness.Eventually(t, 5*time.Second, 20*time.Millisecond, func() (err error) {
				l, err = net.Listen("tcp", l.Addr().String())
				return err
			})
			defer l.Close()
			go acceptAndClose(l)
			waitHealth("listener reopened", true)
		})
	}
}

func acceptAndClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func describe(ins []model.Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		h := "healthy"
		if !in.Healthy {
			h = "unhealthy"
		}
		out = append(out, harness.V2HostKey(in)+" "+h)
	}
	return out
}
