package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one distrod process in its namespace. A node can be killed and
// started again; each start is a new incarnation with the same flags
// (plus Extra), appending to the same log file.
type Node struct {
	Role string // "n1"
	Addr string // "10.88.X.1:8848"
	IP   string
	// Extra flags for the next start (e.g. --debug-clock-offset).
	Extra []string
	// DataDir is the node's --data-dir (kept across restarts).
	DataDir string

	lab     *Lab
	bin     string
	args    []string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	gen     int
	stopped bool // SIGSTOPped
}

// Ports of every node.
const (
	HTTPPort    = 8848
	ClusterPort = HTTPPort + 1001
	GRPCPort    = HTTPPort + 1000
	RaftPort    = HTTPPort - 1000
)

// Start launches a new incarnation. The node must not be running.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s is already running", n.Role)
	}
	lf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.gen++
	args := append(append([]string{"netns", "exec", n.lab.NS(n.Role), n.bin}, n.args...), n.Extra...)
	fmt.Fprintf(lf, "=== %s start #%d at %s: %s\n", n.Role, n.gen, time.Now().Format(time.RFC3339Nano), strings.Join(args[3:], " "))
	// "ip netns exec" execs distrod in place: the pid is distrod's own, so
	// signals reach it directly.
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Die with the test process, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	n.lab.TrackPID(cmd.Process.Pid)
	done := make(chan struct{})
	n.cmd, n.done, n.stopped = cmd, done, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(lf, "=== %s #%d exited at %s: %v\n", n.Role, n.gen, time.Now().Format(time.RFC3339Nano), err)
		lf.Close()
		n.lab.UntrackPID(cmd.Process.Pid)
		n.mu.Lock()
		if n.cmd == cmd {
			n.cmd = nil
		}
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// Running reports whether a process is alive (possibly stopped).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

func (n *Node) signal(sig syscall.Signal) (chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil, fmt.Errorf("%s is not running", n.Role)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.stopped = true
	case syscall.SIGCONT:
		n.stopped = false
	}
	return n.done, n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() error {
	done, err := n.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not die", n.Role)
	}
}

// Pause sends SIGSTOP.
func (n *Node) Pause() error { _, err := n.signal(syscall.SIGSTOP); return err }

// Resume sends SIGCONT.
func (n *Node) Resume() error { _, err := n.signal(syscall.SIGCONT); return err }

// Terminate stops the node gracefully (SIGTERM), killing it after d.
func (n *Node) Terminate(d time.Duration) error {
	n.mu.Lock()
	stopped := n.stopped
	n.mu.Unlock()
	if stopped {
		_ = n.Resume()
	}
	done, err := n.signal(syscall.SIGTERM)
	if err != nil {
		return nil // not running: nothing to do
	}
	select {
	case <-done:
		return nil
	case <-time.After(d):
		if err := n.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		return fmt.Errorf("%s ignored SIGTERM for %v; killed", n.Role, d)
	}
}

// Gen returns the number of starts so far.
func (n *Node) Gen() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen
}
