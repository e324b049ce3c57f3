package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scenarios is the fault matrix of reliability.md §4. Durations are for
// the full suite; CHAOS_SHORT=1 halves fault durations (run.d).
func scenarios() []*scenario {
	return []*scenario{
		{ID: "F1", Name: "symmetric-partition", Nodes: 3, Run: func(r *run) error {
			// {n1} | {n2,n3}; clients reach both sides and write to both.
			return seq(
				func() error { return r.c.Isolate("n1") },
				func() error { return r.wl("stopbeat 10") },
				func() error { r.sleep(r.d(10 * time.Second)); return r.wl("dereg 10") },
				func() error { r.sleep(r.d(10 * time.Second)); return nil },
			)
		}},
		{ID: "F2", Name: "5-node-split-and-bridge", Nodes: 5, Run: func(r *run) error {
			a, b := []string{"n1", "n2"}, []string{"n3", "n4", "n5"}
			return seq(
				func() error { return r.c.Split(a, b) },
				func() error { return r.wl("stopbeat 10") },
				func() error { r.sleep(r.d(6 * time.Second)); return r.wl("dereg 10") },
				func() error { r.sleep(r.d(6 * time.Second)); return r.c.Heal() },
				func() error {
					// Bridge: n3 sees both halves, which do not see each other.
					before := viewChanges(r.c)
					if err := r.c.Split(a, []string{"n4", "n5"}); err != nil {
						return err
					}
					r.sleep(r.d(12 * time.Second))
					r.figure("bridge-view-changes=%d", viewChanges(r.c)-before)
					return nil
				},
			)
		}},
		{ID: "F3", Name: "asymmetric-oneway", Nodes: 3, CheckI9: true, Run: func(r *run) error {
			return seq(
				func() error { return r.c.OneWay("n1", "n2") },
				func() error { return r.wl("stopbeat 10") },
				func() error { r.sleep(r.d(10 * time.Second)); return r.wl("dereg 10") },
				func() error { r.sleep(r.d(10 * time.Second)); return nil },
			)
		}},
		{ID: "F4", Name: "no-clients", Nodes: 3, CheckI9: true, Run: func(r *run) error {
			return seq(
				func() error { return r.c.NoClients("n1") },
				func() error { return r.wl("stopbeat 10") },
				func() error { r.sleep(r.d(16 * time.Second)); return nil },
			)
		}},
		{ID: "F5", Name: "deregister-during-partition", Nodes: 3, Run: func(r *run) error {
			n1, n2 := r.c.Node("n1").Addr, r.c.Node("n2").Addr
			return seq(
				func() error { return r.c.Isolate("n1") },
				func() error { r.sleep(3 * time.Second); return r.wl("dereg 15 %s", n1) },
				func() error { return r.wl("dereg 15 %s", n2) },
				func() error { r.sleep(r.d(12 * time.Second)); return nil },
			)
		}},
		{ID: "F6", Name: "kill-owner-restart", Nodes: 3, CheckI9: true, Run: func(r *run) error {
			return seq(
				func() error { return r.wl("stopbeat 10") },
				func() error { return r.c.Kill("n2") },
				func() error { r.sleep(2 * time.Second); return r.restart("n2") },
				func() error { r.sleep(6 * time.Second); return r.c.Kill("n2") },
				// Longer than --conn-lease (5 s) and than the expiry window.
				func() error { r.sleep(8 * time.Second); return r.restart("n2") },
				func() error { r.sleep(5 * time.Second); return nil },
			)
		}},
		{ID: "F7", Name: "restart-while-peer-partitioned", Nodes: 3, Run: func(r *run) error {
			return seq(
				func() error { return r.c.Isolate("n2") },
				func() error { r.sleep(2 * time.Second); return r.c.Kill("n3") },
				func() error { r.sleep(2 * time.Second); return r.restart("n3") },
				func() error { r.sleep(r.d(8 * time.Second)); return nil },
			)
		}},
		{ID: "F8", Name: "large-snapshot", Nodes: 3, CheckI9: true, ConvBound: 30 * time.Second, ReadyTimeout: 10 * time.Minute,
			WorkloadArgs: []string{"--bulk", "10000", "--bulk-services", "50", "--bulk-meta", "4096"},
			Run: func(r *run) error {
				r.figure("bulk=10000x4KiB")
				return seq(
					func() error { return r.c.Kill("n3") },
					func() error { r.sleep(2 * time.Second); return r.restart("n3") },
					func() error { r.sleep(5 * time.Second); return nil },
				)
			}},
		{ID: "F9", Name: "pause-3xTTL", Nodes: 3, CheckI9: true, Run: func(r *run) error {
			// 20 crashed clients: about 7 of them owned by the paused node.
			return seq(
				func() error { return r.wl("stopbeat 20") },
				func() error { return r.c.Pause("n1") },
				func() error { r.sleep(3 * BeatTimeout); return r.c.Resume("n1") },
				func() error { r.sleep(8 * time.Second); return nil },
			)
		}},
		{ID: "F10", Name: "slow-lossy-links", Nodes: 3, ConvBound: 3 * TConv, Run: func(r *run) error {
			// netem is not available on this kernel: tbf rate limit + nft loss.
			return seq(
				func() error { return r.c.Slow("n1", "256kbit") },
				func() error { return r.c.Loss("n1", 20) },
				func() error { return r.wl("stopbeat 10") },
				func() error { r.sleep(r.d(20 * time.Second)); return nil },
				func() error { r.syncFigures(); return nil },
			)
		}},
		{ID: "F11", Name: "membership-change", Nodes: 3, ClusterConf: true, CheckI9: true, Run: runF11},
		{ID: "F12", Name: "clock-offset", Nodes: 3, CheckI9: true,
			NodeExtra: map[string][]string{"n2": {"--debug-clock-offset", "90s"}},
			Run: func(r *run) error {
				return seq(
					func() error { return r.wl("stopbeat 10") },
					func() error { r.sleep(r.d(15 * time.Second)); return r.c.Kill("n2") },
					func() error {
						// The offset is fixed at start: the jump is a restart with -90 s.
						r.c.Node("n2").Extra = []string{"--debug-clock-offset", "-90s"}
						return r.restart("n2")
					},
					func() error { r.sleep(r.d(15 * time.Second)); return nil },
				)
			}},
		{ID: "F13", Name: "message-duplication-reordering"},
		{ID: "F14", Name: "random-composition", Nodes: 3, CheckI9: true, Run: runF14},
		// Issue 8's case, not shortened: the owner of about a third of the
		// services is cut off for 2×TTL (TTL: the delete timeout) while
		// every client beats through the majority; then a 20 s watch in
		// which no majority node may lose a live instance at any sample.
		// Beats come every 2.5 s (timeouts 7.5 s / 12 s), slower than the
		// 2 s it takes the majority to give up on the cut-off node, as with
		// Nacos's 5 s beats and default probes: some instances get no beat,
		// hence no renewal, before ownership moves.
		{ID: "F15", Name: "healed-minority-owner", Nodes: 3, WatchNodes: []string{"n2", "n3"},
			WorkloadArgs: []string{"--beat-interval", "2500ms", "--hb-timeout-ms", "7500", "--delete-timeout-ms", strconv.Itoa(int(f15Delete.Milliseconds()))},
			Run: func(r *run) error {
				n2, n3 := r.c.Node("n2").Addr, r.c.Node("n3").Addr
				return seq(
					func() error { return r.wl("nodes %s,%s", n2, n3) },
					func() error { r.sleep(3 * time.Second); return r.c.Isolate("n1") },
					func() error {
						r.sleep(2 * f15Delete)
						r.figure("n1-unconfirmed-at-heal=%.0f", r.metric("n1", "distro_timeouts_unconfirmed"))
						return r.c.Heal()
					},
					func() error {
						r.sleep(20 * time.Second)
						r.figure("n1-unconfirmed-after=%.0f", r.metric("n1", "distro_timeouts_unconfirmed"))
						return nil
					},
				)
			}},
		// A node away for about three times the tombstone retention while
		// instances are deregistered on the other side: none may come back
		// when it returns. n1 is paused, so on waking it skips the paused
		// time and still lists the ephemeral instances live (Distro: the
		// others hold their tombstones until n1 has acknowledged them);
		// the persistent ones are on Raft, which n1 catches up with.
		// distrod requires a retention of at least two verification
		// rounds: 6 s compressed, 10 s with default timings (and a pause
		// of 3.4 retentions either way).
		{ID: "F16", Name: "absence-beyond-tombstone-retention", Nodes: 3, CheckI9: true,
			NodeExtra:    map[string][]string{"n1": {"--tombstone-retention", f16Retention().String()}, "n2": {"--tombstone-retention", f16Retention().String()}, "n3": {"--tombstone-retention", f16Retention().String()}},
			WorkloadArgs: []string{"--persistent", "20"},
			Run: func(r *run) error {
				n2 := r.c.Node("n2").Addr
				return seq(
					func() error { return r.c.Pause("n1") },
					func() error { r.sleep(2 * time.Second); return r.wl("dereg 10 %s", n2) },
					func() error { return r.wl("dereg-persistent 10 %s", n2) },
					func() error {
						r.sleep(r.d(f16Retention() * 34 / 10))
						r.figure("n2-tombstone-hold=%.1fs", r.metric("n2", "distro_distro_tombstone_hold_seconds"))
						return r.c.Resume("n1")
					},
					func() error { r.sleep(10 * time.Second); return nil },
				)
			}},
		// Handed-on writes stuck in a connection, from a sender whose clock
		// runs 2 s ahead: clients write only through n2, the n1–n2 link is
		// cut and healed repeatedly, and deregistrations go to n1 while the
		// link is down. Judged by wall clocks, copies up to 2.5 s late
		// would look timely; the owner reads them in the sender's clock.
		{ID: "F17", Name: "late-forwards-skewed-sender", Nodes: 3, CheckI9: true,
			NodeExtra: map[string][]string{"n2": {"--debug-clock-offset", "2s"}},
			Run: func(r *run) error {
				n1, n2 := r.c.Node("n1").Addr, r.c.Node("n2").Addr
				steps := []func() error{func() error { return r.wl("nodes %s", n2) }}
				for range 6 {
					steps = append(steps,
						func() error { return r.c.Cut("n1", "n2") },
						func() error { r.sleep(time.Second); return r.wl("dereg 5 %s", n1) },
						func() error { r.sleep(500 * time.Millisecond); return r.c.Heal() },
						func() error { r.sleep(1500 * time.Millisecond); return nil })
				}
				steps = append(steps, func() error {
					r.figure("n1-forwards-declined=%.0f", r.metric("n1", "distro_distro_forwarded_writes_declined_total"))
					return nil
				})
				return seq(steps...)
			}},
	}
}

