package distro_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/distro/distrotest"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/model"
)

// beaters keeps a set of instances alive the way v1 clients do: a full beat
// every period to a random running node, retrying on another node when one
// fails. It records every instance's last successful beat.
type beaters struct {
	c      *distrotest.Cluster
	svc    string
	period time.Duration
	ins    []model.Instance
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	rng    *rand.Rand
	mu     sync.Mutex
	// only, if set, limits the nodes the clients can reach.
	only []string
}

// shortLived gives instances compressed timeouts: unhealthy after 3 s,
// deleted after 6 s, as in reliability.md's compressed timings.
func shortLived(ip string, port int) model.Instance {
	in := distrotest.Instance(ip, port)
	in.Metadata = map[string]string{model.MetaHeartBeatTimeout: "3000", model.MetaIPDeleteTimeout: "6000", model.MetaHeartBeatInterval: "1000"}
	return in
}

func startBeaters(c *distrotest.Cluster, svc string, n int, period time.Duration, seed uint64) *beaters {
	var ins []model.Instance
	for i := 0; i < n; i++ {
		ins = append(ins, shortLived(fmt.Sprintf("10.9.%d.%d", i/250, i%250+1), 7000+i))
	}
	return startBeatersOn(c, svc, ins, period, seed, nil)
}

// startBeatersOn keeps ins alive through the nodes in only (all when nil).
func startBeatersOn(c *distrotest.Cluster, svc string, ins []model.Instance, period time.Duration, seed uint64, only []string) *beaters {
	b := &beaters{c: c, svc: svc, period: period, ins: ins, only: only, stop: make(chan struct{}), rng: rand.New(rand.NewPCG(seed, 1))}
	for i := range b.ins {
		b.wg.Go(func() { b.loop(b.ins[i]) })
	}
	return b
}

// waitDown waits until every node in side sees every node in other as DOWN,
// so that a partition has taken effect in the views before a test writes.
func waitDown(t *testing.T, c *distrotest.Cluster, side, other []string) {
	t.Helper()
	distrotest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, a := range side {
			for _, o := range other {
				if st := c.Node(a).Engine.View().StateOf(o); st != distro.StateDown {
					return fmt.Errorf("%s sees %s as %s", a, o, st)
				}
			}
		}
		return nil
	})
}

func (b *beaters) pick() []string {
	addrs := b.c.Addrs()
	if b.only != nil {
		addrs = slices.Clone(b.only)
	}
	b.mu.Lock()
	b.rng.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	b.mu.Unlock()
	return addrs
}

func (b *beaters) loop(in model.Instance) {
	t := time.NewTicker(b.period)
	defer t.Stop()
	for {
		for _, via := range b.pick() {
			if _, err := b.c.Beat(via, b.svc, in); err == nil {
				break
			}
		}
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

func (b *beaters) Stop() { b.once.Do(func() { close(b.stop) }); b.wg.Wait() }

func (b *beaters) want() []string {
	var out []string
	for _, in := range b.ins {
		out = append(out, fmt.Sprintf("%s:%d", in.IP, in.Port))
	}
	slices.Sort(out)
	return out
}

// allPresent checks that every beating instance is listed on every node.
func (b *beaters) allPresent() error {
	want := b.want()
	for _, a := range b.c.Addrs() {
		got := b.c.Instances(a, b.svc)
		if !slices.Equal(got, want) {
			return fmt.Errorf("node %s lists %d of %d instances (missing %v)", a, len(got), len(want), missing(want, got))
		}
	}
	return nil
}

func missing(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	if len(out) > 5 {
		out = append(out[:5], "...")
	}
	return out
}

// Partition with writes on both sides, then heal: every write is present
// everywhere, without a single heartbeat in between (issue item 6).
func TestPartitionWritesOnBothSidesMerge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		a, b, cc := distrotest.Addr(1), distrotest.Addr(2), distrotest.Addr(3)
		c.Net.Partition([]string{a}, []string{b, cc})
		waitDown(t, c, []string{a}, []string{b, cc})
		waitDown(t, c, []string{b, cc}, []string{a})
		var want []string
		for i := 0; i < 20; i++ {
			via := a
			if i%2 == 1 {
				via = []string{b, cc}[i%4/2]
			}
			// Persistent instances: no heartbeats at all, so only the merge
			// can bring them together.
			in := distrotest.Instance(fmt.Sprintf("10.2.0.%d", i+1), 80)
			in.Ephemeral = false
			if err := c.Register(via, "split", in); err != nil {
				t.Fatalf("write on %s during partition: %v", via, err)
			}
			want = append(want, fmt.Sprintf("%s:80", in.IP))
		}
		slices.Sort(want)
		c.Net.Heal()
		distrotest.Eventually(t, 15*time.Second, 100*time.Millisecond, func() error {
			if err := c.Converged(); err != nil {
				return err
			}
			if got := c.Instances(a, "split"); !slices.Equal(got, want) {
				return fmt.Errorf("have %v", got)
			}
			return nil
		})
	})
}

