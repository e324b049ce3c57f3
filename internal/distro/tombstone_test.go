package distro_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/distro/distrotest"
	"github.com/distro-registry/distro/internal/model"
)

// tombstones lists the deleted records of svc a node holds.
func tombstones(c *distrotest.Cluster, addr, svc string) int {
	n := 0
	for _, line := range strings.Split(distrotest.FullState(c.Node(addr).Store), "\n") {
		if strings.Contains(line, "@@"+svc+" ") && strings.HasSuffix(line, "/deleted") {
			n++
		}
	}
	return n
}

// A node cut off for longer than the tombstone retention must not bring
// back an instance deleted while it was away: the others keep the
// tombstone until it has acknowledged it, then collect it. Persistent
// instances live on Raft in a cluster (docs/protocol.md §13), but the Distro
// engine holds whatever the store gives it; the ephemeral case is a node
// that did not time the instance out while it was away (it was paused, so
// it skipped the paused time): here, timeouts longer than the partition.
func TestLongPartitionDoesNotBringBackDeletedInstance(t *testing.T) {
	for _, tt := range []struct {
		name string
		ip   string
		set  func(*model.Instance)
	}{
		{"persistent", "10.34.0.1", func(in *model.Instance) { in.Ephemeral = false }},
		{"ephemeral", "10.34.0.3", func(in *model.Instance) {
			in.Metadata = map[string]string{model.MetaHeartBeatTimeout: "3600000", model.MetaIPDeleteTimeout: "3600000"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { testLongPartitionTombstone(t, tt.ip, tt.set) })
	}
}

func testLongPartitionTombstone(t *testing.T, ip string, set func(*model.Instance)) {
	synctest.Test(t, func(t *testing.T) {
		const retention = 4 * time.Second
		c := newCluster(t, 3, distrotest.Options{Engine: func(cfg *distro.Config) { cfg.TombstoneRetention = retention }})
		defer c.StopAll()
		a, b, cc := distrotest.Addr(1), distrotest.Addr(2), distrotest.Addr(3)
		in := distrotest.Instance(ip, 80)
		set(&in)
		if err := c.Register(a, "tomb", in); err != nil {
			t.Fatal(err)
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		c.Net.Partition([]string{a}, []string{b, cc})
		waitDown(t, c, []string{b, cc}, []string{a})
		if err := c.Deregister(b, "tomb", in.IP, in.Port); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * retention)
		for _, n := range []string{b, cc} {
			if tombstones(c, n, "tomb") != 1 {
				t.Fatalf("%s collected the tombstone while node 1, which holds the instance, was away", n)
			}
			if held := c.Node(n).Engine.TombstoneHeld(); held <= 0 {
				t.Fatalf("%s reports no hold (%v)", n, held)
			}
		}
		if got := c.Instances(a, "tomb"); len(got) != 1 {
			t.Fatalf("the cut-off node should still hold its copy, has %v", got)
		}
		c.Net.Heal()
		healed := time.Now()
		for time.Since(healed) < 3*retention {
			time.Sleep(100 * time.Millisecond)
			for _, n := range []string{b, cc} {
				if got := c.Instances(n, "tomb"); len(got) != 0 {
					t.Fatalf("%v after the heal %s lists the deleted instance again", time.Since(healed), n)
				}
			}
		}
		if got := c.Instances(a, "tomb"); len(got) != 0 {
			t.Fatalf("the healed node still lists the deleted instance")
		}
		// Acknowledged now: collected everywhere.
		distrotest.Eventually(t, 3*retention, 100*time.Millisecond, func() error {
			for _, n := range c.Addrs() {
				if k := tombstones(c, n, "tomb"); k != 0 {
					return fmt.Errorf("%s still holds %d tombstones", n, k)
				}
			}
			return nil
		})
	})
}

// The hold is bounded: a member unreachable for longer than
// TombstoneHoldMax no longer keeps tombstones alive.
func TestTombstoneHoldIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const retention = 4 * time.Second
		c := newCluster(t, 3, distrotest.Options{Engine: func(cfg *distro.Config) {
			cfg.TombstoneRetention, cfg.TombstoneHoldMax = retention, 10*time.Second
		}})
		defer c.StopAll()
		a, b, cc := distrotest.Addr(1), distrotest.Addr(2), distrotest.Addr(3)
		in := distrotest.Instance("10.34.0.2", 80)
		in.Ephemeral = false
		if err := c.Register(b, "bound", in); err != nil {
			t.Fatal(err)
		}
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, c.Converged)
		c.Crash(a)
		waitDown(t, c, []string{b, cc}, []string{a})
		if err := c.Deregister(b, "bound", in.IP, in.Port); err != nil {
			t.Fatal(err)
		}
		time.Sleep(8 * time.Second)
		if tombstones(c, b, "bound") != 1 {
			t.Fatal("tombstone collected before the hold limit")
		}
		distrotest.Eventually(t, 6*time.Second, 100*time.Millisecond, func() error {
			if k := tombstones(c, b, "bound"); k != 0 {
				return fmt.Errorf("still %d tombstones past the hold limit", k)
			}
			return nil
		})
	})
}