// f16Retention is F16's --tombstone-retention for the timing profile.
func f16Retention() time.Duration { return max(6*time.Second, 2*timing.Verify) }

// metric reads one metric of role's node (-1 if it cannot).
func (r *run) metric(role, name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := r.c.Obs.Metrics(ctx, r.c.Node(role).Addr, name)
	if err != nil {
		return -1
	}
	v, ok := m[name]
	if !ok {
		return -1
	}
	return v
}

// f15Delete is F15's delete timeout (its TTL).
const f15Delete = 12 * time.Second

// seq runs steps in order and stops at the first error.
func seq(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// restart starts role again and records how long it took to be ready.
func (r *run) restart(role string) error {
	t0 := time.Now()
	if err := r.c.Restart(role); err != nil {
		return err
	}
	if err := r.c.WaitReady(20*time.Second, r.c.Node(role)); err != nil {
		r.figure("%s-ready=NEVER", role)
		return nil // the checker reports it (I8)
	}
	r.figure("%s-ready=%s", role, ms(time.Since(t0)))
	return nil
}

// viewChanges counts "member view changed" lines in every node log.
func viewChanges(c *Cluster) int {
	n := 0
	for _, nd := range c.Nodes {
		b, _ := os.ReadFile(nd.logPath)
		n += strings.Count(string(b), "member view changed")
	}
	return n
}

// syncFigures adds the sync retry and queue-drop counters of every node.
func (r *run) syncFigures() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var retries, dropped float64
	for _, n := range r.c.Active() {
		m, _ := r.c.Obs.Metrics(ctx, n.Addr, "distro_distro_sync_retries_total", "distro_distro_queue_dropped_total")
		for k, v := range m {
			if strings.HasPrefix(k, "distro_distro_sync_retries_total") {
				retries += v
			} else {
				dropped += v
			}
		}
	}
	r.figure("sync-retries=%.0f queue-dropped=%.0f", retries, dropped)
}