// A deregistration made on one side of a partition is not undone by the
// other side's stale copy after the heal (invariant I3).
func TestNoResurrectionAfterPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		a, b, cc := distrotest.Addr(1), distrotest.Addr(2), distrotest.Addr(3)
		in := distrotest.Instance("10.3.0.1", 80)
		in.Ephemeral = false
		if err := c.Register(a, "res", in); err != nil {
			t.Fatal(err)
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		c.Net.Partition([]string{a}, []string{b, cc})
		waitDown(t, c, []string{b, cc}, []string{a})
		if err := c.Deregister(b, "res", "10.3.0.1", 80); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if got := c.Instances(a, "res"); len(got) != 1 {
			t.Fatalf("isolated side should still hold its stale copy, has %v", got)
		}
		c.Net.Heal()
		distrotest.Eventually(t, 15*time.Second, 100*time.Millisecond, func() error {
			if err := c.Converged(); err != nil {
				return err
			}
			if got := c.Instances(a, "res"); len(got) != 0 {
				return fmt.Errorf("resurrected: %v", got)
			}
			return nil
		})
		// And it stays gone through later verification rounds.
		time.Sleep(5 * time.Second)
		for _, n := range c.Addrs() {
			if got := c.Instances(n, "res"); len(got) != 0 {
				t.Fatalf("resurrected on %s: %v", n, got)
			}
		}
	})
}

// Killing the owner of a service under heartbeat load loses no live
// instance (Nacos #1873): the new owner grants a grace period and the
// clients' beats reach it.
func TestOwnerCrashUnderHeartbeatLoadLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		b := startBeaters(c, "hb", 30, time.Second, 7)
		defer b.Stop()
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, b.allPresent)
		owner := c.Node(distrotest.Addr(1)).Engine.Owner(distrotest.Key("hb"))
		c.Crash(owner)
		// For 20 s (more than three delete timeouts) every instance stays
		// listed on every surviving node.
		for i := 0; i < 40; i++ {
			time.Sleep(500 * time.Millisecond)
			if err := b.allPresent(); err != nil {
				t.Fatalf("after owner %s crashed, at %v: %v", owner, time.Duration(i+1)*500*time.Millisecond, err)
			}
		}
		b.Stop()
		// Once the clients stop, the instances do expire (within delete
		// timeout + scan + sync).
		distrotest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
			for _, a := range c.Addrs() {
				if n := len(c.Instances(a, "hb")); n != 0 {
					return fmt.Errorf("%s still lists %d instances", a, n)
				}
			}
			return nil
		})
	})
}

// A restarted node loads a snapshot, becomes ready, and converges.
func TestRestartLoadsSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		for i := 0; i < 300; i++ {
			in := distrotest.Instance(fmt.Sprintf("10.4.%d.%d", i/200, i%200+1), 80)
			in.Ephemeral = false
			if err := c.Register(distrotest.Addr(i%3+1), fmt.Sprintf("snap-%d", i%40), in); err != nil {
				t.Fatal(err)
			}
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		c.Crash(distrotest.Addr(3))
		for i := 0; i < 50; i++ {
			in := distrotest.Instance(fmt.Sprintf("10.5.0.%d", i+1), 80)
			in.Ephemeral = false
			if err := c.Register(distrotest.Addr(1), "after-crash", in); err != nil {
				t.Fatal(err)
			}
		}
		n := c.Start(distrotest.Addr(3))
		if ok, _ := n.Engine.Ready(); ok {
			t.Fatal("a restarted node must not be ready before its load")
		}
		c.WaitReady(10 * time.Second)
		if _, msg := n.Engine.Ready(); !strings.Contains(msg, "snapshot") {
			t.Fatalf("node 3 became ready without a snapshot: %s", msg)
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		if got := len(c.Instances(distrotest.Addr(3), "after-crash")); got != 50 {
			t.Fatalf("restarted node has %d of 50 instances written while it was down", got)
		}
	})
}

