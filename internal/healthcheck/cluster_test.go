package healthcheck

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/distro/distrotest"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// probeLog records which node probed which address; every node's prober
// shares one set of down addresses.
type probeLog struct {
	mu   sync.Mutex
	by   map[string]map[string]int // address → node → probes
	down map[string]bool
}

type nodeProber struct {
	log  *probeLog
	node string
}

func (p nodeProber) Probe(ctx context.Context, pr *Probe) error {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	addr := pr.Addr()
	if p.log.by[addr] == nil {
		p.log.by[addr] = map[string]int{}
	}
	p.log.by[addr][p.node]++
	if p.log.down[addr] {
		return fmt.Errorf("connection refused")
	}
	return nil
}

func (l *probeLog) reset() {
	l.mu.Lock()
	l.by = map[string]map[string]int{}
	l.mu.Unlock()
}

func (l *probeLog) setDown(addr string, down bool) {
	l.mu.Lock()
	l.down[addr] = down
	l.mu.Unlock()
}

// probers returns, per address, the sorted nodes that probed it.
func (l *probeLog) probers() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for addr, nodes := range l.by {
		for n := range nodes {
			out[addr] = append(out[addr], n)
		}
		sort.Strings(out[addr])
	}
	return out
}

const services = 12

func svcName(i int) string { return fmt.Sprintf("db-%d", i) }

// instAddr is the one persistent instance of service i (a fake address:
// the probers never touch the network).
func instAddr(i int) (string, int) { return fmt.Sprintf("10.7.0.%d", i+1), 5432 }

func newCheckedCluster(t *testing.T, n int) (*distrotest.Cluster, *probeLog) {
	t.Helper()
	pl := &probeLog{by: map[string]map[string]int{}, down: map[string]bool{}}
	cfg := DefaultConfig()
	cfg.Interval, cfg.Threshold = checkInterval, 2
	c := distrotest.NewCluster(t, n, distrotest.Options{Log: t.Output(), Attach: func(node *distrotest.Node) func(context.Context) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		hc := New(cfg, node.Store, node.Engine, node.Local, nodeProber{log: pl, node: node.Addr}, clock.Real{}, log, nil)
		return hc.Run
	}})
	c.WaitReady(10 * time.Second)
	// Ready is not agreement: a node that started before a peer may still
	// see it down, and route writes to another owner than its peers do.
	waitEligible(t, c, n)
	return c, pl
}

// waitEligible waits until every running node sees n eligible members.
func waitEligible(t *testing.T, c *distrotest.Cluster, n int) {
	t.Helper()
	distrotest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, a := range c.Addrs() {
			if got := c.Node(a).Engine.View().Eligible(); len(got) != n {
				return fmt.Errorf("%s sees eligible %v", a, got)
			}
		}
		return nil
	})
}

// ownersOnly reports whether, in what pl recorded, every service's
// instance was probed, and only by the service's owner in node via's view.
func ownersOnly(c *distrotest.Cluster, pl *probeLog, via string) error {
	got := pl.probers()
	eng := c.Node(via).Engine
	for i := 0; i < services; i++ {
		ip, port := instAddr(i)
		addr := fmt.Sprintf("%s:%d", ip, port)
		owner := eng.Owner(distrotest.Key(svcName(i)))
		if !slices.Equal(got[addr], []string{owner}) {
			return fmt.Errorf("%s (service %s) probed by %v, want only its owner %s", addr, svcName(i), got[addr], owner)
		}
	}
	return nil
}

// checkInterval is the check period of newCheckedCluster's checkers.
const checkInterval = 500 * time.Millisecond

// waitOwnersOnly waits until a window of probes shows every instance
// probed by exactly its owner (ownersOnly): after a membership change the
// old owners may still finish a check in flight, so each attempt forgets
// what was probed before and watches a fresh window of three check
// intervals, until a deadline. (Virtual time: the tests run in a synctest
// bubble.)
func waitOwnersOnly(t *testing.T, c *distrotest.Cluster, pl *probeLog, via string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pl.reset()
		time.Sleep(3 * checkInterval)
		err := ownersOnly(c, pl, via)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// healthOn returns the stored health of service i's instance on node addr.
func healthOn(c *distrotest.Cluster, addr string, i int) (bool, error) {
	ip, port := instAddr(i)
	recs, _ := c.Node(addr).Store.Records(distrotest.Key(svcName(i)), []model.InstanceKey{{IP: ip, Port: port, Cluster: model.DefaultCluster}})
	if len(recs) != 1 || !recs[0].Alive() {
		return false, fmt.Errorf("service %s instance missing on %s", svcName(i), addr)
	}
	return recs[0].Kind == store.KindLive, nil
}

// waitHealthEverywhere waits until every running node sees service i's
// instance with the given health.
func waitHealthEverywhere(t *testing.T, c *distrotest.Cluster, i int, want bool) {
	t.Helper()
	distrotest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, a := range c.Addrs() {
			got, err := healthOn(c, a, i)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("service %s on %s: healthy %v, want %v", svcName(i), a, got, want)
			}
		}
		return nil
	})
}

