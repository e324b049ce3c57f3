package v1

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/model"
	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// TestRegisterSelectAll: a registered ephemeral instance is returned by
// SelectAllInstances with every field as registered, in its group.
func TestRegisterSelectAll(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	svc := uniq(t, "svc")

	p := inst(svc, "10.1.0.1", 8080, "a")
	p.Weight = 2
	p.Metadata = map[string]string{"version": "1.2.3", "zone": "z-1", "json": `{"k":"v+w"}`}
	c.MustRegister(t, p)
	g := inst(svc, "10.1.0.2", 9090, "")
	g.GroupName = "COMPAT_GROUP"
	c.MustRegister(t, g)

	check := func(group string, want vo.RegisterInstanceParam, wantCluster string) {
		t.Helper()
		var got []model.Instance
		harness.Eventually(t, pollDeadline, 200*time.Millisecond, func() error {
			var err error
			got, err = c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc, GroupName: group})
			if err != nil {
				return err
			}
			if len(got) != 1 {
				return fmt.Errorf("SelectAllInstances(group %q) = %v, want exactly %s:%d", group, addrs(got), want.Ip, want.Port)
			}
			return nil
		})
		in := got[0]
		gname := harness.GroupedName(group, svc)
		if in.Ip != want.Ip || in.Port != want.Port {
			t.Errorf("group %q: got %s:%d, want %s:%d", group, in.Ip, in.Port, want.Ip, want.Port)
		}
		if in.Weight != want.Weight {
			t.Errorf("group %q: weight %v, want %v", group, in.Weight, want.Weight)
		}
		wantMD := want.Metadata
		if wantMD == nil {
			wantMD = map[string]string{}
		}
		if !maps.Equal(in.Metadata, wantMD) {
			t.Errorf("group %q: metadata %v, want %v", group, in.Metadata, wantMD)
		}
		if in.ClusterName != wantCluster {
			t.Errorf("group %q: clusterName %q, want %q", group, in.ClusterName, wantCluster)
		}
		if !in.Healthy || !in.Enable || !in.Ephemeral {
			t.Errorf("group %q: healthy=%v enabled=%v ephemeral=%v, want all true", group, in.Healthy, in.Enable, in.Ephemeral)
		}
		if in.ServiceName != gname {
			t.Errorf("group %q: serviceName %q, want the grouped name %q", group, in.ServiceName, gname)
		}
		if wantID := fmt.Sprintf("%s#%d#%s#%s", want.Ip, want.Port, wantCluster, gname); in.InstanceId != wantID {
			t.Errorf("group %q: instanceId %q, want %q", group, in.InstanceId, wantID)
		}
	}
	check("", p, "a")
	check("COMPAT_GROUP", g, "DEFAULT")
}