// runF11: membership change under load. Add n4 (member files edited live,
// the node joins and loads), remove n2, then flap n3 every 2 s.
func runF11(r *run) error {
	c := r.c
	all := func(roles ...string) []string { return roles }
	addrs := func(roles ...string) string {
		var s []string
		for _, ro := range roles {
			s = append(s, c.Node(ro).Addr)
		}
		return strings.Join(s, ",")
	}
	return seq(
		func() error { return r.wl("stopbeat 10") },
		func() error {
			n4, err := c.AddNode()
			if err != nil {
				return err
			}
			members := all("n1", "n2", "n3", "n4")
			if err := c.WriteMembers("n4", members); err != nil {
				return err
			}
			c.Event(EvMember, "n4", "add n4 to every member file")
			for _, ro := range []string{"n1", "n2", "n3"} {
				if err := c.WriteMembers(ro, members); err != nil {
					return err
				}
			}
			if err := r.restart(n4.Role); err != nil {
				return err
			}
			c.SetActive(c.Node("n1"), c.Node("n2"), c.Node("n3"), n4)
			return r.wl("nodes %s", addrs("n1", "n2", "n3", "n4"))
		},
		func() error {
			r.sleep(8 * time.Second)
			// Remove n2: clients first, then the member files, then stop it.
			if err := r.wl("nodes %s", addrs("n1", "n3", "n4")); err != nil {
				return err
			}
			c.Event(EvMember, "n2", "remove n2 from every member file")
			for _, ro := range []string{"n1", "n3", "n4"} {
				if err := c.WriteMembers(ro, all("n1", "n3", "n4")); err != nil {
					return err
				}
			}
			c.SetActive(c.Node("n1"), c.Node("n3"), c.Node("n4"))
			r.sleep(time.Second)
			c.Event(EvMember, "n2", "SIGTERM n2")
			return c.Node("n2").Terminate(10 * time.Second)
		},
		func() error {
			r.sleep(6 * time.Second)
			for range 4 {
				if err := c.Isolate("n3"); err != nil {
					return err
				}
				r.sleep(time.Second)
				if err := c.Heal(); err != nil {
					return err
				}
				r.sleep(time.Second)
			}
			r.sleep(4 * time.Second)
			return nil
		},
	)
}

