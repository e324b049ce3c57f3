package v2

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/distro-registry/distro/compat/harness"
)

// TestRegisterSelectSubscribe: register through a client on the writer
// node; a client on the reader node subscribes, selects, and is pushed a
// second instance registered by another writer client.
func TestRegisterSelectSubscribe(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		prov := newClient(t, "prov", tp.writer)
		prov2 := newClient(t, "prov2", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc := uniq(t, "svc")

		p := inst(svc, "10.40.0.1", 8080, "a")
		p.Weight = 2
		p.Metadata = map[string]string{"version": "1.2.3", "json": `{"k":"v+w"}`}
		prov.MustRegister(t, p)
		eventuallyListed(t, tp.all, svc, pkey(p))

		sub := subscribe(t, cons, svc, pkey(p))

		got, err := cons.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if err != nil || len(got) != 1 {
			t.Fatalf("SelectAllInstances = %v, %v; want [%s]", keys(got), err, pkey(p))
		}
		in := got[0]
		if in.Weight != 2 || !maps.Equal(in.Metadata, p.Metadata) || in.ClusterName != "a" {
			t.Errorf("instance weight=%v metadata=%v cluster=%q; want 2 %v \"a\"", in.Weight, in.Metadata, in.ClusterName, p.Metadata)
		}
		if !in.Healthy || !in.Enable || !in.Ephemeral {
			t.Errorf("healthy=%v enabled=%v ephemeral=%v, want all true", in.Healthy, in.Enable, in.Ephemeral)
		}
		if in.ServiceName != harness.GroupedName("", svc) {
			t.Errorf("host serviceName = %q, want the grouped %q", in.ServiceName, harness.GroupedName("", svc))
		}
		if want := fmt.Sprintf("10.40.0.1#8080#a#%s", harness.GroupedName("", svc)); in.InstanceId != want {
			t.Errorf("instanceId = %q, want %q", in.InstanceId, want)
		}
		s, err := cons.GetService(vo.GetServiceParam{ServiceName: svc})
		if err != nil {
			t.Fatalf("GetService: %v", err)
		}
		if s.Name != svc || s.GroupName != constant.DEFAULT_GROUP {
			t.Errorf("GetService name=%q group=%q; want the bare name %q and %q", s.Name, s.GroupName, svc, constant.DEFAULT_GROUP)
		}
		if s.CacheMillis != 10000 || s.LastRefTime == 0 {
			t.Errorf("GetService cacheMillis=%d lastRefTime=%d; want 10000 and a time", s.CacheMillis, s.LastRefTime)
		}

		q := inst(svc, "10.40.0.2", 8080, "b")
		changed := time.Now()
		prov2.MustRegister(t, q)
		expectPush(t, sub, "register via another client", changed, pkey(p), pkey(q))
		// The subscriber's cache follows the push.
		got, err = cons.SelectInstances(vo.SelectInstancesParam{ServiceName: svc, HealthyOnly: true})
		if err != nil || !harness.SameSet(keys(got), []string{pkey(p), pkey(q)}) {
			t.Errorf("SelectInstances(healthy) = %v, %v; want both", keys(got), err)
		}
		got, err = cons.SelectInstances(vo.SelectInstancesParam{ServiceName: svc, Clusters: []string{"b"}, HealthyOnly: true})
		if err != nil || !harness.SameSet(keys(got), []string{pkey(q)}) {
			t.Errorf("SelectInstances(cluster b) = %v, %v; want [%s]", keys(got), err, pkey(q))
		}
		picked := map[string]int{}
		for range 40 {
			one, err := cons.SelectOneHealthyInstance(vo.SelectOneHealthInstanceParam{ServiceName: svc})
			if err != nil {
				t.Fatalf("SelectOneHealthyInstance: %v", err)
			}
			picked[harness.InstanceKey(one.Ip, one.Port, one.ClusterName)]++
		}
		if len(picked) != 2 {
			t.Errorf("SelectOneHealthyInstance picked %v; want both instances", picked)
		}
		eventuallyListed(t, tp.all, svc, pkey(p), pkey(q))
	})
}