// TestSelectInstancesClusters: cluster filters ("a" vs "a,b"), HealthyOnly
// true/false, and that weight-0 and disabled instances are left out.
func TestSelectInstancesClusters(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	svc := uniq(t, "svc")

	c.MustRegister(t, inst(svc, "10.2.0.1", 80, "a"))
	c.MustRegister(t, inst(svc, "10.2.0.2", 80, "b"))
	c.MustRegister(t, inst(svc, "10.2.0.3", 80, "c"))
	// Raw HTTP instances (no beats, so their health stays as registered).
	rawRegister(t, n, svc, "", "10.2.0.4", 80, url.Values{"clusterName": {"a"}, "healthy": {"false"}})
	rawRegister(t, n, svc, "", "10.2.0.5", 80, url.Values{"clusterName": {"a"}, "weight": {"0"}})
	rawRegister(t, n, svc, "", "10.2.0.6", 80, url.Values{"clusterName": {"a"}, "enabled": {"false"}})

	const (
		a1 = "10.2.0.1:80" // a, healthy
		b2 = "10.2.0.2:80" // b, healthy
		c3 = "10.2.0.3:80" // c, healthy
		a4 = "10.2.0.4:80" // a, unhealthy
		a5 = "10.2.0.5:80" // a, weight 0
	)
	// The server's own view first, so the SDK queries below (each a cache
	// miss: the SDK caches per cluster string) see the final state.
	harness.Eventually(t, serverDeadline, 100*time.Millisecond, func() error {
		s := serverList(t, n, harness.GroupedName("", svc), "")
		if got := rawAddrs(s); !sameSet(got, a1, b2, c3, a4, a5) {
			return fmt.Errorf("server lists %v, want %v (the disabled 10.2.0.6 must not be listed)", got, []string{a1, b2, c3, a4, a5})
		}
		return nil
	})

	sel := func(clusters []string, healthy bool, want ...string) {
		t.Helper()
		got, err := c.SelectInstances(vo.SelectInstancesParam{ServiceName: svc, Clusters: clusters, HealthyOnly: healthy})
		if err != nil {
			t.Errorf("SelectInstances(clusters %v, healthyOnly %v): %v", clusters, healthy, err)
			return
		}
		if !sameSet(addrs(got), want...) {
			t.Errorf("SelectInstances(clusters %v, healthyOnly %v) = %v, want %v", clusters, healthy, addrs(got), want)
		}
	}
	all := func(clusters []string, want ...string) {
		t.Helper()
		got, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc, Clusters: clusters})
		if err != nil {
			t.Errorf("SelectAllInstances(clusters %v): %v", clusters, err)
			return
		}
		if !sameSet(addrs(got), want...) {
			t.Errorf("SelectAllInstances(clusters %v) = %v, want %v", clusters, addrs(got), want)
		}
	}
	sel([]string{"a"}, true, a1)
	sel([]string{"a", "b"}, true, a1, b2)
	sel([]string{"a"}, false, a4) // the SDK returns instances whose healthy == HealthyOnly
	sel(nil, true, a1, b2, c3)
	all([]string{"a", "b"}, a1, b2, a4, a5)
	all([]string{"b"}, b2)
	all(nil, a1, b2, c3, a4, a5)

	svcInfo, err := c.GetService(vo.GetServiceParam{ServiceName: svc, Clusters: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if svcInfo.Clusters != "a,b" {
		t.Errorf("GetService(clusters a,b).Clusters = %q, want the echo %q", svcInfo.Clusters, "a,b")
	}
}

// TestSelectOneHealthyInstance: weighted random pick among healthy,
// enabled, weight>0 instances only.
func TestSelectOneHealthyInstance(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	svc := uniq(t, "svc")

	light := inst(svc, "10.3.0.1", 80, "")
	heavy := inst(svc, "10.3.0.2", 80, "")
	heavy.Weight = 3
	c.MustRegister(t, light)
	c.MustRegister(t, heavy)
	rawRegister(t, n, svc, "", "10.3.0.3", 80, url.Values{"healthy": {"false"}, "weight": {"5"}})
	harness.Eventually(t, serverDeadline, 100*time.Millisecond, func() error {
		if got := rawAddrs(serverList(t, n, harness.GroupedName("", svc), "")); len(got) != 3 {
			return fmt.Errorf("server lists %v, want 3 instances", got)
		}
		return nil
	})

	counts := map[string]int{}
	for range 80 {
		in, err := c.SelectOneHealthyInstance(vo.SelectOneHealthInstanceParam{ServiceName: svc})
		if err != nil {
			t.Fatalf("SelectOneHealthyInstance: %v", err)
		}
		counts[fmt.Sprintf("%s:%d", in.Ip, in.Port)]++
		if !in.Healthy {
			t.Fatalf("picked unhealthy %s:%d", in.Ip, in.Port)
		}
	}
	t.Logf("picks: %v", counts)
	if len(counts) != 2 || counts["10.3.0.1:80"] == 0 || counts["10.3.0.2:80"] == 0 {
		t.Errorf("picks %v, want both healthy instances (10.3.0.1:80, 10.3.0.2:80) and nothing else", counts)
	}

	in, err := c.SelectOneHealthyInstance(vo.SelectOneHealthInstanceParam{ServiceName: svc, Clusters: []string{"a"}})
	if err == nil {
		t.Errorf("SelectOneHealthyInstance(cluster a, which has no instances) = %s:%d, want an error", in.Ip, in.Port)
	}
}

// TestSubscribePush: the callback fires on subscribe and then, by UDP push,
// on every change (register, deregister, last instance gone).
func TestSubscribePush(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	provider := harness.NewV1Client(t, "provider", n)
	consumer := harness.NewV1Client(t, "consumer", n)
	svc := uniq(t, "svc")

	a := inst(svc, "10.4.0.1", 8080, "")
	provider.MustRegister(t, a)

	sub := newSubscriber()
	if err := consumer.Subscribe(&vo.SubscribeParam{ServiceName: svc, SubscribeCallback: sub.Callback}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, seen, ok := sub.WaitForHosts(2*time.Second, "10.4.0.1:8080"); !ok {
		t.Fatalf("no initial callback with [10.4.0.1:8080] after Subscribe; callbacks: %s", sub.Describe(seen))
	}

	b := inst(svc, "10.4.0.2", 8080, "")
	changed := time.Now()
	provider.MustRegister(t, b)
	expectPush(t, sub, "register second instance", changed, "10.4.0.1:8080", "10.4.0.2:8080")

	waitFirstBeat(t, provider, b.Ip, b.Port)
	changed = time.Now()
	if _, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: svc, Ip: b.Ip, Port: b.Port, Ephemeral: true}); err != nil {
		t.Fatalf("DeregisterInstance: %v", err)
	}
	expectPush(t, sub, "deregister second instance", changed, "10.4.0.1:8080")
	got, err := consumer.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || !sameSet(addrs(got), "10.4.0.1:8080") {
		t.Errorf("consumer SelectAllInstances after the push = %v, %v; want [10.4.0.1:8080]", addrs(got), err)
	}

	waitFirstBeat(t, provider, a.Ip, a.Port)
	changed = time.Now()
	if _, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: svc, Ip: a.Ip, Port: a.Port, Ephemeral: true}); err != nil {
		t.Fatalf("DeregisterInstance: %v", err)
	}
	// An empty list reaches the callback as an error ("hosts is empty").
	expectPush(t, sub, "deregister last instance", changed)
	got, err = consumer.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || len(got) != 0 {
		t.Errorf("consumer SelectAllInstances after the last deregister = %v, %v; want []", addrs(got), err)
	}
}

