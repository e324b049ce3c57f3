package v2

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distro-registry/distro/compat/harness"
)

// TestKillConnectedNode: a client that knows all three nodes is connected to
// node X (found through its connection label on /distro/admin/connections),
// and a second client knows only X. X is SIGKILLed:
//
//   - the roaming client reconnects to another node and registers again;
//     its instance stays listed, exactly once, on every surviving node the
//     whole time (never missing, never twice), also after the lease of the
//     dead node's connections expired;
//   - the pinned client cannot reconnect; its instance, held by the dead
//     node, ages out of the survivors after --conn-lease (5 s here) and a
//     subscriber on a survivor is pushed the removal;
//   - X restarts and, once ready, lists the same: the roaming instance
//     once, nothing of the pinned client.
func TestKillConnectedNode(t *testing.T) {
	t.Parallel()
	begin(t)
	c := harness.StartCluster(t, 3, harness.Options{Name: "v2k", Args: clusterArgs})
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes
	svc := uniq(t, "svc")

	roam := newClient(t, "roam", nodes...)
	x, conn := connectedTo(t, roam, 10*time.Second, nodes...)
	t.Logf("roaming client is connected to %s (%s), connection %s", x.Name, x.Addr(), conn.ID)
	var survivors []*harness.Node
	for _, n := range nodes {
		if n != x {
			survivors = append(survivors, n)
		}
	}
	pinned := newClient(t, "pinned", x)
	watch := newClient(t, "watch", survivors[0])

	r, p := inst(svc, "10.46.0.1", 80, ""), inst(svc, "10.46.0.2", 80, "")
	roam.MustRegister(t, r)
	pinned.MustRegister(t, p)
	eventuallyListed(t, nodes, svc, pkey(r), pkey(p))
	sub := subscribe(t, watch, svc, pkey(r), pkey(p))

	if err := x.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("SIGKILLed %s; watching %s and %s", x.Name, survivors[0].Name, survivors[1].Name)

	var (
		reconnectedAt time.Duration
		reconnectedTo string
		pGone         = map[string]time.Duration{}
		problems      []string
	)
	const watchFor = connLease + 10*time.Second
	tick := time.NewTicker(100 * time.Millisecond) // sampling period of the watch
	defer tick.Stop()
	for {
		since := time.Since(killed)
		for _, n := range survivors {
			s, err := n.HTTP().ListInstances(harness.GroupedName("", svc), "", false)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%v: %s: %v", since.Round(time.Millisecond), n.Name, err))
				continue
			}
			count := 0
			for _, h := range s.Hosts {
				if h.Key() == pkey(r) {
					count++
				}
			}
			if count != 1 {
				problems = append(problems, fmt.Sprintf("%v after the kill: %s lists the roaming client's %s %d times (list %v)",
					since.Round(time.Millisecond), n.Name, pkey(r), count, s.Keys()))
			}
			if _, done := pGone[n.Name]; !done && s.Find(p.Ip, int(p.Port)) == nil {
				pGone[n.Name] = since
			}
			if _, done := pGone[n.Name]; done && s.Find(p.Ip, int(p.Port)) != nil {
				problems = append(problems, fmt.Sprintf("%v after the kill: %s lists the pinned client's %s again after it had aged out",
					since.Round(time.Millisecond), n.Name, pkey(p)))
			}
		}
		if reconnectedTo == "" {
			for _, n := range survivors {
				cs, err := n.GRPCConns()
				if err != nil {
					continue
				}
				for _, cn := range cs {
					if cn.Labels["app_compat"] == roam.Label && cn.Registered && cn.Services > 0 {
						reconnectedAt, reconnectedTo = since, n.Name+" "+cn.ID
					}
				}
			}
		}
		// Done when the client moved and the lease expired everywhere, and
		// the re-registered instance survived the lease by 2 s.
		if (reconnectedTo != "" && len(pGone) == len(survivors) && since > connLease+2*time.Second) || since > watchFor {
			break
		}
		<-tick.C
	}
	t.Logf("roaming client reconnected (connection registered with its instance) to %s %v after the kill", reconnectedTo, reconnectedAt.Round(time.Millisecond))
	t.Logf("pinned client's instance aged out of the survivors after %v (--conn-lease %v)", pGone, connLease)
	if len(problems) > 0 {
		if len(problems) > 30 {
			problems = append(problems[:30], fmt.Sprintf("... and %d more", len(problems)-30))
		}
		t.Errorf("while %s was down:\n  %s", x.Name, strings.Join(problems, "\n  "))
	}
	if reconnectedTo == "" {
		t.Fatalf("the roaming client never reconnected to a surviving node within %v", watchFor)
	}
	if len(pGone) != len(survivors) {
		t.Fatalf("the pinned client's instance (held by the dead %s) is still listed on some survivors %v after the kill (gone from: %v); --conn-lease is %v",
			x.Name, watchFor, pGone, connLease)
	}
	var gone []time.Duration
	for _, d := range pGone {
		gone = append(gone, d)
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i] < gone[j] })
	if gone[0] < connLease-time.Second {
		t.Errorf("the pinned client's instance was dropped %v after the kill, before the %v lease", gone[0].Round(time.Millisecond), connLease)
	}
	// The subscriber on a survivor saw the removal (pushed when the lease
	// expired there).
	if ev, seen, ok := sub.WaitForHosts(pushDeadline, pkey(r)); !ok {
		t.Errorf("subscriber on %s: no callback with only [%s] after the lease expiry; callbacks: %s", survivors[0].Name, pkey(r), sub.Describe(seen))
	} else {
		t.Logf("subscriber on %s notified of the expiry %v after the kill", survivors[0].Name, ev.At.Sub(killed).Round(time.Millisecond))
	}

	// Restart X: it loads from a peer and agrees with the survivors.
	pinned.CloseClient() // else it would reconnect to X and register again
	if err := x.Start(); err != nil {
		t.Fatalf("restart %s: %v", x.Name, err)
	}
	if err := c.WaitAllUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventuallyListed(t, nodes, svc, pkey(r))
	if at, _ := connectedTo(t, roam, time.Second, nodes...); at == x {
		t.Errorf("the roaming client's connection is on the restarted %s", x.Name)
	}
	t.Logf("restarted %s lists the roaming instance once and nothing of the pinned client", x.Name)
}
