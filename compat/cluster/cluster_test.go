package cluster

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

const (
	// pushDeadline: a change must reach a subscriber this fast; the SDK's
	// own poll comes only every cacheMillis (10 s).
	pushDeadline = 3 * time.Second
	// convergeDeadline bounds how long the nodes may take to agree after a
	// change (sync delay 20 ms, verification every 500 ms here).
	convergeDeadline = 10 * time.Second
	// killWatch is how long the surviving nodes are watched after a node
	// is killed: longer than the 15 s heartbeat timeout.
	killWatch = 21 * time.Second
)

// TestClusterV1 drives a three-process cluster (one shared cluster.conf)
// with nacos-sdk-go v1.1.6 clients that each know every server:
//
//  1. register beating instances through several clients; a subscriber is
//     pushed instances registered by other clients (through other nodes);
//  2. SIGKILL one node while the clients keep beating: for longer than the
//     heartbeat timeout, no live instance leaves the survivors' lists or
//     turns unhealthy, and none is listed twice;
//  3. restart the node (it reloads from a peer and becomes ready);
//  4. add a fourth node by rewriting cluster.conf (temp file + rename);
//  5. deregister some instances; every node converges to identical lists
//     without them.
func TestClusterV1(t *testing.T) {
	t0 := time.Now()
	phase := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}

	c := harness.StartCluster(t, 3, harness.Options{Name: "v1c", Args: harness.FastClusterArgs()})
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatalf("members never all UP: %v", err)
	}
	phase("3 nodes ready, all members UP (ports %v, %s)", c.Ports(), c.Conf)

	first3 := append([]*harness.Node(nil), c.Nodes...)
	providers := []*harness.V1Client{
		harness.NewV1Client(t, "provider0", first3...),
		harness.NewV1Client(t, "provider1", first3...),
		harness.NewV1Client(t, "provider2", first3...),
	}
	consumer := harness.NewV1Client(t, "consumer", first3...)

	// Four services; each provider registers one instance in each (service
	// d uses named clusters).
	services := []string{uniq("a"), uniq("b"), uniq("c"), uniq("d")}
	want := expected{}
	reg := make([][]vo.RegisterInstanceParam, len(providers)) // [provider][service]
	for pi := range providers {
		for si, svc := range services {
			cluster := ""
			if si == 3 {
				cluster = []string{"east", "west", "east"}[pi]
			}
			reg[pi] = append(reg[pi], inst(svc, fmt.Sprintf("10.30.%d.%d", si+1, pi+1), uint64(8080+pi), cluster))
		}
	}
	svcA := services[0]

	// --- 1. register + subscribe/push ---------------------------------
	providers[0].MustRegister(t, reg[0][0])
	want.add(reg[0][0])
	harness.Eventually(t, convergeDeadline, 50*time.Millisecond, func() error { return converged(c.Nodes, services[:1], want) })

	sub := newSubscriber()
	if err := consumer.Subscribe(&vo.SubscribeParam{ServiceName: svcA, SubscribeCallback: sub.Callback}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, seen, ok := sub.WaitForHosts(3*time.Second, want.keys(svcA)...); !ok {
		t.Fatalf("no initial callback with %v after Subscribe; callbacks: %s", want.keys(svcA), sub.Describe(seen))
	}
	for _, pi := range []int{1, 2} {
		changed := time.Now()
		providers[pi].MustRegister(t, reg[pi][0])
		want.add(reg[pi][0])
		ev, seen, ok := sub.WaitForHosts(15*time.Second, want.keys(svcA)...)
		if !ok {
			t.Fatalf("register via provider%d: no callback with %v within 15 s; callbacks: %s", pi, want.keys(svcA), sub.Describe(seen))
		}
		lat := ev.At.Sub(changed)
		phase("register via provider%d: subscriber notified after %v (callbacks before: %s)", pi, lat.Round(time.Millisecond), sub.Describe(seen))
		if lat > pushDeadline {
			t.Errorf("register via provider%d: callback came %v after the register, later than %v: it came from the SDK's 10 s poll, so no node pushed the change over UDP",
				pi, lat.Round(time.Millisecond), pushDeadline)
		}
	}

	// The rest, concurrently (one goroutine per provider).
	var wg sync.WaitGroup
	regErrs := make([]error, len(providers))
	for pi, p := range providers {
		wg.Go(func() {
			for si := 1; si < len(services); si++ {
				r := reg[pi][si]
				if ok, err := p.RegisterInstance(r); err != nil || !ok {
					regErrs[pi] = fmt.Errorf("%s: RegisterInstance(%s %s) = %v, %v", p.Name, r.ServiceName, harness.V1ParamKey(r), ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range regErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for pi := range providers {
		for si := 1; si < len(services); si++ {
			want.add(reg[pi][si])
		}
	}
	harness.Eventually(t, convergeDeadline, 100*time.Millisecond, func() error { return converged(c.Nodes, services, want) })
	phase("12 instances in 4 services listed identically on all 3 nodes")

	// --- 2. kill a node while the clients keep beating ----------------
	// The victim is the node that owns the most services, so that the kill
	// moves ownership (and heartbeat checking) to the survivors.
	vi, owned := 0, -1.0
	for i, n := range c.Nodes {
		v, _, err := n.Metric("distro_distro_owned_keys")
		if err != nil {
			t.Fatal(err)
		}
		if v > owned {
			vi, owned = i, v
		}
	}
	victim := c.Nodes[vi]
	var survivors []*harness.Node
	for i, n := range c.Nodes {
		if i != vi {
			survivors = append(survivors, n)
		}
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	phase("SIGKILLed %s (%s), which owned %v services; watching %s and %s for %v",
		victim.Name, victim.Addr(), owned, survivors[0].Name, survivors[1].Name, killWatch)
	watchSurvivors(t, survivors, services, want, killed)
	failed, beats := 0, 0
	for _, p := range providers {
		for _, e := range p.Wire.Exchanges() {
			if e.At.Before(killed) {
				continue
			}
			if e.Err != "" && strings.Contains(e.URL, victim.Addr()) {
				failed++
			}
			if e.Beat != "" && e.Status == 200 {
				beats++
			}
		}
	}
	phase("while %s was down: %d provider requests to it failed (and failed over); %d beats answered by the survivors", victim.Name, failed, beats)
	if err := c.WaitAllUp(5 * time.Second); err != nil {
		t.Errorf("survivors do not both see %s DOWN: %v", victim.Name, err)
	}
	phase("kill watch done")

	// --- 3. restart the killed node -----------------------------------
	if err := victim.Start(); err != nil { // waits for /readyz
		t.Fatalf("restart %s: %v", victim.Name, err)
	}
	phase("%s restarted and ready", victim.Name)
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	harness.Eventually(t, convergeDeadline, 100*time.Millisecond, func() error { return converged(c.Nodes, services, want) })
	phase("restarted node lists everything; 3 nodes identical")

	// --- 4. add a fourth node through cluster.conf --------------------
	fourth := c.AddNode(t)
	phase("%s (%s) added to cluster.conf and ready", fourth.Name, fourth.Addr())
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatalf("after adding %s: %v", fourth.Name, err)
	}
	phase("all 4 nodes see 4 members UP")
	late := harness.NewV1Client(t, "late", c.Nodes...) // knows all four servers
	lateInst := inst(svcA, "10.30.1.9", 9090, "")
	changed := time.Now()
	late.MustRegister(t, lateInst)
	want.add(lateInst)
	if ev, seen, ok := sub.WaitForHosts(15*time.Second, want.keys(svcA)...); !ok {
		t.Errorf("register via the 4-server client: no callback with %v within 15 s; callbacks: %s", want.keys(svcA), sub.Describe(seen))
	} else {
		phase("register via the 4-server client: subscriber notified after %v", ev.At.Sub(changed).Round(time.Millisecond))
	}
	harness.Eventually(t, convergeDeadline, 100*time.Millisecond, func() error { return converged(c.Nodes, services, want) })
	phase("4 nodes identical")

	// --- 5. deregister; every node converges without them ------------
	gone := []struct {
		c *harness.V1Client
		p vo.RegisterInstanceParam
	}{
		{providers[2], reg[2][0]}, {providers[2], reg[2][2]}, {providers[0], reg[0][1]}, {providers[1], reg[1][3]},
	}
	var dwg sync.WaitGroup
	for _, g := range gone {
		dwg.Go(func() { deregister(t, g.c, g.p) })
	}
	dwg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	changed = time.Now()
	for _, g := range gone {
		want.remove(g.p)
	}
	harness.Eventually(t, convergeDeadline, 100*time.Millisecond, func() error { return converged(c.Nodes, services, want) })
	phase("deregistered %d instances; all 4 nodes list identical lists without them", len(gone))
	if ev, seen, ok := sub.WaitForHosts(15*time.Second, want.keys(svcA)...); !ok {
		t.Errorf("after the deregister: no callback with %v within 15 s; callbacks: %s", want.keys(svcA), sub.Describe(seen))
	} else {
		phase("subscriber saw the deregistration after %v", ev.At.Sub(changed).Round(time.Millisecond))
	}
	// Still identical a few verification rounds later (no resurrection by
	// a late beat or a repair).
	stable := time.Now().Add(2 * time.Second)
	for time.Now().Before(stable) {
		if err := converged(c.Nodes, services, want); err != nil {
			t.Fatalf("after converging, the lists changed again: %v", err)
		}
		time.Sleep(250 * time.Millisecond) // sampling period, not synchronisation
	}
	phase("done")
}

// watchSurvivors samples every 500 ms until killWatch has passed since
// killed: every live instance must stay listed, healthy and unique on every
// surviving node. Violations are collected (first and last time seen per
// node and instance) and reported at the end.
func watchSurvivors(t *testing.T, survivors []*harness.Node, services []string, want expected, killed time.Time) {
	t.Helper()
	type violation struct {
		first, last time.Duration
		n           int
		what        string
	}
	viol := map[string]*violation{}
	note := func(id, what string) {
		at := time.Since(killed)
		v := viol[id]
		if v == nil {
			v = &violation{first: at, what: what}
			viol[id] = v
		}
		v.last, v.n = at, v.n+1
	}
	samples := 0
	tick := time.NewTicker(500 * time.Millisecond) // sampling period of the watch
	defer tick.Stop()
	for {
		samples++
		ls, err := listAll(survivors, services)
		if err != nil {
			note("list error", err.Error())
		}
		for i, n := range survivors {
			for _, svc := range services {
				s := ls[i][svc]
				if s == nil {
					continue
				}
				byKey := map[string]harness.V1Instance{}
				for _, h := range s.Hosts {
					byKey[h.Key()] = h
				}
				for _, k := range want.keys(svc) {
					h, ok := byKey[k]
					switch {
					case !ok:
						note(n.Name+" "+svc+" "+k+" missing", fmt.Sprintf("%s does not list live instance %s of %s (lists %v)", n.Name, k, svc, s.Keys()))
					case !h.Healthy:
						note(n.Name+" "+svc+" "+k+" unhealthy", fmt.Sprintf("%s lists live (beating) instance %s of %s as unhealthy", n.Name, k, svc))
					}
				}
				if d := s.Duplicates(); len(d) > 0 {
					note(n.Name+" "+svc+" dup", fmt.Sprintf("%s lists %v more than once in %s", n.Name, d, svc))
				}
				if len(s.Hosts) != len(want[svc]) {
					note(n.Name+" "+svc+" extra", fmt.Sprintf("%s lists %v in %s, want %v", n.Name, s.Keys(), svc, want.keys(svc)))
				}
			}
		}
		if time.Since(killed) >= killWatch {
			break
		}
		<-tick.C
	}
	t.Logf("kill watch: %d samples over %v on %d survivors x %d services", samples, time.Since(killed).Round(time.Millisecond), len(survivors), len(services))
	if len(viol) == 0 {
		return
	}
	var lines []string
	for _, v := range viol {
		lines = append(lines, fmt.Sprintf("  from %v to %v after the kill (%d samples): %s", v.first.Round(time.Millisecond), v.last.Round(time.Millisecond), v.n, v.what))
	}
	sort.Strings(lines)
	t.Errorf("while a node was down, the survivors' lists lost or damaged live instances:\n%s", strings.Join(lines, "\n"))
}