// TestSubscribeClusterPush: a subscriber of cluster "a" is pushed changes
// of cluster a only, under its own cache key (service@@a).
func TestSubscribeClusterPush(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	provider := harness.NewV1Client(t, "provider", n)
	consumer := harness.NewV1Client(t, "consumer", n)
	svc := uniq(t, "svc")

	provider.MustRegister(t, inst(svc, "10.6.0.1", 80, "a"))
	sub := newSubscriber()
	if err := consumer.Subscribe(&vo.SubscribeParam{ServiceName: svc, Clusters: []string{"a"}, SubscribeCallback: sub.Callback}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, seen, ok := sub.WaitForHosts(2*time.Second, "10.6.0.1:80"); !ok {
		t.Fatalf("no initial callback with [10.6.0.1:80]; callbacks: %s", sub.Describe(seen))
	}

	changed := time.Now()
	provider.MustRegister(t, inst(svc, "10.6.0.2", 80, "b")) // not in the subscription
	provider.MustRegister(t, inst(svc, "10.6.0.3", 80, "a"))
	ev, seen, ok := sub.WaitForHosts(pollDeadline, "10.6.0.1:80", "10.6.0.3:80")
	for _, e := range append(seen, ev) {
		if slices.Contains(sub.Keys(e.Hosts), "10.6.0.2:80") {
			t.Errorf("subscriber of cluster a got an instance of cluster b: %s", sub.Describe([]harness.V1SubscribeEvent{e}))
		}
	}
	if !ok {
		t.Fatalf("no callback with [10.6.0.1:80 10.6.0.3:80] within %v; callbacks: %s", pollDeadline, sub.Describe(seen))
	}
	latency := ev.At.Sub(changed)
	t.Logf("cluster-a subscriber notified %v after the change", latency.Round(time.Millisecond))
	if latency > pushDeadline {
		t.Errorf("callback came %v after the change, later than %v: from the 10 s poll, not a UDP push", latency.Round(time.Millisecond), pushDeadline)
	}
}

// TestDeregister: deregistered instances leave the server at once and the
// client's list soon after; deregistering again is harmless.
func TestDeregister(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	provider := harness.NewV1Client(t, "provider", n)
	consumer := harness.NewV1Client(t, "consumer", n)
	svc := uniq(t, "svc")

	one, two := inst(svc, "10.5.0.1", 80, ""), inst(svc, "10.5.0.2", 80, "")
	provider.MustRegister(t, one)
	provider.MustRegister(t, two)
	got, err := consumer.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || !sameSet(addrs(got), "10.5.0.1:80", "10.5.0.2:80") {
		t.Fatalf("SelectAllInstances = %v, %v; want both instances", addrs(got), err)
	}

	waitFirstBeat(t, provider, two.Ip, two.Port)
	start := time.Now()
	ok, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: svc, Ip: two.Ip, Port: two.Port, Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("DeregisterInstance = %v, %v", ok, err)
	}
	if s := serverList(t, n, harness.GroupedName("", svc), ""); !sameSet(rawAddrs(s), "10.5.0.1:80") {
		t.Errorf("server lists %v right after the deregister, want [10.5.0.1:80]", rawAddrs(s))
	}
	harness.Eventually(t, pollDeadline, 100*time.Millisecond, func() error {
		got, err := consumer.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if err != nil {
			return err
		}
		if !sameSet(addrs(got), "10.5.0.1:80") {
			return fmt.Errorf("consumer still sees %v", addrs(got))
		}
		return nil
	})
	t.Logf("consumer list updated %v after the deregister", time.Since(start).Round(time.Millisecond))

	// Idempotent: an unknown instance deregisters with 200 (the SDK turns
	// any other status into an error after 3 tries).
	if ok, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: svc, Ip: two.Ip, Port: two.Port, Ephemeral: true}); err != nil || !ok {
		t.Errorf("second DeregisterInstance = %v, %v; want success", ok, err)
	}
	if ok, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: uniq(t, "never-registered"), Ip: "10.5.0.9", Port: 1, Ephemeral: true}); err != nil || !ok {
		t.Errorf("DeregisterInstance of an unknown service = %v, %v; want success", ok, err)
	}

	waitFirstBeat(t, provider, one.Ip, one.Port)
	if _, err := provider.DeregisterInstance(vo.DeregisterInstanceParam{ServiceName: svc, Ip: one.Ip, Port: one.Port, Ephemeral: true}); err != nil {
		t.Fatal(err)
	}
	if s := serverList(t, n, harness.GroupedName("", svc), ""); len(s.Hosts) != 0 {
		t.Errorf("server lists %v after the last deregister, want []", rawAddrs(s))
	}
	harness.Eventually(t, pollDeadline, 100*time.Millisecond, func() error {
		got, err := consumer.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if err != nil {
			return err
		}
		if len(got) != 0 {
			return fmt.Errorf("consumer still sees %v (UpdateCacheWhenEmpty is on)", addrs(got))
		}
		return nil
	})
}

