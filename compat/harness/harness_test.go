package harness

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestFreePortTriples(t *testing.T) {
	ps, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, p := range ps {
		for _, q := range []int{p, p + GRPCOffset, p + ClusterOffset} {
			if used[q] {
				t.Fatalf("port %d handed out twice in %v", q, ps)
			}
			used[q] = true
		}
	}
}

func TestPoll(t *testing.T) {
	var n atomic.Int32
	if err := Poll(2*time.Second, 10*time.Millisecond, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := Poll(100*time.Millisecond, 30*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "never") {
		t.Fatalf("Poll = %v, want the last error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Poll overran its timeout: %v", d)
	}
}

// TestNodeLifecycle starts a node, registers an instance, kills and
// restarts it on the same port, and stops it gracefully.
func TestNodeLifecycle(t *testing.T) {
	t.Parallel()
	n := StartNode(t, Options{Name: "lifecycle"})
	if !n.Running() || n.Pid() == 0 {
		t.Fatal("node not running after StartNode")
	}
	h := n.HTTP()
	svc := "DEFAULT_GROUP@@harness-lifecycle"
	if err := h.RegisterInstance(url.Values{"serviceName": {svc}, "ip": {"10.9.0.1"}, "port": {"80"}}); err != nil {
		t.Fatal(err)
	}
	s, err := h.ListInstances(svc, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Find("10.9.0.1", 80) == nil {
		t.Fatalf("registered instance not listed: %+v", s)
	}

	port, pid := n.Port(), n.Pid()
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if n.Running() {
		t.Fatal("still running after Kill")
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if n.Port() != port || n.Pid() == pid {
		t.Fatalf("restart: port %d→%d pid %d→%d; want same port, new pid", port, n.Port(), pid, n.Pid())
	}
	if err := n.Start(); err == nil {
		t.Fatal("Start on a running node succeeded")
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if !strings.Contains(n.Logs(), "start #3") {
		t.Fatalf("log lacks the third start marker:\n%s", n.Logs())
	}
}

func TestStartFailureReportsOutput(t *testing.T) {
	t.Parallel()
	_, err := Launch(Options{Name: "bad", Args: []string{"--log-level", "nonsense"}, ReadyTimeout: 5 * time.Second})
	if err == nil {
		t.Fatal("Launch with a bad flag succeeded")
	}
	if !strings.Contains(err.Error(), "log-level") {
		t.Fatalf("error does not carry distrod's output: %v", err)
	}
}

// TestStartNodes starts several (standalone) nodes at once, as a cluster
// test will, and checks each answers on its own port.
func TestStartNodes(t *testing.T) {
	t.Parallel()
	var seen []int
	nodes := StartNodes(t, 3, Options{Name: "multi"}, func(i int, ports []int) []string {
		seen = ports
		return nil
	})
	if len(nodes) != 3 || len(seen) != 3 {
		t.Fatalf("got %d nodes, argsFor saw ports %v", len(nodes), seen)
	}
	for i, n := range nodes {
		if n.Port() != seen[i] {
			t.Errorf("node %d on port %d, want %d", i, n.Port(), seen[i])
		}
		if err := n.WaitReady(2 * time.Second); err != nil {
			t.Error(err)
		}
	}
	if err := nodes[1].Kill(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].WaitReady(300 * time.Millisecond); err == nil {
		t.Error("WaitReady succeeded on a killed node")
	}
}