// A starting node refuses to serve a snapshot (Nacos #8436): here two nodes
// cannot reach each other, so neither can load or decide it is first.
func TestNotReadyNodeServesNoSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := distrotest.NewCluster(t, 2, distrotest.Options{Log: t.Output(),
			Engine:      func(cfg *distro.Config) { cfg.StartupTimeout = time.Hour },
			BeforeStart: func(n *distrotest.Network) { n.Partition([]string{distrotest.Addr(1)}, []string{distrotest.Addr(2)}) }})
		defer c.StopAll()
		time.Sleep(5 * time.Second)
		for _, a := range c.Addrs() {
			if ok, _ := c.Node(a).Engine.Ready(); ok {
				t.Fatalf("%s became ready without a snapshot or its startup timeout", a)
			}
		}
		err := c.Node(distrotest.Addr(1)).Engine.HandleSnapshot(context.Background(), distrotest.Addr(2), &clusterpb.SnapshotRequest{},
			func(*clusterpb.SnapshotChunk) error { return nil })
		if err == nil {
			t.Fatal("a node that is not ready served a snapshot")
		}
	})
}

// When every node starts at once, they all see each other starting and
// become ready without waiting for the startup timeout.
func TestWholeClusterStartBecomesReadyQuickly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := distrotest.NewCluster(t, 3, distrotest.Options{Log: t.Output(), Engine: func(cfg *distro.Config) { cfg.StartupTimeout = time.Hour }})
		defer c.StopAll()
		c.WaitReady(5 * time.Second)
		first := 0
		for _, a := range c.Addrs() {
			_, why := c.Node(a).Engine.Ready()
			switch {
			case strings.Contains(why, "every peer is starting too"):
				first++
			case !strings.Contains(why, "snapshot"):
				t.Fatalf("%s became ready for another reason: %s", a, why)
			}
		}
		if first == 0 {
			t.Fatal("no node recognised the whole-cluster start")
		}
	})
}

// A member added and another removed under load: every live instance stays
// listed and the cluster converges.
func TestMembershipChangeUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		b := startBeaters(c, "mc", 30, time.Second, 11)
		defer b.Stop()
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, b.allPresent)
		four := append(c.Addrs(), distrotest.Addr(4))
		c.SetMembers(four)
		c.Start(distrotest.Addr(4))
		c.WaitReady(10 * time.Second)
		for i := 0; i < 10; i++ {
			time.Sleep(500 * time.Millisecond)
			if err := b.allPresent(); err != nil {
				t.Fatalf("after adding node 4: %v", err)
			}
		}
		// Remove node 2 from the list, then stop it.
		without := []string{distrotest.Addr(1), distrotest.Addr(3), distrotest.Addr(4)}
		c.SetMembers(without)
		c.Crash(distrotest.Addr(2))
		for i := 0; i < 20; i++ {
			time.Sleep(500 * time.Millisecond)
			if err := b.allPresent(); err != nil {
				t.Fatalf("after removing node 2: %v", err)
			}
		}
		distrotest.Eventually(t, 5*time.Second, 100*time.Millisecond, c.Converged)
	})
}

// Asymmetric partition: node 1 cannot reach node 2, node 2 can reach node
// 1. Writes still succeed everywhere and the cluster converges after heal.
func TestAsymmetricPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		a, b := distrotest.Addr(1), distrotest.Addr(2)
		c.Net.Block(a, b)
		for i := 0; i < 30; i++ {
			in := distrotest.Instance(fmt.Sprintf("10.6.0.%d", i+1), 80)
			in.Ephemeral = false
			if err := c.Register(distrotest.Addr(i%3+1), fmt.Sprintf("asym-%d", i%5), in); err != nil {
				t.Fatalf("write %d failed: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Net.Heal()
		distrotest.Eventually(t, 15*time.Second, 100*time.Millisecond, c.Converged)
		total := 0
		for i := 0; i < 5; i++ {
			total += len(c.Instances(b, fmt.Sprintf("asym-%d", i)))
		}
		if total != 30 {
			t.Fatalf("node 2 lists %d of 30 instances", total)
		}
	})
}