// TestGetAllServicesInfo: service/list returns bare names of the group,
// paged.
func TestGetAllServicesInfo(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	group := "LIST_" + uniq(t, "g")
	var want []string
	for i := range 3 {
		svc := uniq(t, fmt.Sprintf("s%d", i))
		p := inst(svc, "10.7.0.1", uint64(80+i), "")
		p.GroupName = group
		c.MustRegister(t, p)
		want = append(want, svc)
	}
	inDefault := uniq(t, "default")
	c.MustRegister(t, inst(inDefault, "10.7.0.2", 80, ""))

	var all []string
	for page := uint32(1); page <= 2; page++ {
		l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: group, PageNo: page, PageSize: 2})
		if err != nil {
			t.Fatalf("GetAllServicesInfo(page %d): %v", page, err)
		}
		if l.Count != 3 {
			t.Errorf("page %d: count %d, want 3", page, l.Count)
		}
		if wantLen := map[uint32]int{1: 2, 2: 1}[page]; len(l.Doms) != wantLen {
			t.Errorf("page %d (size 2): %v, want %d names", page, l.Doms, wantLen)
		}
		all = append(all, l.Doms...)
	}
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("pages 1+2 = %v, want the bare names %v", all, want)
	}
	l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: group, PageNo: 3, PageSize: 2})
	if err != nil || len(l.Doms) != 0 {
		t.Errorf("page 3 = %v, %v; want no names", l.Doms, err)
	}

	// Default group (other tests' services are there too): page through all.
	found := false
	for page := uint32(1); page <= 50 && !found; page++ {
		l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: page, PageSize: 100})
		if err != nil {
			t.Fatalf("GetAllServicesInfo(DEFAULT_GROUP page %d): %v", page, err)
		}
		found = slices.Contains(l.Doms, inDefault)
		if len(l.Doms) < 100 {
			break
		}
	}
	if !found {
		t.Errorf("GetAllServicesInfo(DEFAULT_GROUP) does not list %q", inDefault)
	}
}

