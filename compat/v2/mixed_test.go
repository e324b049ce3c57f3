package v2

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1nacos "github.com/nacos-group/nacos-sdk-go/clients/nacos_client"
	v1naming "github.com/nacos-group/nacos-sdk-go/clients/naming_client"
	v1constant "github.com/nacos-group/nacos-sdk-go/common/constant"
	v1agent "github.com/nacos-group/nacos-sdk-go/common/http_agent"
	v1model "github.com/nacos-group/nacos-sdk-go/model"
	v1vo "github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// newV1Client is a nacos-sdk-go v1.1.6 client (HTTP v1 API, UDP push,
// heartbeats) for the node. The v1 SDK has no Close; its goroutines live
// until the test binary exits.
func newV1Client(t *testing.T, name string, n *harness.Node) v1naming.INamingClient {
	t.Helper()
	root, err := harness.TempRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := harness.TempDir("v1-client-" + slug(t.Name()) + "-" + name)
	if err != nil {
		t.Fatal(err)
	}
	cc := v1constant.ClientConfig{
		TimeoutMs: 3000, NotLoadCacheAtStart: true, UpdateCacheWhenEmpty: true,
		CacheDir: filepath.Join(dir, "cache"), LogDir: filepath.Join(root, "sdk-v1-log"), LogLevel: "debug",
	}
	nc := &v1nacos.NacosClient{}
	if err := nc.SetClientConfig(cc); err != nil {
		t.Fatal(err)
	}
	if err := nc.SetServerConfig([]v1constant.ServerConfig{{Scheme: "http", ContextPath: "/nacos", IpAddr: "127.0.0.1", Port: uint64(n.Port())}}); err != nil {
		t.Fatal(err)
	}
	if err := nc.SetHttpAgent(&v1agent.HttpAgent{}); err != nil {
		t.Fatal(err)
	}
	c, err := v1naming.NewNamingClient(nc)
	if err != nil {
		t.Fatalf("v1 NewNamingClient: %v", err)
	}
	return &c
}

type v1Event struct {
	at    time.Time
	hosts []string
	err   error
}

// TestMixedProtocols: one registry behind both protocols. A v1 HTTP
// subscriber (UDP push) is pushed instances registered over v2 gRPC, and a
// v2 subscriber (gRPC push) is pushed instances registered over v1 HTTP.
func TestMixedProtocols(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		t.Run("v2-register-v1-subscribe", func(t *testing.T) {
			begin(t)
			provX := newClient(t, "provX", tp.writer)
			provY := newClient(t, "provY", tp.writer)
			v1sub := newV1Client(t, "v1sub", tp.reader)
			svc := uniq(t, "svc")
			x, y := inst(svc, "10.47.0.1", 80, ""), inst(svc, "10.47.0.2", 80, "")
			mustRegister(t, provX, x)
			eventuallyListed(t, tp.all, svc, pkey(x))

			ch := make(chan v1Event, 256)
			err := v1sub.Subscribe(&v1vo.SubscribeParam{ServiceName: svc, SubscribeCallback: func(s []v1model.SubscribeService, err error) {
				var ks []string
				for _, h := range s {
					ks = append(ks, key(h.Ip, h.Port, h.ClusterName))
				}
				sort.Strings(ks)
				select {
				case ch <- v1Event{at: time.Now(), hosts: ks, err: err}:
				default:
				}
			}})
			if err != nil {
				t.Fatalf("v1 Subscribe: %v", err)
			}
			waitV1 := func(what string, changed time.Time, want ...string) {
				t.Helper()
				timer := time.NewTimer(pushDeadline)
				defer timer.Stop()
				var seen []string
				for {
					select {
					case ev := <-ch:
						// The v1 SDK reports an empty list as an error ("hosts is empty").
						if (ev.err == nil || len(want) == 0) && same(ev.hosts, want) {
							t.Logf("%s: v1 subscriber notified %v after the change", what, ev.at.Sub(changed).Round(100*time.Microsecond))
							return
						}
						seen = append(seen, fmt.Sprintf("%s %v err=%v", ev.at.Format("15:04:05.000"), ev.hosts, ev.err))
					case <-timer.C:
						t.Fatalf("%s: v1 subscriber got no callback with %v within %v (no UDP push; the v1 SDK polls only every 10 s); callbacks: %s",
							what, sorted(want), pushDeadline, strings.Join(seen, "; "))
					}
				}
			}
			waitV1("v1 Subscribe", time.Now(), pkey(x))
			changed := time.Now()
			mustRegister(t, provY, y)
			waitV1("v2 register", changed, pkey(x), pkey(y))
			changed = time.Now()
			mustDeregister(t, provX, x)
			waitV1("v2 deregister", changed, pkey(y))
			changed = time.Now()
			provY.CloseClient()
			waitV1("v2 CloseClient", changed) // empty list: an error callback in v1
		})

		t.Run("v1-register-v2-subscribe", func(t *testing.T) {
			begin(t)
			v1prov := newV1Client(t, "v1prov", tp.writer)
			cons := newClient(t, "cons", tp.reader)
			svc := uniq(t, "svc")
			sub := subscribe(t, cons, svc) // empty at first
			z1 := v1vo.RegisterInstanceParam{ServiceName: svc, Ip: "10.48.0.1", Port: 80, Weight: 1, Enable: true, Healthy: true, Ephemeral: true, Metadata: map[string]string{"via": "v1"}}
			z2 := z1
			z2.Ip = "10.48.0.2"
			changed := time.Now()
			if ok, err := v1prov.RegisterInstance(z1); err != nil || !ok {
				t.Fatalf("v1 RegisterInstance: %v, %v", ok, err)
			}
			expectPush(t, sub, "v1 register", changed, key(z1.Ip, z1.Port, ""))
			changed = time.Now()
			if ok, err := v1prov.RegisterInstance(z2); err != nil || !ok {
				t.Fatalf("v1 RegisterInstance: %v, %v", ok, err)
			}
			expectPush(t, sub, "second v1 register", changed, key(z1.Ip, z1.Port, ""), key(z2.Ip, z2.Port, ""))
			got, err := cons.SelectAllInstances(v2SelectAll(svc))
			if err != nil || len(got) != 2 {
				t.Fatalf("v2 SelectAllInstances = %v, %v", keys(got), err)
			}
			for _, in := range got {
				if in.Metadata["via"] != "v1" || !in.Healthy || !in.Ephemeral {
					t.Errorf("v2 sees the v1 instance as %+v; want metadata via=v1, healthy, ephemeral", in)
				}
			}
			eventuallyListed(t, tp.all, svc, key(z1.Ip, z1.Port, ""), key(z2.Ip, z2.Port, ""))
		})
	})
}
