package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/testutil"
)

// raftCluster is a cluster.conf cluster of real distrod processes.
type raftCluster struct {
	t     *testing.T
	conf  string
	ports []int
	// hosts[i] is node i's loopback address (127.0.0.1 if unset).
	hosts []string
	nodes []*testutil.Node
	extra []string
}

const raftTestSecret = "raft-integration-secret-0123456789abcdefXYZ"

func newRaftCluster(t *testing.T, n int, extra ...string) *raftCluster {
	t.Helper()
	c := &raftCluster{t: t, conf: filepath.Join(t.TempDir(), "cluster.conf"), extra: extra}
	for range n {
		c.ports = append(c.ports, testutil.FreePort(t))
	}
	c.writeConf()
	for _, p := range c.ports {
		c.nodes = append(c.nodes, testutil.Start(t, p, c.args(p)...))
	}
	for _, nd := range c.nodes {
		testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, nd.Ready)
	}
	return c
}

// host is the loopback address of the node on port p.
func (c *raftCluster) host(p int) string {
	if i := slices.Index(c.ports, p); i >= 0 && i < len(c.hosts) {
		return c.hosts[i]
	}
	return "127.0.0.1"
}

func (c *raftCluster) args(p int) []string {
	return append([]string{"--auth=false", "--cluster-conf", c.conf, "--cluster-secret", raftTestSecret, "--advertise", fmt.Sprintf("%s:%d", c.host(p), p),
		"--verify-interval", "500ms", "--probe-interval", "200ms", "--startup-timeout", "10s", "--raft-write-timeout", "3s"}, c.extra...)
}

func (c *raftCluster) writeConf() {
	var b strings.Builder
	for _, p := range c.ports {
		fmt.Fprintf(&b, "%s:%d\n", c.host(p), p)
	}
	tmp := c.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.conf); err != nil {
		c.t.Fatal(err)
	}
}

// add starts one more member, listed in cluster.conf first.
func (c *raftCluster) add() *testutil.Node {
	p := testutil.FreePort(c.t)
	c.ports = append(c.ports, p)
	c.writeConf()
	n := testutil.Start(c.t, p, c.args(p)...)
	c.nodes = append(c.nodes, n)
	return n
}

// metric reads one unlabelled gauge from a node's /metrics.
func metric(n *testutil.Node, name string) (float64, error) {
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("%s: no metric %s", n.Addr(), name)
}