// Dropped, duplicated, delayed and reordered messages: the cluster still
// converges to the same state (lattice merge + verification).
func TestMessageChaosConverges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{Seed: 42})
		defer c.StopAll()
		c.Net.SetFaults(distrotest.Faults{Drop: 0.2, Duplicate: 0.2, Delay: 5 * time.Millisecond, Jitter: 50 * time.Millisecond})
		for i := 0; i < 100; i++ {
			in := distrotest.Instance(fmt.Sprintf("10.7.0.%d", i%50+1), 80+i%3)
			in.Ephemeral = false
			in.Weight = float64(i % 7)
			via := distrotest.Addr(i%3 + 1)
			svc := fmt.Sprintf("chaos-%d", i%6)
			if i%5 == 4 {
				_ = c.Deregister(via, svc, in.IP, in.Port)
			} else if err := c.Register(via, svc, in); err != nil {
				t.Fatal(err)
			}
		}
		c.Net.SetFaults(distrotest.Faults{})
		distrotest.Eventually(t, 20*time.Second, 100*time.Millisecond, c.Converged)
	})
}

// A minority-side owner that times an instance out does not delete it when
// the majority side kept receiving its heartbeats (hazard H6).
func TestExpiryOnMinoritySideLosesToFresherBeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		b := startBeaters(c, "h6", 10, time.Second, 3)
		defer b.Stop()
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, b.allPresent)
		b.Stop()
		// Clients can only reach nodes 2 and 3 from now on; node 1 is cut off.
		a := distrotest.Addr(1)
		c.Net.Partition([]string{a}, []string{distrotest.Addr(2), distrotest.Addr(3)})
		rest := startBeatersOn(c, "h6", b.ins, time.Second, 5, []string{distrotest.Addr(2), distrotest.Addr(3)})
		defer rest.Stop()
		// Node 1 owns everything in its own view and expires them all.
		distrotest.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
			if n := len(c.Instances(a, "h6")); n != 0 {
				return fmt.Errorf("isolated node still lists %d", n)
			}
			return nil
		})
		c.Net.Heal()
		distrotest.Eventually(t, 15*time.Second, 100*time.Millisecond, func() error {
			if err := c.Converged(); err != nil {
				return err
			}
			return rest.allPresent()
		})
	})
}

