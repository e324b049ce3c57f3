package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultReadyTimeout = 20 * time.Second
	DefaultStopTimeout  = 10 * time.Second
	// startAttempts bounds retries when an auto-picked port is taken by
	// another process between FreePort and distrod's bind.
	startAttempts = 3
)

// Options configure one distrod node.
type Options struct {
	// Name labels the node in logs ("node" when empty).
	Name string
	// Port is the HTTP port; 0 picks one with FreePort (and retries with
	// another if it turns out to be taken). P+1000 and P+1001 are used too.
	Port int
	// Args are appended after --port P --bind 127.0.0.1 --log-level debug
	// (a later flag wins, so Args can override those).
	Args []string
	// Env is appended to the environment. DISTRO_* variables of the test
	// process are not passed on, so the node sees only its flags and Env.
	Env []string
	// ReadyTimeout bounds the wait for GET /readyz == 200 after a start.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
}

// Node is one distrod process that can be stopped, killed and restarted on
// the same ports. Its output (stdout and stderr, all incarnations) is kept.
type Node struct {
	Name string

	opts     Options
	bin      string
	dir      string
	log      *logBuffer
	autoPort bool

	mu     sync.Mutex
	port   int
	cur    *proc
	starts int
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status; valid once done is closed
}

var (
	nodesMu  sync.Mutex
	allNodes = map[*Node]bool{}
)

// NewNode prepares a node (binary, port, work directory) without starting it.
func NewNode(opts Options) (*Node, error) {
	if opts.Name == "" {
		opts.Name = "node"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	bin, err := DistrodBin()
	if err != nil {
		return nil, err
	}
	dir, err := TempDir("node-" + opts.Name)
	if err != nil {
		return nil, err
	}
	n := &Node{Name: opts.Name, opts: opts, bin: bin, dir: dir, log: &logBuffer{}, port: opts.Port, autoPort: opts.Port == 0}
	if n.autoPort {
		if n.port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	nodesMu.Lock()
	allNodes[n] = true
	nodesMu.Unlock()
	return n, nil
}

// Launch is NewNode followed by Start.
func Launch(opts Options) (*Node, error) {
	n, err := NewNode(opts)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// Port is the HTTP port P.
func (n *Node) Port() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.port
}

// GRPCPort is the client gRPC port (P+1000).
func (n *Node) GRPCPort() int { return n.Port() + GRPCOffset }

// ClusterPort is the cluster gRPC port (P+1001).
func (n *Node) ClusterPort() int { return n.Port() + ClusterOffset }

// Addr is 127.0.0.1:P.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port())) }

// BaseURL is http://127.0.0.1:P (for /readyz, /metrics).
func (n *Node) BaseURL() string { return "http://" + n.Addr() }

// NacosURL is http://127.0.0.1:P/nacos, the Nacos API root.
func (n *Node) NacosURL() string { return n.BaseURL() + "/nacos" }

// Dir is the node's working directory.
func (n *Node) Dir() string { return n.dir }

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.cur
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Logs is everything the node printed (all incarnations, capped at 16 MiB).
func (n *Node) Logs() string { return n.log.since(0) }

// LogMark is the current end of the log, for LogsSince.
func (n *Node) LogMark() int { return n.log.mark() }

// LogsSince is what the node printed after mark.
func (n *Node) LogsSince(mark int) string { return n.log.since(mark) }

func (n *Node) args() []string {
	// No server-side health check unless a suite asks for one: the suites
	// register persistent instances at made-up addresses, and a check
	// would send traffic off loopback.
	a := []string{"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--log-level", "debug", "--health-check-default", "NONE"}
	return append(a, n.opts.Args...)
}

func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DISTRO_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// Start starts the process and waits until /readyz answers 200. It fails if
// the node is already running. If the process exits before it is ready
// because an auto-picked port was taken meanwhile, Start retries with fresh
// ports (only before the node first became ready: a restart keeps its ports).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur != nil {
		select {
		case <-n.cur.done:
		default:
			return fmt.Errorf("%s: already running (pid %d)", n.Name, n.cur.cmd.Process.Pid)
		}
	}
	var err error
	for attempt := 1; ; attempt++ {
		mark := n.log.mark()
		err = n.startLocked()
		if err == nil {
			return nil
		}
		portClash := strings.Contains(n.log.since(mark), "address already in use")
		if !portClash || !n.autoPort || n.starts > 1 || attempt >= startAttempts {
			break
		}
		p, perr := FreePort()
		if perr != nil {
			break
		}
		fmt.Fprintf(n.log, "=== harness: port %d (or +%d/+%d) was taken; retrying on %d ===\n", n.port, GRPCOffset, ClusterOffset, p)
		n.port = p
		n.starts = 0
	}
	return fmt.Errorf("%w\n--- %s output ---\n%s", err, n.Name, n.Logs())
}