// TestBatchRegister: BatchRegisterInstance publishes a set of instances;
// a second batch replaces the client's set for that service.
func TestBatchRegister(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		prov := newClient(t, "prov", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc := uniq(t, "svc")
		sub := subscribe(t, cons, svc)

		a, b, c := inst(svc, "10.41.0.1", 80, ""), inst(svc, "10.41.0.2", 80, "x"), inst(svc, "10.41.0.3", 81, "")
		changed := time.Now()
		ok, err := prov.BatchRegisterInstance(vo.BatchRegisterInstanceParam{ServiceName: svc, Instances: []vo.RegisterInstanceParam{a, b, c}})
		if err != nil || !ok {
			t.Fatalf("BatchRegisterInstance(3) = %v, %v", ok, err)
		}
		expectPush(t, sub, "batch of 3", changed, pkey(a), pkey(b), pkey(c))
		eventuallyListed(t, tp.all, svc, pkey(a), pkey(b), pkey(c))

		d := inst(svc, "10.41.0.4", 80, "")
		changed = time.Now()
		ok, err = prov.BatchRegisterInstance(vo.BatchRegisterInstanceParam{ServiceName: svc, Instances: []vo.RegisterInstanceParam{b, d}})
		if err != nil || !ok {
			t.Fatalf("BatchRegisterInstance(2) = %v, %v", ok, err)
		}
		expectPush(t, sub, "second batch replacing the first", changed, pkey(b), pkey(d))
		eventuallyListed(t, tp.all, svc, pkey(b), pkey(d))
	})
}

// TestReRegisterReplaces: a client publishes one instance per service
// (Nacos 2); registering a different ip/port replaces the earlier one, and
// registering the same one again updates it.
func TestReRegisterReplaces(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		prov := newClient(t, "prov", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc := uniq(t, "svc")

		first := inst(svc, "10.42.0.1", 80, "")
		prov.MustRegister(t, first)
		eventuallyListed(t, tp.all, svc, pkey(first))
		sub := subscribe(t, cons, svc, pkey(first))

		second := inst(svc, "10.42.0.2", 81, "")
		changed := time.Now()
		prov.MustRegister(t, second)
		expectPush(t, sub, "re-register with another ip/port", changed, pkey(second))
		eventuallyListed(t, tp.all, svc, pkey(second))

		// Same instance again with new weight and metadata: an update.
		second.Weight, second.Metadata = 7, map[string]string{"v": "2"}
		prov.MustRegister(t, second)
		harness.Eventually(t, serverDeadline, 25*time.Millisecond, func() error {
			if err := serverView(tp.all, svc, pkey(second)); err != nil {
				return err
			}
			for _, n := range tp.all {
				s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false)
				if err != nil {
					return err
				}
				h := s.Find(second.Ip, int(second.Port))
				if h == nil || h.Weight != 7 || h.Metadata["v"] != "2" {
					return fmt.Errorf("%s lists %+v, want weight 7 metadata v=2", n.Name, h)
				}
			}
			return nil
		})
		harness.Eventually(t, pushDeadline, 25*time.Millisecond, func() error {
			got, err := cons.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0].Weight != 7 || got[0].Metadata["v"] != "2" {
				return fmt.Errorf("subscriber's cache has %v (%+v), want one instance with weight 7, v=2", keys(got), got)
			}
			return nil
		})
	})
}

// TestDeregister: deregistered instances leave every node and the
// subscriber; the last one leaves an empty list (UpdateCacheWhenEmpty);
// deregistering again succeeds.
func TestDeregister(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		provA := newClient(t, "provA", tp.writer)
		provB := newClient(t, "provB", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc := uniq(t, "svc")
		a, b := inst(svc, "10.43.0.1", 80, ""), inst(svc, "10.43.0.2", 80, "")
		provA.MustRegister(t, a)
		provB.MustRegister(t, b)
		eventuallyListed(t, tp.all, svc, pkey(a), pkey(b))
		sub := subscribe(t, cons, svc, pkey(a), pkey(b))

		changed := time.Now()
		provA.MustDeregister(t, a)
		expectPush(t, sub, "deregister one", changed, pkey(b))
		eventuallyListed(t, tp.all, svc, pkey(b))

		changed = time.Now()
		provB.MustDeregister(t, b)
		expectPush(t, sub, "deregister the last", changed)
		eventuallyListed(t, tp.all, svc)

		provB.MustDeregister(t, b) // idempotent
		got, err := cons.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: svc})
		if err != nil || len(got) != 0 {
			t.Errorf("SelectAllInstances after the last deregister = %v, %v; want []", keys(got), err)
		}
	})
}