// TestOnlyTheOwnerChecks: in a 3-node cluster each persistent instance is
// probed by exactly the owner of its service; verdicts replicate to every
// node; when ownership moves (a node joins, a node dies) the new owner
// takes over and the old one stops.
func TestOnlyTheOwnerChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, pl := newCheckedCluster(t, 3)
		defer c.StopAll()
		addrs := c.Addrs()
		ctx := context.Background()
		for i := 0; i < services; i++ {
			via := c.Node(addrs[i%3]).Engine // any node: writes are handed to the owner
			ip, port := instAddr(i)
			in := model.Instance{IP: ip, Port: port, Cluster: model.DefaultCluster, Weight: 1, Healthy: true, Enabled: true}
			if _, err := via.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: distrotest.Key(svcName(i)), Instance: in}); err != nil {
				t.Fatal(err)
			}
			via = c.Node(addrs[(i+1)%3]).Engine
			op := &registry.Op{Kind: registry.OpUpdateCluster, Key: distrotest.Key(svcName(i)), ClusterName: model.DefaultCluster,
				Cluster: model.DefaultClusterMeta(model.CheckTCP)}
			if _, err := via.Apply(ctx, op); err != nil {
				t.Fatal(err)
			}
		}
		// The settings replicate like any service settings.
		distrotest.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
			for _, a := range c.Addrs() {
				for i := 0; i < services; i++ {
					v := c.Node(a).Store.View(distrotest.Key(svcName(i)))
					if v == nil || v.Meta == nil || v.Meta.Clusters[model.DefaultCluster].HealthChecker.Type != model.CheckTCP {
						return fmt.Errorf("%s has no TCP checker for %s yet", a, svcName(i))
					}
				}
			}
			return nil
		})
		waitOwnersOnly(t, c, pl, addrs[0])

		// A verdict made by the owner reaches every node.
		ip, port := instAddr(0)
		pl.setDown(fmt.Sprintf("%s:%d", ip, port), true)
		waitHealthEverywhere(t, c, 0, false)

		// A fourth node joins: the keys it wins move to it, their old
		// owners stop checking them, and the new node checks them.
		members := append(slices.Clone(addrs), distrotest.Addr(4))
		c.SetMembers(members)
		c.Start(distrotest.Addr(4))
		c.WaitReady(10 * time.Second)
		waitEligible(t, c, 4)
		moved := 0
		for i := 0; i < services; i++ {
			if c.Node(addrs[0]).Engine.Owner(distrotest.Key(svcName(i))) == distrotest.Addr(4) {
				moved++
			}
		}
		if moved == 0 {
			t.Fatal("no key moved to the new node; pick other names")
		}
		waitOwnersOnly(t, c, pl, distrotest.Addr(4))

		// The owner of service 0 dies: a survivor takes over, keeps the
		// verdict while the instance is down, and restores it when it is up.
		dead := c.Node(addrs[0]).Engine.Owner(distrotest.Key(svcName(0)))
		c.Crash(dead)
		var survivors []string
		for _, a := range members {
			if a != dead {
				survivors = append(survivors, a)
			}
		}
		distrotest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
			for _, a := range survivors {
				if got := c.Node(a).Engine.View().Eligible(); len(got) != 3 {
					return fmt.Errorf("%s sees eligible %v", a, got)
				}
			}
			return nil
		})
		waitOwnersOnly(t, c, pl, survivors[0])
		waitHealthEverywhere(t, c, 0, false)
		pl.setDown(fmt.Sprintf("%s:%d", ip, port), false)
		waitHealthEverywhere(t, c, 0, true)
	})
}