func (c *raftCluster) leader() (int, error) {
	for i, n := range c.nodes {
		if v, err := metric(n, "distro_raft_leader"); err == nil && v == 1 {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no leader")
}

// persistentWrite registers (or deregisters) a persistent instance through
// node n and returns the HTTP status.
func persistentWrite(n *testutil.Node, method, svc string, port int) (int, string, error) {
	form := url.Values{"serviceName": {svc}, "ip": {"10.9.0.1"}, "port": {strconv.Itoa(port)}, "ephemeral": {"false"}}
	req, _ := http.NewRequest(method, n.URL()+"/nacos/v1/ns/instance?"+form.Encode(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// ports lists the ports of svc's instances as node n answers.
func listPorts(n *testutil.Node, svc string, consistent bool) (map[int]bool, error) {
	q := "/nacos/v1/ns/instance/list?serviceName=" + url.QueryEscape(svc)
	if consistent {
		q += "&linearizable=true"
	}
	got, err := list2(n.URL() + q)
	if err != nil {
		return nil, err
	}
	out := map[int]bool{}
	for _, h := range got {
		out[h] = true
	}
	return out, nil
}

func list2(u string) ([]int, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %d %s", u, resp.StatusCode, b)
	}
	var info struct{ Hosts []struct{ Port int } }
	if err := decodeJSONBody(resp.Body, &info); err != nil {
		return nil, err
	}
	var ps []int
	for _, h := range info.Hosts {
		ps = append(ps, h.Port)
	}
	return ps, nil
}

// allHave checks that every running node lists exactly want.
func (c *raftCluster) allHave(svc string, want map[int]bool) func() error {
	return func() error {
		for _, n := range c.nodes {
			got, err := listPorts(n, svc, false)
			if err != nil {
				return err
			}
			if len(got) != len(want) {
				return fmt.Errorf("%s lists %d instances, want %d", n.Addr(), len(got), len(want))
			}
			for p := range want {
				if !got[p] {
					return fmt.Errorf("%s lacks acknowledged port %d", n.Addr(), p)
				}
			}
		}
		return nil
	}
}

// TestIntegrationRaftDurability: a leader kill under write load loses no
// acknowledged persistent write; a write on the minority side gets 503;
// persistent instances and service settings survive killing every node.
func TestIntegrationRaftDurability(t *testing.T) {
	t.Parallel()
	c := newRaftCluster(t, 3)
	const svc = "DEFAULT_GROUP@@durable"

	// A forged peer on the Raft port (port-1000): raw hashicorp/raft bytes
	// without the handshake are refused and counted; nothing changes.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.nodes[0].Port-1000))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write(append([]byte{0x00, 0x8f}, []byte(strings.Repeat("\xa1x", 64))...))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the Raft port answered a forged peer")
	}
	conn.Close()
	testutil.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(c.nodes[0].URL() + "/metrics")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `distro_raft_auth_failures_total{reason="malformed"} 1`) {
			return fmt.Errorf("no counted refusal")
		}
		return nil
	})

	// Writers through random nodes while the leader is killed.
	var mu sync.Mutex
	acked := map[int]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var next int64
	var nmu sync.Mutex
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				nmu.Lock()
				next++
				port := int(next)
				nmu.Unlock()
				n := c.nodes[rng.IntN(len(c.nodes))]
				st, _, err := persistentWrite(n, http.MethodPost, svc, port)
				if err == nil && st == 200 {
					mu.Lock()
					acked[port] = true
					mu.Unlock()
				}
			}
		})
	}
	waitAcks := func(n int) {
		testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acked) < n {
				return fmt.Errorf("%d acks", len(acked))
			}
			return nil
		})
	}
	waitAcks(50)
	var li int
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (err error) { li, err = c.leader(); return err })
	c.nodes[li].Kill()
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcks(before + 50) // the remaining two elect a leader and go on
	c.nodes[li].Restart()
	testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, c.nodes[li].Ready)
	close(stop)
	wg.Wait()
	mu.Lock()
	want := acked
	mu.Unlock()
	// Unacknowledged writes may have landed too; acknowledged ones must.
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.nodes {
			got, err := listPorts(n, svc, false)
			if err != nil {
				return err
			}
			for p := range want {
				if !got[p] {
					return fmt.Errorf("%s lacks acknowledged port %d (of %d)", n.Addr(), p, len(want))
				}
			}
		}
		return nil
	})
	// Linearizable read on a follower sees every acknowledged write at once.
	li, _ = c.leader()
	follower := c.nodes[(li+1)%3]
	if st, body, err := persistentWrite(follower, http.MethodPost, svc, 60000); err != nil || st != 200 {
		t.Fatalf("write via follower: %d %s %v", st, body, err)
	}
	if got, err := listPorts(c.nodes[(li+2)%3], svc, true); err != nil || !got[60000] {
		t.Fatalf("linearizable read missed the last write: %v", err)
	}
	want[60000] = true

	// Service settings through Raft.
	resp, err := http.PostForm(follower.URL()+"/nacos/v1/ns/service", url.Values{"serviceName": {"DEFAULT_GROUP@@settings"}, "protectThreshold": {"0.6"}, "metadata": {"k=v"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("create service: %v %v", resp, err)
	}
	resp.Body.Close()

	// Minority: with two nodes down, the survivor refuses writes with 503.
	survivor := c.nodes[li]
	others := []*testutil.Node{c.nodes[(li+1)%3], c.nodes[(li+2)%3]}
	for _, n := range others {
		n.Kill()
	}
	t0 := time.Now()
	st, body, err := persistentWrite(survivor, http.MethodPost, svc, 60001)
	if err != nil || st != http.StatusServiceUnavailable {
		t.Fatalf("minority write answered %d %q %v, want 503", st, body, err)
	}
	t.Logf("minority write refused after %v: %s", time.Since(t0).Round(time.Millisecond), body)
	// "was not applied" is a promise; "may or may not have been applied"
	// (the leader appended it, then lost its quorum) lets it commit later.
	definite := strings.Contains(body, "was not applied")

	// Everything down, then everything back: nothing acknowledged is lost.
	survivor.Kill()
	for _, n := range c.nodes {
		n.Restart()
	}
	for _, n := range c.nodes {
		testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, n.Ready)
	}
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.nodes {
			got, err := listPorts(n, svc, false)
			if err != nil {
				return err
			}
			for p := range want {
				if !got[p] {
					return fmt.Errorf("%s lacks acknowledged port %d after the full restart", n.Addr(), p)
				}
			}
			if got[60001] && definite {
				return fmt.Errorf("%s lists the minority write that was answered 'not applied'", n.Addr())
			}
			resp, err := http.Get(n.URL() + "/nacos/v1/ns/service?serviceName=settings")
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), `"protectThreshold":0.6`) || !strings.Contains(string(b), `"k":"v"`) {
				return fmt.Errorf("%s service settings after restart: %s", n.Addr(), b)
			}
		}
		return nil
	})
}