// TestGetService: GetService returns the grouped name, the clusters echo,
// cacheMillis and the hosts.
func TestGetService(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	svc := uniq(t, "svc")
	c.MustRegister(t, inst(svc, "10.8.0.1", 80, "a"))
	c.MustRegister(t, inst(svc, "10.8.0.2", 80, "b"))

	s, err := c.GetService(vo.GetServiceParam{ServiceName: svc})
	if err != nil {
		t.Fatalf("GetService: %v", err)
	}
	if s.Name != harness.GroupedName("", svc) {
		t.Errorf("Name = %q, want %q", s.Name, harness.GroupedName("", svc))
	}
	if s.Clusters != "" {
		t.Errorf("Clusters = %q, want \"\"", s.Clusters)
	}
	if s.CacheMillis != 10000 {
		t.Errorf("CacheMillis = %d, want 10000", s.CacheMillis)
	}
	if s.LastRefTime == 0 {
		t.Errorf("LastRefTime = 0")
	}
	if !sameSet(addrs(s.Hosts), "10.8.0.1:80", "10.8.0.2:80") {
		t.Errorf("Hosts = %v", addrs(s.Hosts))
	}

	s, err = c.GetService(vo.GetServiceParam{ServiceName: svc, Clusters: []string{"b"}})
	if err != nil {
		t.Fatalf("GetService(clusters b): %v", err)
	}
	if s.Clusters != "b" || !sameSet(addrs(s.Hosts), "10.8.0.2:80") {
		t.Errorf("GetService(clusters b) = clusters %q hosts %v, want \"b\" [10.8.0.2:80]", s.Clusters, addrs(s.Hosts))
	}

	s, err = c.GetService(vo.GetServiceParam{ServiceName: uniq(t, "unknown")})
	if err != nil {
		t.Errorf("GetService(unknown service): %v (the server must answer 200 with no hosts)", err)
	} else if len(s.Hosts) != 0 {
		t.Errorf("GetService(unknown service) hosts = %v", addrs(s.Hosts))
	}
}

// TestBeatKeepAlive: SDK beats keep an instance healthy past the 15 s
// timeout, while a raw instance without beats turns unhealthy and is
// removed after its preserved.* timeouts (2 s / 4 s here).
func TestBeatKeepAlive(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	svc := uniq(t, "svc")
	gname := harness.GroupedName("", svc)

	alive := inst(svc, "10.9.0.1", 80, "")
	registered := time.Now()
	c.MustRegister(t, alive)
	rawAt := time.Now()
	rawRegister(t, n, svc, "", "10.9.0.2", 80, url.Values{"metadata": {
		`{"preserved.heart.beat.interval":"1000","preserved.heart.beat.timeout":"2000","preserved.ip.delete.timeout":"4000"}`}})

	var unhealthyAt, goneAt time.Time
	const watch = 17 * time.Second // > the 15 s default heartbeat timeout
	for time.Since(registered) < watch {
		s := serverList(t, n, gname, "")
		now := time.Now()
		if a := s.Find(alive.Ip, int(alive.Port)); a == nil {
			t.Fatalf("%v after register: beating instance %s:%d is gone; server lists %v", now.Sub(registered).Round(time.Millisecond), alive.Ip, alive.Port, rawAddrs(s))
		} else if !a.Healthy {
			t.Fatalf("%v after register: beating instance %s:%d is unhealthy", now.Sub(registered).Round(time.Millisecond), alive.Ip, alive.Port)
		}
		switch r := s.Find("10.9.0.2", 80); {
		case r == nil && goneAt.IsZero():
			goneAt = now
		case r != nil && !r.Healthy && unhealthyAt.IsZero():
			unhealthyAt = now
		case r != nil && !goneAt.IsZero():
			t.Errorf("expired raw instance came back at %v", now.Sub(rawAt))
		}
		time.Sleep(250 * time.Millisecond) // sampling period of the watch, not synchronisation
	}

	beats := c.Wire.AnsweredBeats(alive.Ip, alive.Port)
	t.Logf("SDK sent %d answered beats in %v; raw instance unhealthy after %v, removed after %v",
		beats, time.Since(registered).Round(time.Millisecond), sinceOrNever(unhealthyAt, rawAt), sinceOrNever(goneAt, rawAt))
	if beats < 3 {
		t.Errorf("only %d answered beats in %v; the SDK beats every 5 s", beats, watch)
	}
	if goneAt.IsZero() {
		t.Errorf("raw instance without beats (delete timeout 4 s) still listed after %v", time.Since(rawAt).Round(time.Millisecond))
	} else {
		if d := goneAt.Sub(rawAt); d < 3500*time.Millisecond || d > 10*time.Second {
			t.Errorf("raw instance removed %v after register; want about 4 s (preserved.ip.delete.timeout=4000)", d.Round(time.Millisecond))
		}
		if unhealthyAt.IsZero() {
			t.Errorf("raw instance was never seen unhealthy before it was removed")
		}
	}
	if !unhealthyAt.IsZero() {
		if d := unhealthyAt.Sub(rawAt); d < 1500*time.Millisecond || d > 8*time.Second {
			t.Errorf("raw instance unhealthy %v after register; want about 2 s (preserved.heart.beat.timeout=2000)", d.Round(time.Millisecond))
		}
	}

	// The client's own view agrees (cache kept fresh by push or poll).
	harness.Eventually(t, pollDeadline, 200*time.Millisecond, func() error {
		got, err := c.SelectInstances(vo.SelectInstancesParam{ServiceName: svc, HealthyOnly: true})
		if err != nil {
			return err
		}
		if !sameSet(addrs(got), "10.9.0.1:80") {
			return fmt.Errorf("SelectInstances(healthy) = %v, want [10.9.0.1:80]", addrs(got))
		}
		return nil
	})
}