// A peer message carrying invalid data is rejected whole and changes
// nothing.
func TestInvalidPeerMessageChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, distrotest.Options{})
		defer c.StopAll()
		n := c.Node(distrotest.Addr(1))
		before := distrotest.FullState(n.Store)
		bad := []*clusterpb.Request{
			{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: []*clusterpb.KeyRecords{
				{Key: &clusterpb.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "ok"},
					Records: []*clusterpb.Record{{Instance: &clusterpb.Instance{Ip: "10.0.0.1", Port: 80, Weight: 1, Cluster: "DEFAULT"}, Stamp: 5, Origin: "x"}}},
				{Key: &clusterpb.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "bad"},
					Records: []*clusterpb.Record{{Instance: &clusterpb.Instance{Ip: "10.0.0.1", Port: 70000, Weight: 1}, Stamp: 5, Origin: "x"}}},
			}}}},
			{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: []*clusterpb.KeyRecords{
				{Key: &clusterpb.ServiceKey{Namespace: "public", Group: "a@@b", Name: "x"}}}}}},
			{Kind: &clusterpb.Request_Forward{Forward: &clusterpb.ForwardRequest{Op: &clusterpb.WriteOp{Kind: 99}}}},
			{Kind: &clusterpb.Request_Digest{Digest: &clusterpb.DigestRequest{BucketCount: 3, Buckets: []uint64{1}}}},
			{Kind: &clusterpb.Request_Fetch{Fetch: &clusterpb.FetchRequest{Keys: []*clusterpb.ServiceKey{{Namespace: "", Group: "", Name: ""}}}}},
			{},
		}
		for i, req := range bad {
			if _, err := n.Engine.HandleCall(context.Background(), distrotest.Addr(2), req); err == nil {
				t.Errorf("bad request %d accepted", i)
			}
		}
		if after := distrotest.FullState(n.Store); after != before {
			t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// A client deregisters through the side of a partition where its instance
// already timed out, while the other side holds a live copy with a newer
// version (a beat there restored it after a timeout): the deregistration
// wins after the heal. Chaos F1 found that deregistering a locally expired
// instance recorded nothing.
func TestDeregisterOfLocallyExpiredInstanceSticks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{Health: func(h *health.Config) { h.ExpireMaxFraction = 0 }})
		defer c.StopAll()
		a, b, cc := distrotest.Addr(1), distrotest.Addr(2), distrotest.Addr(3)
		in := shortLived("10.12.0.1", 80)
		if _, err := c.Beat(a, "dx", in); err != nil {
			t.Fatal(err)
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		c.Net.Partition([]string{a}, []string{b, cc})
		// Silence for 4 s: the isolated node marks it unhealthy (3 s);
		// then beats to the isolated node only restore it there with a
		// fresh version, while the majority expires it (6 s).
		time.Sleep(4 * time.Second)
		for i := 0; i < 5; i++ {
			if _, err := c.Beat(a, "dx", in); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		if got := c.Instances(b, "dx"); len(got) != 0 {
			t.Fatalf("majority should have expired it, lists %v", got)
		}
		if err := c.Deregister(b, "dx", in.IP, in.Port); err != nil {
			t.Fatal(err)
		}
		c.Net.Heal()
		// It must never reappear on the side that took the deregistration
		// (it would, briefly, until the isolated node expired its copy).
		for i := 0; i < 100; i++ {
			for _, n := range []string{b, cc} {
				if got := c.Instances(n, "dx"); len(got) != 0 {
					t.Fatalf("%.1fs after the heal %s lists the deregistered instance again", float64(i)/10, n)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		distrotest.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
			if err := c.Converged(); err != nil {
				return err
			}
			for _, n := range c.Addrs() {
				if got := c.Instances(n, "dx"); len(got) != 0 {
					return fmt.Errorf("%s lists the deregistered instance: %v", n, got)
				}
			}
			return nil
		})
	})
}

// In a one-way partition (node 1 cannot reach node 2; node 2 reaches node
// 1), an instance whose client stopped still disappears from every node
// within the expiry bound: node 2 pulls the expiry from node 1 (chaos F3).
func TestOneWayPartitionExpiryReachesEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{Health: func(h *health.Config) { h.ExpireMaxFraction = 0 }})
		defer c.StopAll()
		a, b := distrotest.Addr(1), distrotest.Addr(2)
		// Register instances in many services, so some are owned by node 1
		// in its view and by node 2 in node 2's view.
		for i := 0; i < 20; i++ {
			if _, err := c.Beat(a, fmt.Sprintf("ow-%d", i), shortLived(fmt.Sprintf("10.13.0.%d", i+1), 80)); err != nil {
				t.Fatal(err)
			}
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		c.Net.Block(a, b)
		start := time.Now()
		// No beats: every instance must be gone everywhere within the delete
		// timeout (6 s) plus detection and a few verification rounds.
		distrotest.Eventually(t, 12*time.Second, 100*time.Millisecond, func() error {
			for _, n := range c.Addrs() {
				for i := 0; i < 20; i++ {
					if got := c.Instances(n, fmt.Sprintf("ow-%d", i)); len(got) != 0 {
						return fmt.Errorf("%s still lists ow-%d after %v", n, i, time.Since(start))
					}
				}
			}
			return nil
		})
	})
}