// TestIntegrationRaftJoinFromSnapshot: a member added through cluster.conf
// joins Raft (non-voter, then voter) and catches up from a snapshot.
func TestIntegrationRaftJoinFromSnapshot(t *testing.T) {
	t.Parallel()
	c := newRaftCluster(t, 3, "--raft-snapshot-threshold", "32", "--raft-trailing-logs", "4", "--raft-snapshot-interval", "500ms")
	const svc = "DEFAULT_GROUP@@joined"
	want := map[int]bool{}
	for i := 1; i <= 120; i++ {
		n := c.nodes[i%3]
		st, body, err := persistentWrite(n, http.MethodPost, svc, i)
		if err != nil || st != 200 {
			t.Fatalf("write %d: %d %s %v", i, st, body, err)
		}
		want[i] = true
	}
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, c.allHave(svc, want))
	// Wait until the log the newcomer needs has been compacted away: a
	// snapshot (taken past the 32-entry threshold) trims the log to its
	// last 4 entries.
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.nodes {
			if v, err := metric(n, "distro_raft_snapshot_index"); err != nil || v == 0 {
				return fmt.Errorf("%s: no snapshot yet (%v)", n.Addr(), err)
			}
		}
		return nil
	})
	n4 := c.add()
	testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, n4.Ready)
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		li, err := c.leader()
		if err != nil {
			return err
		}
		if v, err := metric(c.nodes[li], "distro_raft_voters"); err != nil || v != 4 {
			return fmt.Errorf("voters %v %v", v, err)
		}
		return c.allHave(svc, want)()
	})
	snaps, _ := os.ReadDir(filepath.Join(n4.DataDir, "raft", "snapshots"))
	if len(snaps) == 0 {
		t.Fatalf("the new member did not install a snapshot\n%s", n4.Output())
	}
	// It takes writes as a voter.
	if st, body, err := persistentWrite(n4, http.MethodPost, svc, 500); err != nil || st != 200 {
		t.Fatalf("write via the new member: %d %s %v", st, body, err)
	}
}

// move stops every node, gives node i the loopback address hosts[i] (same
// ports, same data dirs, a rewritten cluster.conf) and starts them again.
func (c *raftCluster) move(hosts []string) {
	for _, n := range c.nodes {
		n.Stop()
	}
	c.hosts = hosts
	c.writeConf()
	for i, n := range c.nodes {
		n.Host, n.Args = hosts[i], c.args(c.ports[i])
		n.Restart()
	}
}

// TestIntegrationRaftMembersMove: a 3-node cluster restarted on its data
// dirs with every member at a new address (pods rescheduled with new IPs)
// elects a leader again, keeps its persistent data and takes writes.
func TestIntegrationRaftMembersMove(t *testing.T) {
	t.Parallel()
	c := newRaftCluster(t, 3)
	const svc = "DEFAULT_GROUP@@moving"
	want := map[int]bool{}
	for i := 1; i <= 20; i++ {
		if st, body, err := persistentWrite(c.nodes[i%3], http.MethodPost, svc, i); err != nil || st != 200 {
			t.Fatalf("write %d: %d %s %v", i, st, body, err)
		}
		want[i] = true
	}
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, c.allHave(svc, want))
	c.move([]string{"127.0.0.2", "127.0.0.3", "127.0.0.2"})
	for _, n := range c.nodes {
		testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, n.Ready)
	}
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		if _, err := c.leader(); err != nil {
			return err
		}
		return c.allHave(svc, want)()
	})
	for i, n := range c.nodes {
		if st, body, err := persistentWrite(n, http.MethodPost, svc, 100+i); err != nil || st != 200 {
			t.Fatalf("write via %s after the move: %d %s %v", n.Addr(), st, body, err)
		}
		want[100+i] = true
	}
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, c.allHave(svc, want))
	li, _ := c.leader()
	if v, err := metric(c.nodes[li], "distro_raft_voters"); err != nil || v != 3 {
		t.Fatalf("voters after the move: %v %v", v, err)
	}
}

// TestIntegrationRaftLowerLimits: a node restarted with a lower
// --max-metadata-bytes keeps the persistent instance it accepted before
// (its Raft log and snapshot are not judged by the new limit); the entry
// point refuses a new one that large.
func TestIntegrationRaftLowerLimits(t *testing.T) {
	t.Parallel()
	n := testutil.Start(t, testutil.FreePort(t), "--raft-snapshot-threshold", "2", "--raft-snapshot-interval", "100ms")
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, n.Ready)
	blob := strings.Repeat("m", 2000)
	register := func(port int) (int, string) {
		form := url.Values{"serviceName": {"limits"}, "ip": {"10.9.0.2"}, "port": {strconv.Itoa(port)}, "ephemeral": {"false"},
			"metadata": {`{"blob":"` + blob + `"}`}}
		resp, err := http.PostForm(n.URL()+"/nacos/v1/ns/instance", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Two entries: with a threshold of 2 the first lands in a snapshot.
	for _, p := range []int{1, 2, 3} {
		if st, body := register(p); st != 200 {
			t.Fatalf("register %d: %d %s", p, st, body)
		}
	}
	n.Stop()
	n.Args = append(n.Args, "--max-metadata-bytes", "1000")
	n.Restart()
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, n.Ready)
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(n.URL() + "/nacos/v1/ns/instance/list?serviceName=limits")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Count(string(b), blob); got != 3 {
			return fmt.Errorf("%d of 3 instances with their metadata after the restart: %.300s", got, b)
		}
		return nil
	})
	if strings.Contains(n.Output(), "raft log entry refused") {
		t.Fatal("the restarted node refused its own log")
	}
	if st, body := register(4); st != http.StatusBadRequest {
		t.Fatalf("a new register over the lowered limit: %d %s", st, body)
	}
}

func decodeJSONBody(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