func sinceOrNever(at, from time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}

// TestUpdateInstance: UpdateInstance (PUT /instance) changes weight and
// metadata, and enabled=false hides the instance.
func TestUpdateInstance(t *testing.T) {
	t.Parallel()
	n := server.Get(t)
	c := harness.NewV1Client(t, "c", n)
	svc := uniq(t, "svc")
	p := inst(svc, "10.10.0.1", 80, "a")
	p.Metadata = map[string]string{"v": "1"}
	c.MustRegister(t, p)
	c.MustRegister(t, inst(svc, "10.10.0.2", 80, "a"))
	got, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
	if err != nil || len(got) != 2 {
		t.Fatalf("SelectAllInstances = %v, %v", addrs(got), err)
	}

	start := time.Now()
	ok, err := c.UpdateInstance(vo.UpdateInstanceParam{ServiceName: svc, Ip: p.Ip, Port: p.Port, ClusterName: "a",
		Weight: 5, Enable: true, Ephemeral: true, Metadata: map[string]string{"v": "2", "new": "x"}})
	if err != nil || !ok {
		t.Fatalf("UpdateInstance = %v, %v", ok, err)
	}
	wantMD := map[string]string{"v": "2", "new": "x"}
	harness.Eventually(t, serverDeadline, 100*time.Millisecond, func() error {
		r := serverList(t, n, harness.GroupedName("", svc), "").Find(p.Ip, int(p.Port))
		if r == nil {
			return errors.New("instance gone from the server")
		}
		if r.Weight != 5 || !maps.Equal(r.Metadata, wantMD) {
			return fmt.Errorf("server has weight %v metadata %v, want 5 %v", r.Weight, r.Metadata, wantMD)
		}
		return nil
	})
	harness.Eventually(t, pollDeadline, 100*time.Millisecond, func() error {
		got, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if err != nil {
			return err
		}
		for _, in := range got {
			if in.Ip == p.Ip {
				if in.Weight != 5 || !maps.Equal(in.Metadata, wantMD) {
					return fmt.Errorf("client sees weight %v metadata %v", in.Weight, in.Metadata)
				}
				return nil
			}
		}
		return fmt.Errorf("client does not see %s: %v", p.Ip, addrs(got))
	})
	t.Logf("client saw the update %v after UpdateInstance", time.Since(start).Round(time.Millisecond))

	// Disabling hides the instance from every client view.
	ok, err = c.UpdateInstance(vo.UpdateInstanceParam{ServiceName: svc, Ip: p.Ip, Port: p.Port, ClusterName: "a",
		Weight: 5, Enable: false, Ephemeral: true, Metadata: wantMD})
	if err != nil || !ok {
		t.Fatalf("UpdateInstance(enable=false) = %v, %v", ok, err)
	}
	harness.Eventually(t, serverDeadline, 100*time.Millisecond, func() error {
		if s := serverList(t, n, harness.GroupedName("", svc), ""); !sameSet(rawAddrs(s), "10.10.0.2:80") {
			return fmt.Errorf("server lists %v after disabling 10.10.0.1, want [10.10.0.2:80]", rawAddrs(s))
		}
		return nil
	})
	harness.Eventually(t, pollDeadline, 100*time.Millisecond, func() error {
		got, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if err != nil {
			return err
		}
		if !sameSet(addrs(got), "10.10.0.2:80") {
			return fmt.Errorf("client sees %v", addrs(got))
		}
		return nil
	})
}
