package v1

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/model"
	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// Timings of the v1 SDK and server that the tests rely on.
const (
	// pushDeadline: a change must reach a subscriber this fast. The SDK
	// polls only every cacheMillis (10 s), so anything quicker is a push.
	pushDeadline = 3 * time.Second
	// pollDeadline: enough for the 10 s poll to deliver a change (used when
	// a test is not about push and should pass without it).
	pollDeadline = 15 * time.Second
	// serverDeadline: the server's own view (raw HTTP) must change this fast.
	serverDeadline = 5 * time.Second
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// server is the distrod node shared by all tests of the package (each test
// uses its own service names).
var server = &harness.SharedNode{Options: harness.Options{Name: "distrod-v1"}}

// uniq returns a service name unique to this test run.
func uniq(t *testing.T, base string) string {
	return harness.UniqueName("v1", harness.Slug(t.Name()), base)
}

// inst is a healthy, enabled, ephemeral instance of weight 1.
func inst(svc, ip string, port uint64, cluster string) vo.RegisterInstanceParam {
	return harness.V1RegisterParam(svc, ip, port, cluster)
}

// waitFirstBeat waits until the SDK's first beat for ip:port (sent at once
// after register) has been answered. A test that deregisters right after
// registering must wait for it: a beat arriving after the DELETE would
// re-register the instance (Nacos auto-registers from beat JSON).
func waitFirstBeat(t *testing.T, c *harness.V1Client, ip string, port uint64) {
	t.Helper()
	harness.Eventually(t, serverDeadline, 20*time.Millisecond, func() error {
		if c.Wire.AnsweredBeats(ip, port) == 0 {
			return fmt.Errorf("no answered beat for %s:%d yet", ip, port)
		}
		return nil
	})
}

// rawRegister registers an instance over raw HTTP (no beats follow).
func rawRegister(t *testing.T, n *harness.Node, svc, group, ip string, port int, extra url.Values) {
	t.Helper()
	p := url.Values{"serviceName": {harness.GroupedName(group, svc)}, "ip": {ip}, "port": {strconv.Itoa(port)}, "ephemeral": {"true"}}
	for k, v := range extra {
		p[k] = v
	}
	if err := n.HTTP().RegisterInstance(p); err != nil {
		t.Fatalf("raw register %s:%d: %v", ip, port, err)
	}
}

// serverList is the server's own view (raw GET instance/list, no cache).
func serverList(t *testing.T, n *harness.Node, groupedName, clusters string) *harness.V1Service {
	t.Helper()
	s, err := n.HTTP().ListInstances(groupedName, clusters, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addrs lists ip:port of instances, sorted.
func addrs(ins []model.Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, fmt.Sprintf("%s:%d", in.Ip, in.Port))
	}
	sort.Strings(out)
	return out
}

// rawAddrs lists ip:port of the hosts the server lists, sorted.
func rawAddrs(s *harness.V1Service) []string {
	out := make([]string, 0, len(s.Hosts))
	for _, in := range s.Hosts {
		out = append(out, fmt.Sprintf("%s:%d", in.IP, in.Port))
	}
	sort.Strings(out)
	return out
}

// sameSet reports whether got and want hold the same addresses.
func sameSet(got []string, want ...string) bool { return harness.SameSet(got, want) }

// newSubscriber collects subscribe callbacks, naming hosts ip:port.
func newSubscriber() *harness.V1Subscriber { return harness.NewSubscriber(harness.V1HostAddr) }

// expectPush waits for the callback showing want (ip:port set; none means
// "empty list", which the SDK reports as an error) after a change made at
// changedAt. It fails if the change arrives later than pushDeadline (that
// is the 10 s poll, not a push) or not within pollDeadline.
func expectPush(t *testing.T, s *harness.V1Subscriber, what string, changedAt time.Time, want ...string) {
	t.Helper()
	ev, seen, ok := s.WaitFor(pollDeadline, func(e harness.V1SubscribeEvent) bool {
		if len(want) == 0 {
			return e.Err != nil && len(e.Hosts) == 0
		}
		return e.Err == nil && sameSet(s.Keys(e.Hosts), want...)
	})
	if !ok {
		t.Fatalf("%s: no subscribe callback with hosts %v within %v (neither UDP push nor the %v poll delivered it); callbacks seen: %s",
			what, want, pollDeadline, 10*time.Second, s.Describe(seen))
	}
	latency := ev.At.Sub(changedAt)
	t.Logf("%s: subscriber notified %v after the change (callbacks before it: %s)", what, latency.Round(time.Millisecond), s.Describe(seen))
	if latency > pushDeadline {
		t.Errorf("%s: callback came %v after the change, later than %v: it came from the SDK's 10 s poll, so no UDP push reached the client",
			what, latency.Round(time.Millisecond), pushDeadline)
	}
}