// runF14 composes random faults for 60 s (30 s short): every 5 s one of
// isolate, one-way, kill+restart, pause, slow+lossy, held for 3 s, then
// healed. The schedule derives from the logged seed.
func runF14(r *run) error {
	c := r.c
	total := r.d(60 * time.Second)
	end := time.Now().Add(total)
	var plan []string
	pick := func() string { return c.Nodes[r.rng.IntN(len(c.Nodes))].Role }
	for i := 0; time.Now().Before(end); i++ {
		if i%3 == 0 {
			if err := r.wl("stopbeat 3"); err != nil {
				return err
			}
		}
		a := pick()
		var err error
		switch k := r.rng.IntN(5); k {
		case 0:
			plan = append(plan, "isolate "+a)
			err = seq(func() error { return c.Isolate(a) }, func() error { r.sleep(3 * time.Second); return c.Heal() })
		case 1:
			b := pick()
			for b == a {
				b = pick()
			}
			plan = append(plan, "oneway "+a+"->"+b)
			err = seq(func() error { return c.OneWay(a, b) }, func() error { r.sleep(3 * time.Second); return c.Heal() })
		case 2:
			plan = append(plan, "kill+restart "+a)
			err = seq(func() error { return c.Kill(a) }, func() error { r.sleep(2 * time.Second); return r.restart(a) })
		case 3:
			plan = append(plan, "pause "+a)
			err = seq(func() error { return c.Pause(a) }, func() error { r.sleep(3 * time.Second); return c.Resume(a) })
		case 4:
			plan = append(plan, "slow+loss "+a)
			err = seq(func() error { return c.Slow(a, "512kbit") }, func() error { return c.Loss(a, 10) },
				func() error { r.sleep(3 * time.Second); return c.Heal() })
		}
		if err != nil {
			return err
		}
		r.sleep(2 * time.Second)
	}
	r.t.Logf("F14 seed %d plan: %s", r.seed, strings.Join(plan, ", "))
	r.figure("seed=%d faults=%d", r.seed, len(plan))
	return nil
}

// runF13: message duplication and reordering cannot be injected at the
// network level here (no netem; TCP hides duplicates anyway). The
// in-memory harness injects them into the transport; this row runs it.
func runF13(t *testing.T) {
	setupSuite(t)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestMessageChaosConverges$", "./internal/distro/")
	cmd.Dir = distrodRepoRt
	out, err := cmd.CombinedOutput()
	verdict := "PASS"
	if err != nil {
		verdict = "FAIL"
	}
	line := fmt.Sprintf("%s F13 message-duplication-reordering in-memory harness (go test -run TestMessageChaosConverges ./internal/distro/) %s; not injectable with netns (no netem, TCP dedups)",
		verdict, ms(time.Since(t0)))
	fmt.Println(line)
	res := &Result{ID: "F13", Name: "message-duplication-reordering (in-memory harness)", Conv: -1, WriteP99: -1, VisP50: -1, VisP99: -1}
	if err != nil {
		res.Violations = []string{"I1: TestMessageChaosConverges failed"}
	}
	appendSummary(line, res)
	if err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}