// A node whose clock runs 90 s slow or fast, cut off from its peers,
// deregisters instances the others registered (slow), or registers
// instances the others later deregister (fast): after the heal the later
// write wins everywhere (chaos F12).
func TestClockSkewDoesNotReorderWrites(t *testing.T) {
	for _, off := range []time.Duration{-90 * time.Second, 90 * time.Second} {
		t.Run(off.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				skewed := distrotest.Addr(2)
				c := newCluster(t, 3, distrotest.Options{ClockOffset: map[string]time.Duration{skewed: off}})
				defer c.StopAll()
				others := []string{distrotest.Addr(1), distrotest.Addr(3)}
				first, second := others[0], skewed
				if off > 0 {
					first, second = skewed, others[0]
				}
				for i := 0; i < 10; i++ {
					in := distrotest.Instance(fmt.Sprintf("10.14.0.%d", i+1), 80)
					in.Ephemeral = false
					if err := c.Register(first, fmt.Sprintf("skew-%d", i), in); err != nil {
						t.Fatal(err)
					}
				}
				distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
				// Cut the skewed node off, so the second writer applies
				// every write itself (it owns every key in its view).
				c.Net.Partition([]string{skewed}, others)
				waitDown(t, c, []string{skewed}, others)
				waitDown(t, c, others, []string{skewed})
				for i := 0; i < 10; i++ {
					if err := c.Deregister(second, fmt.Sprintf("skew-%d", i), fmt.Sprintf("10.14.0.%d", i+1), 80); err != nil {
						t.Fatal(err)
					}
				}
				c.Net.Heal()
				distrotest.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
					if err := c.Converged(); err != nil {
						return err
					}
					for i := 0; i < 10; i++ {
						if got := c.Instances(distrotest.Addr(1), fmt.Sprintf("skew-%d", i)); len(got) != 0 {
							return fmt.Errorf("deregistered instance still listed in skew-%d: %v", i, got)
						}
					}
					return nil
				})
			})
		})
	}
}

// A handed-on beat that sits in a connection past the sender's timeout (the
// sender then applied it itself) must not be applied by the owner after the
// client's later deregistration (chaos D8: a full beat re-registers).
func TestLateForwardedWriteIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, distrotest.Options{})
		defer c.StopAll()
		in := shortLived("10.15.0.1", 80)
		owner := c.Node(distrotest.Addr(1)).Engine.Owner(distrotest.Key("late"))
		var via string
		for _, a := range c.Addrs() {
			if a != owner {
				via = a
				break
			}
		}
		var hold atomic.Bool
		hold.Store(true)
		c.Net.SetHook(func(from, to string, req *clusterpb.Request) error {
			if req.GetForward() != nil && hold.Load() {
				time.Sleep(time.Second) // stuck in a connection, past the sender's 500 ms timeout
			}
			return nil
		})
		if _, err := c.Beat(via, "late", in); err != nil {
			t.Fatal(err)
		}
		hold.Store(false)
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
			if got := c.Instances(owner, "late"); len(got) != 1 {
				return fmt.Errorf("owner lists %v", got)
			}
			return nil
		})
		// The client deregisters at the owner before the stuck beat lands.
		if err := c.Deregister(owner, "late", in.IP, in.Port); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // the stuck beat has arrived by now
		for _, a := range c.Addrs() {
			if got := c.Instances(a, "late"); len(got) != 0 {
				t.Fatalf("%s lists the deregistered instance: a late handed-on beat re-registered it", a)
			}
		}
	})
}

// A node that has not loaded its data declines handed-on writes (the sender
// applies them itself) and changes nothing: it could otherwise stamp a
// deletion of a record it has not received yet below that record's version
// (chaos F12).
func TestNotReadyNodeDeclinesForwardedWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := distrotest.NewCluster(t, 2, distrotest.Options{Log: t.Output(),
			Engine:      func(cfg *distro.Config) { cfg.StartupTimeout = time.Hour },
			BeforeStart: func(n *distrotest.Network) { n.Partition([]string{distrotest.Addr(1)}, []string{distrotest.Addr(2)}) }})
		defer c.StopAll()
		time.Sleep(time.Second)
		n := c.Node(distrotest.Addr(1))
		if ok, _ := n.Engine.Ready(); ok {
			t.Fatal("node became ready")
		}
		before := distrotest.FullState(n.Store)
		resp, err := n.Engine.HandleCall(context.Background(), distrotest.Addr(2), &clusterpb.Request{Kind: &clusterpb.Request_Forward{
			Forward: &clusterpb.ForwardRequest{Op: &clusterpb.WriteOp{Kind: 1,
				Key:      &clusterpb.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "nr"},
				Instance: &clusterpb.Instance{Ip: "10.16.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true, Cluster: "DEFAULT"}}}}})
		if err != nil || resp.GetForward().GetStatus() != 503 {
			t.Fatalf("forward to a loading node: %v %v, want status 503", resp, err)
		}
		if after := distrotest.FullState(n.Store); after != before {
			t.Fatalf("a loading node applied a handed-on write:\n%s", after)
		}
	})
}
