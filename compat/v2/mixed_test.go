package v2

import (
	"testing"
	"time"

	v1model "github.com/nacos-group/nacos-sdk-go/model"
	v1vo "github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// v1HostKey names a host of a v1 subscribe callback ip:port#cluster, as
// the v2 tests name instances.
func v1HostKey(h v1model.SubscribeService) string {
	return harness.InstanceKey(h.Ip, h.Port, h.ClusterName)
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
			v1sub := harness.NewV1Client(t, "v1sub", tp.reader)
			svc := uniq(t, "svc")
			x, y := inst(svc, "10.47.0.1", 80, ""), inst(svc, "10.47.0.2", 80, "")
			provX.MustRegister(t, x)
			eventuallyListed(t, tp.all, svc, pkey(x))

			sub := harness.NewSubscriber(v1HostKey)
			if err := v1sub.Subscribe(&v1vo.SubscribeParam{ServiceName: svc, SubscribeCallback: sub.Callback}); err != nil {
				t.Fatalf("v1 Subscribe: %v", err)
			}
			waitV1 := func(what string, changed time.Time, want ...string) {
				t.Helper()
				ev, seen, ok := sub.WaitFor(pushDeadline, func(ev harness.V1SubscribeEvent) bool {
					// The v1 SDK reports an empty list as an error ("hosts is empty").
					return (ev.Err == nil || len(want) == 0) && harness.SameSet(sub.Keys(ev.Hosts), want)
				})
				if !ok {
					t.Fatalf("%s: v1 subscriber got no callback with %v within %v (no UDP push; the v1 SDK polls only every 10 s); callbacks: %s",
						what, harness.Sorted(want), pushDeadline, sub.Describe(seen))
				}
				t.Logf("%s: v1 subscriber notified %v after the change", what, ev.At.Sub(changed).Round(100*time.Microsecond))
			}
			waitV1("v1 Subscribe", time.Now(), pkey(x))
			changed := time.Now()
			provY.MustRegister(t, y)
			waitV1("v2 register", changed, pkey(x), pkey(y))
			changed = time.Now()
			provX.MustDeregister(t, x)
			waitV1("v2 deregister", changed, pkey(y))
			changed = time.Now()
			provY.CloseClient()
			waitV1("v2 CloseClient", changed) // empty list: an error callback in v1
		})

		t.Run("v1-register-v2-subscribe", func(t *testing.T) {
			begin(t)
			v1prov := harness.NewV1Client(t, "v1prov", tp.writer)
			cons := newClient(t, "cons", tp.reader)
			svc := uniq(t, "svc")
			sub := subscribe(t, cons, svc) // empty at first
			z1 := harness.V1RegisterParam(svc, "10.48.0.1", 80, "")
			z1.Metadata = map[string]string{"via": "v1"}
			z2 := z1
			z2.Ip = "10.48.0.2"
			changed := time.Now()
			v1prov.MustRegister(t, z1)
			expectPush(t, sub, "v1 register", changed, harness.InstanceKey(z1.Ip, z1.Port, ""))
			changed = time.Now()
			v1prov.MustRegister(t, z2)
			expectPush(t, sub, "second v1 register", changed, harness.InstanceKey(z1.Ip, z1.Port, ""), harness.InstanceKey(z2.Ip, z2.Port, ""))
			got, err := cons.SelectAllInstances(v2SelectAll(svc))
			if err != nil || len(got) != 2 {
				t.Fatalf("v2 SelectAllInstances = %v, %v", keys(got), err)
			}
			for _, in := range got {
				if in.Metadata["via"] != "v1" || !in.Healthy || !in.Ephemeral {
					t.Errorf("v2 sees the v1 instance as %+v; want metadata via=v1, healthy, ephemeral", in)
				}
			}
			eventuallyListed(t, tp.all, svc, harness.InstanceKey(z1.Ip, z1.Port, ""), harness.InstanceKey(z2.Ip, z2.Port, ""))
		})
	})
}