// TestCloseClient: CloseClient ends the connection, and every instance of
// that client leaves every node; other clients' instances stay.
func TestCloseClient(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		leaving := newClient(t, "leaving", tp.writer)
		staying := newClient(t, "staying", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc1, svc2 := uniq(t, "one"), uniq(t, "two")
		l1, l2 := inst(svc1, "10.44.0.1", 80, ""), inst(svc2, "10.44.0.1", 80, "")
		s1 := inst(svc1, "10.44.0.2", 80, "")
		leaving.MustRegister(t, l1)
		leaving.MustRegister(t, l2)
		staying.MustRegister(t, s1)
		eventuallyListed(t, tp.all, svc1, pkey(l1), pkey(s1))
		eventuallyListed(t, tp.all, svc2, pkey(l2))
		sub := subscribe(t, cons, svc1, pkey(l1), pkey(s1))

		changed := time.Now()
		leaving.CloseClient()
		expectPush(t, sub, "CloseClient", changed, pkey(s1))
		eventuallyListed(t, tp.all, svc1, pkey(s1))
		eventuallyListed(t, tp.all, svc2)
		t.Logf("all %d node(s) dropped the closed client's instances %v after CloseClient", len(tp.all), time.Since(changed).Round(time.Millisecond))
	})
}

// TestPushLatency measures register → subscribe callback: the registering
// client is on the writer node, the subscriber on the reader node (another
// node in the cluster). Each sample re-registers the client's instance on
// a new port and waits for the callback listing exactly it. It runs before
// the parallel tests of the package (other packages may still run). Only
// correctness is asserted; the figures are logged (target: p99 ≤ 100 ms
// across nodes).
func TestPushLatency(t *testing.T) {
	eachTopologySerial(t, func(t *testing.T, tp topo) {
		const samples = 50
		prov := newClient(t, "prov", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		svc := uniq(t, "svc")
		first := inst(svc, "10.45.0.1", 30000, "")
		prov.MustRegister(t, first)
		eventuallyListed(t, tp.all, svc, pkey(first))
		sub := subscribe(t, cons, svc, pkey(first))

		var lat []time.Duration
		for i := range samples {
			p := inst(svc, "10.45.0.1", uint64(30001+i), "")
			changed := time.Now()
			prov.MustRegister(t, p)
			ev, seen, ok := sub.WaitForHosts(pushDeadline, pkey(p))
			if !ok {
				t.Fatalf("sample %d: no callback with [%s] within %v; callbacks: %s", i, pkey(p), pushDeadline, sub.Describe(seen))
			}
			lat = append(lat, ev.At.Sub(changed))
		}
		logLatencies(t, fmt.Sprintf("register on %s -> callback on a client of %s", tp.writer.Name, tp.reader.Name), lat)
	})
}

func logLatencies(t *testing.T, what string, lat []time.Duration) {
	s := append([]time.Duration(nil), lat...)
	sortDurations(s)
	t.Logf("push latency, %s: n=%d min=%v p50=%v p90=%v p99=%v max=%v",
		what, len(s), s[0].Round(100*time.Microsecond), percentile(s, 0.50).Round(100*time.Microsecond),
		percentile(s, 0.90).Round(100*time.Microsecond), percentile(s, 0.99).Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond))
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// TestGetAllServicesInfo: ServiceListRequest pages the bare names of a
// group (read on the reader node: replicated services are listed too).
func TestGetAllServicesInfo(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topo) {
		prov := newClient(t, "prov", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		group := "G_" + harness.RandHex()
		addToken(t, group)
		var want []string
		for i := range 3 {
			svc := uniq(t, fmt.Sprintf("s%d", i))
			p := inst(svc, "10.49.0.1", uint64(80+i), "")
			p.GroupName = group
			prov.MustRegister(t, p)
			want = append(want, svc)
		}
		harness.Eventually(t, serverDeadline, 50*time.Millisecond, func() error {
			var all []string
			for page := uint32(1); page <= 2; page++ {
				l, err := cons.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: group, PageNo: page, PageSize: 2})
				if err != nil {
					return fmt.Errorf("GetAllServicesInfo(page %d): %w", page, err)
				}
				if l.Count != 3 {
					return fmt.Errorf("page %d: count %d (names %v), want 3", page, l.Count, l.Doms)
				}
				if wantLen := map[uint32]int{1: 2, 2: 1}[page]; len(l.Doms) != wantLen {
					return fmt.Errorf("page %d (size 2): %v, want %d names", page, l.Doms, wantLen)
				}
				all = append(all, l.Doms...)
			}
			if !harness.SameSet(all, want) {
				return fmt.Errorf("pages 1+2 = %v, want the bare names %v", harness.Sorted(all), harness.Sorted(want))
			}
			return nil
		})
	})
}

