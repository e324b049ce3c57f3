package distro_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/distro/distrotest"
)

func peerStatus(n *distrotest.Node, addr string) (distro.PeerStatus, bool) {
	for _, p := range n.Engine.PeerStatuses() {
		if p.Addr == addr {
			return p, true
		}
	}
	return distro.PeerStatus{}, false
}

// TestPeerStatuses checks the per-peer figures the console shows: acknowledged
// syncs with their latency, verification rounds both ways, and a repair
// counted against the peer whose records repaired the divergence.
func TestPeerStatuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Two nodes: only a can repair b (with a third, b may repair from it).
		c := newCluster(t, 2, distrotest.Options{})
		defer c.StopAll()
		a, b := distrotest.Addr(1), distrotest.Addr(2)
		na, nb := c.Node(a), c.Node(b)
		if got := len(na.Engine.PeerStatuses()); got != 1 {
			t.Fatalf("%d peers listed, want 1 (self excluded)", got)
		}
		// A service a owns, registered through a: synced to b.
		svc := ""
		for i := 0; svc == ""; i++ {
			if name := fmt.Sprintf("st-%d", i); na.Engine.Owner(distrotest.Key(name)) == a {
				svc = name
			}
		}
		if err := c.Register(a, svc, distrotest.Instance("10.9.0.1", 80)); err != nil {
			t.Fatal(err)
		}
		distrotest.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
			p, _ := peerStatus(na, b)
			switch {
			case p.Synced == 0 || p.LastSync.IsZero():
				return fmt.Errorf("no acknowledged sync to %s: %+v", b, p)
			case p.LastVerify.IsZero() || p.VerifyErr != "":
				return fmt.Errorf("no clean verification round to %s: %+v", b, p)
			}
			if q, _ := peerStatus(nb, a); q.LastVerifiedBy.IsZero() {
				return fmt.Errorf("%s saw no round from %s: %+v", b, a, q)
			}
			return nil
		})
		if p, _ := peerStatus(na, b); p.SyncLatency <= 0 || p.SyncLatency/time.Duration(p.Synced) > time.Second {
			t.Fatalf("implausible sync latency %v over %d changes", p.SyncLatency, p.Synced)
		}
		// Drop a's syncs to b: b then diverges until verification repairs it
		// from a's records.
		before, _ := peerStatus(nb, a)
		c.Net.SetHook(func(from, to string, req *clusterpb.Request) error {
			if from == a && to == b && req.GetSync() != nil {
				return errors.New("sync dropped by the test")
			}
			return nil
		})
		if err := c.Register(a, svc, distrotest.Instance("10.9.0.2", 80)); err != nil {
			t.Fatal(err)
		}
		distrotest.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			if q, _ := peerStatus(nb, a); q.Repaired <= before.Repaired {
				return fmt.Errorf("no repair from %s counted on %s: %+v", a, b, q)
			}
			if got := len(c.Instances(b, svc)); got != 2 {
				return fmt.Errorf("%s lists %d instances, want 2", b, got)
			}
			return nil
		})
		if p, _ := peerStatus(na, b); p.QueueDepth == 0 {
			t.Fatalf("the failing sync to %s left no queued key: %+v", b, p)
		}
		c.Net.SetHook(nil)
	})
}