func (n *Node) startLocked() error {
	n.starts++
	args := n.args()
	fmt.Fprintf(n.log, "=== harness: start #%d: %s %s ===\n", n.starts, n.bin, strings.Join(args, " "))
	cmd := exec.Command(n.bin, args...)
	cmd.Dir = n.dir
	cmd.Env = childEnv(n.opts.Env)
	cmd.Stdout = n.log
	cmd.Stderr = n.log
	cmd.WaitDelay = 5 * time.Second // do not hang on the output pipe after exit
	if err := startProcess(cmd); err != nil {
		return fmt.Errorf("%s: start %s: %w", n.Name, n.bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(n.log, "=== harness: %s (pid %d) exited: %v ===\n", n.Name, cmd.Process.Pid, exitText(p.err))
		close(p.done)
	}()
	n.cur = p
	if err := n.waitReady(p); err != nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		return err
	}
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (n *Node) waitReady(p *proc) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", n.port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(n.opts.ReadyTimeout)
	last := "no answer yet"
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s: exited before it was ready: %s", n.Name, exitText(p.err))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = "GET /readyz: " + resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready within %v (last: %s)", n.Name, n.opts.ReadyTimeout, last)
		}
		select {
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitReady waits (up to timeout) for /readyz to answer 200 on a running
// node, e.g. after a cluster change.
func (n *Node) WaitReady(timeout time.Duration) error {
	n.mu.Lock()
	p := n.cur
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s: not started", n.Name)
	}
	return Poll(timeout, 50*time.Millisecond, func() error {
		select {
		case <-p.done:
			return fmt.Errorf("%s: exited: %s", n.Name, exitText(p.err))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.BaseURL()+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("GET /readyz: " + resp.Status)
		}
		return nil
	})
}

// ErrKilled is returned by Stop when the node ignored SIGTERM and had to be
// killed.
var ErrKilled = errors.New("did not exit after SIGTERM; killed")

// Stop sends SIGTERM and waits up to StopTimeout, then SIGKILL. It returns
// nil if the node was not running or exited on SIGTERM (whatever its exit
// status), ErrKilled if it had to be killed.
func (n *Node) Stop() error {
	p := n.current()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(n.opts.StopTimeout):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: pid %d survived SIGKILL for 10s", n.Name, p.cmd.Process.Pid)
	}
	return fmt.Errorf("%s: %w (after %v)", n.Name, ErrKilled, n.opts.StopTimeout)
}

// Kill sends SIGKILL (a crash: no graceful shutdown) and waits for the exit.
func (n *Node) Kill() error {
	p := n.current()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: pid %d survived SIGKILL for 10s", n.Name, p.cmd.Process.Pid)
	}
}

// Restart stops the node gracefully and starts it again on the same ports.
func (n *Node) Restart() error {
	if err := n.Stop(); err != nil && !errors.Is(err, ErrKilled) {
		return err
	}
	return n.Start()
}

// Pid is the current process id (0 when never started).
func (n *Node) Pid() int {
	p := n.current()
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited is closed when the current process exits (nil if never started).
func (n *Node) Exited() <-chan struct{} {
	p := n.current()
	if p == nil {
		return nil
	}
	return p.done
}

func (n *Node) current() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur
}

// stopAll stops every node this process created (Main calls it at exit).
func stopAll() {
	nodesMu.Lock()
	var ns []*Node
	for n := range allNodes {
		ns = append(ns, n)
	}
	nodesMu.Unlock()
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Go(func() {
			if err := n.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "harness: stopping %s: %v\n", n.Name, err)
			}
		})
	}
	wg.Wait()
}
