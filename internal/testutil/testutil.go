// Package testutil holds helpers shared by tests that run real distrod
// processes: building the binary once, picking free loopback ports, and
// starting, stopping and polling nodes. It is imported only from tests.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repoRoot finds the module root from this source file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Distrod returns the path of a distrod binary: $DISTROD_BIN if set, else one
// built once per test process.
func Distrod(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DISTROD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "distrod-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "distrod")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/distrod")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Ports are picked from [portLow, portHigh), below the Linux ephemeral range
// (32768+): an outgoing connection of any process takes its local port from
// that range, so a port picked there can be taken between a node's kill and
// its restart (seen in CI: "bind: address already in use" on restart).
const (
	portLow  = 21000 // P-1000 stays >= 20000
	portHigh = 31000 // P+1001 stays < 32768
)

var (
	portMu   sync.Mutex
	reserved = map[int]bool{} // every port handed out by this test binary
)

// FreePort returns an HTTP port p on 127.0.0.1 such that p, p+1000,
// p+1001 and p-1000 (the client gRPC, cluster and Raft ports) are all free
// right now and none was handed out before by this test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 500 {
		p := portLow + rand.IntN(portHigh-portLow)
		set := []int{p, p + 1000, p + 1001, p - 1000}
		if slices.ContainsFunc(set, func(q int) bool { return reserved[q] }) || !canBind(set) {
			continue
		}
		for _, q := range set {
			reserved[q] = true
		}
		return p
	}
	t.Fatal("no free port set p, p+1000, p+1001, p-1000 found on 127.0.0.1")
	return 0
}

// canBind reports whether every port can be listened on (TCP) right now.
func canBind(ports []int) bool {
	for _, q := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// Node is one distrod process.
type Node struct {
	Port int
	// Host is the loopback address the node binds to and is named by
	// (127.0.0.1 when empty); a test may change it between runs to move
	// the node (127.0.0.0/8 is all loopback).
	Host string
	Args []string
	// Dir is the process's working directory (a fresh temporary directory,
	// kept across restarts), so that its ./data stays out of the tree.
	Dir string
	// DataDir is the node's --data-dir (a test temp dir unless Args give
	// one); it survives Restart.
	DataDir string
	cmd     *exec.Cmd
	out     *SyncBuffer
	t       testing.TB
}

// SyncBuffer is an in-memory writer safe for concurrent use (process
// output, test loggers).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Addr is the node's member identity and HTTP address.
func (n *Node) Addr() string { return fmt.Sprintf("%s:%d", n.host(), n.Port) }

func (n *Node) host() string {
	if n.Host == "" {
		return "127.0.0.1"
	}
	return n.Host
}

// URL returns the node's base URL.
func (n *Node) URL() string { return "http://" + n.Addr() }

// Start launches distrod on port with extra args; its output is logged
// through t when the test fails. The node is stopped at cleanup.
func Start(t testing.TB, port int, args ...string) *Node {
	t.Helper()
	n := &Node{Port: port, Args: args, t: t, Dir: t.TempDir()}
	if !slices.Contains(args, "--data-dir") {
		n.DataDir = t.TempDir()
	}
	n.start()
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("--- distrod %s output ---\n%s", n.Addr(), n.out.String())
		}
	})
	return n
}

func (n *Node) start() {
	n.t.Helper()
	// No server-side health check unless a test asks for one: tests
	// register persistent instances at made-up addresses, and a check
	// would send traffic off loopback.
	args := []string{"--port", fmt.Sprint(n.Port), "--bind", n.host(), "--log-level", "debug", "--health-check-default", "NONE"}
	if n.DataDir != "" {
		// Loopback Raft timings: elections in well under a second.
		args = append(args, "--data-dir", n.DataDir, "--raft-heartbeat-timeout", "500ms", "--raft-election-timeout", "500ms")
	}
	args = append(args, n.Args...)
	n.cmd = exec.Command(Distrod(n.t), args...)
	n.cmd.Dir = n.Dir
	if n.out == nil {
		n.out = &SyncBuffer{}
	}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 10 s).
func (n *Node) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	n.cmd = nil
}

// Kill stops the process with SIGKILL (a crash).
func (n *Node) Kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	n.cmd = nil
}

// Restart starts the process again with the same arguments.
func (n *Node) Restart() { n.start() }

// Output returns what the process printed so far.
func (n *Node) Output() string { return n.out.String() }

// Ready reports whether GET /readyz answers 200.
func (n *Node) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz %d", resp.StatusCode)
	}
	return nil
}

// Eventually polls cond until it returns nil or timeout passes.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not met within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