// TestSubscribeBeforeRegister: an application starting up subscribes to
// many services nobody has registered yet (here 1000, concurrently), and
// providers appear right after their consumers subscribed. Every
// subscriber must be pushed its provider: the v2 SDK drops a push whose
// lastRefTime is not above the one it holds from the subscribe answer, and
// it never polls, so such a push is lost for good.
func TestSubscribeBeforeRegister(t *testing.T) {
	eachOwnTopology(t, func(t *testing.T, tp topo) {
		const (
			bulk    = 1000
			workers = 16
			checked = 100 // services subscribed, then registered at once
			pairs   = 4   // subscribe+register pairs in flight
		)
		prov := newClient(t, "prov", tp.writer)
		cons := newClient(t, "cons", tp.reader)
		base := uniq(t, "svc")
		start := time.Now()
		errs := make(chan error, bulk)
		work := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range work {
					name := fmt.Sprintf("%s-bulk-%04d", base, i)
					if err := cons.Subscribe(&vo.SubscribeParam{ServiceName: name, SubscribeCallback: newSubscriber().Callback}); err != nil {
						errs <- fmt.Errorf("Subscribe(%s): %w", name, err)
					}
				}
			})
		}
		for i := range bulk {
			work <- i
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("subscribed to %d unregistered services in %v", bulk, time.Since(start).Round(time.Millisecond))

		// Each checked service: subscribe, then register its provider at
		// once (all services concurrently).
		names := make([]string, checked)
		subs := make([]*harness.V2Subscriber, checked)
		changed := make([]time.Time, checked)
		stepErrs := make(chan error, checked)
		steps := make(chan int)
		var rwg sync.WaitGroup
		for range pairs {
			rwg.Go(func() {
				for i := range steps {
					if err := cons.Subscribe(&vo.SubscribeParam{ServiceName: names[i], SubscribeCallback: subs[i].Callback}); err != nil {
						stepErrs <- fmt.Errorf("Subscribe(%s): %w", names[i], err)
						continue
					}
					changed[i] = time.Now()
					if ok, err := prov.RegisterInstance(inst(names[i], "10.50.0.1", 80, "")); err != nil || !ok {
						stepErrs <- fmt.Errorf("RegisterInstance(%s) = %v, %v", names[i], ok, err)
					}
				}
			})
		}
		for i := range checked {
			names[i], subs[i] = fmt.Sprintf("%s-%03d", base, i), newSubscriber()
		}
		for i := range checked {
			steps <- i
		}
		close(steps)
		rwg.Wait()
		close(stepErrs)
		for err := range stepErrs {
			t.Fatal(err)
		}
		var lost []string
		want := harness.InstanceKey("10.50.0.1", 80, "")
		for i := range checked {
			if _, seen, ok := subs[i].WaitForHosts(time.Until(changed[i].Add(pushDeadline)), want); !ok {
				lost = append(lost, lostPushEvidence(t, cons, tp.reader, names[i], changed[i], subs[i].Describe(seen)))
			}
		}
		if n := len(lost); n > 0 {
			if n > 5 {
				lost = append(lost[:5], fmt.Sprintf("... and %d more", n-5))
			}
			t.Errorf("%d of %d subscribers were never told about their provider (no callback within %v of the register; the v2 SDK drops a push whose lastRefTime is not above the one it holds, logging \"out of date data received\"):\n  %s",
				n, checked, pushDeadline, strings.Join(lost, "\n  "))
		}
		eventuallyListed(t, tp.all, names[0], want)
	})
}

// lostPushEvidence describes a subscriber that missed a change: the
// lastRefTime its SDK cache holds (from the subscribe answer or a push),
// what the node it is connected to serves now, and the SDK's warnings
// about dropped stale data around the change.
func lostPushEvidence(t *testing.T, c *harness.V2Client, n *harness.Node, svc string, changed time.Time, callbacks string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: change at %s (%d ms); callbacks: %s", svc, changed.Format("15:04:05.000"), changed.UnixMilli(), callbacks)
	if s, err := c.GetService(vo.GetServiceParam{ServiceName: svc}); err == nil {
		fmt.Fprintf(&b, "\n    SDK cache: lastRefTime=%d hosts=%v", s.LastRefTime, keys(s.Hosts))
	}
	if s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false); err == nil {
		fmt.Fprintf(&b, "\n    %s serves (v1 instance/list): lastRefTime=%d hosts=%v", n.Name, s.LastRefTime, s.Keys())
	}
	for _, ln := range sdkLog.since(changed.Add(-time.Second)) {
		if ln.at.After(changed.Add(pushDeadline)) {
			break
		}
		if strings.Contains(ln.msg, "out of date") || strings.Contains(ln.msg, svc) {
			fmt.Fprintf(&b, "\n    SDK log %s %s %.600s", ln.at.Format("15:04:05.000"), ln.level, ln.msg)
		}
	}
	return b.String()
}
