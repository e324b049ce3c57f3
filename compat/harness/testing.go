package harness

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Main runs the tests, then stops every node still running and removes
// TempRoot (including a distrod built by DistrodBin; kept when tests failed
// and COMPAT_KEEP_TMP is set, e.g. to read the SDK logs). Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	stopAll()
	if code != 0 && tempRoot != "" && os.Getenv("COMPAT_KEEP_TMP") != "" {
		fmt.Fprintf(os.Stderr, "harness: tests failed; kept %s (COMPAT_KEEP_TMP is set)\n", tempRoot)
		return code
	}
	if tempRoot != "" {
		// SDK goroutines may still write below it; a few attempts, then give up.
		for range 3 {
			if err := os.RemoveAll(tempRoot); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return code
}

// StartNode starts a node for one test. On cleanup the node is stopped and,
// if the test failed, its whole output is written to the test log.
func StartNode(tb testing.TB, opts Options) *Node {
	tb.Helper()
	n, err := Launch(opts)
	if err != nil {
		tb.Fatalf("start distrod: %v", err)
	}
	tb.Cleanup(func() { stopAndDump(tb, n, 0) })
	return n
}

// StartNodes starts count nodes at once (a cluster: they may wait for each
// other before they are ready). Ports are picked first; argsFor(i, ports)
// returns node i's extra args, e.g. a --members list built from ports.
// base supplies the other options; Name gets an index suffix.
func StartNodes(tb testing.TB, count int, base Options, argsFor func(i int, ports []int) []string) []*Node {
	tb.Helper()
	nodes, err := prepareNodes(count, base, argsFor)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range nodes {
		tb.Cleanup(func() { stopAndDump(tb, n, 0) })
	}
	if err := startAll(nodes); err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	return nodes
}

// LaunchNodes is StartNodes for nodes shared by several tests: nothing is
// tied to a test (Main stops the nodes at exit; use DumpLogsOnFailure). On
// error the nodes that did start are stopped again.
func LaunchNodes(count int, base Options, argsFor func(i int, ports []int) []string) ([]*Node, error) {
	nodes, err := prepareNodes(count, base, argsFor)
	if err != nil {
		return nil, err
	}
	if err := startAll(nodes); err != nil {
		for _, n := range nodes {
			_ = n.Stop()
		}
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	return nodes, nil
}

func prepareNodes(count int, base Options, argsFor func(i int, ports []int) []string) ([]*Node, error) {
	ports, err := FreePorts(count)
	if err != nil {
		return nil, fmt.Errorf("pick ports: %w", err)
	}
	if base.Name == "" {
		base.Name = "node"
	}
	nodes := make([]*Node, count)
	for i := range count {
		o := base
		o.Name = fmt.Sprintf("%s%d", base.Name, i)
		o.Port = ports[i]
		if argsFor != nil {
			o.Args = append(append([]string(nil), base.Args...), argsFor(i, ports)...)
		}
		n, err := NewNode(o)
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", o.Name, err)
		}
		nodes[i] = n
	}
	return nodes, nil
}

func startAll(nodes []*Node) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.Start() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func stopAndDump(tb testing.TB, n *Node, mark int) {
	err := n.Stop()
	if err != nil {
		tb.Logf("stop %s: %v", n.Name, err)
	}
	if tb.Failed() {
		tb.Logf("--- %s (port %d) output ---\n%s", n.Name, n.Port(), n.LogsSince(mark))
	}
}

// DumpLogsOnFailure is for nodes shared between tests: if tb fails, what the
// nodes printed while tb ran is written to tb's log at cleanup.
func DumpLogsOnFailure(tb testing.TB, nodes ...*Node) {
	tb.Helper()
	marks := make([]int, len(nodes))
	for i, n := range nodes {
		marks[i] = n.LogMark()
	}
	tb.Cleanup(func() {
		if !tb.Failed() {
			return
		}
		for i, n := range nodes {
			out := n.LogsSince(marks[i])
			if out == "" {
				out = "(no output)"
			}
			tb.Logf("--- %s (port %d) output while %s ran (other parallel tests included) ---\n%s",
				n.Name, n.Port(), tb.Name(), out)
		}
	})
}

// SharedNode is one node shared by the tests of a package (each test uses
// its own service names), started on first use. Main stops it at exit.
// Declare it as a package variable:
//
//	var server = &harness.SharedNode{Options: harness.Options{Name: "distrod-v1"}}
type SharedNode struct {
	// Options configure the node.
	Options Options

	once sync.Once
	node *Node
	err  error
}

// Get returns the shared node, starting it on the first call. It fails tb
// if the node could not start; if tb fails, what the node printed while tb
// ran goes to tb's log (DumpLogsOnFailure).
func (s *SharedNode) Get(tb testing.TB) *Node {
	tb.Helper()
	s.once.Do(func() { s.node, s.err = Launch(s.Options) })
	if s.err != nil {
		tb.Fatalf("start distrod: %v", s.err)
	}
	DumpLogsOnFailure(tb, s.node)
	return s.node
}

// Poll calls fn every interval until it returns nil or timeout has passed
// (fn is always called at least once, and once more at the deadline). It
// returns nil or the last error of fn.
func Poll(timeout, interval time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(min(interval, left))
	}
}

// Eventually fails the test (FailNow) unless fn returns nil within timeout,
// polling every interval.
func Eventually(tb testing.TB, timeout, interval time.Duration, fn func() error) {
	tb.Helper()
	if err := Poll(timeout, interval, fn); err != nil {
		tb.Fatal(err)
	}
}
