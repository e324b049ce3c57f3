package chaos

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// commonArgs are the flags every node runs with, whatever the timing
// profile.
var commonArgs = []string{
	// No server-side health check: the workload registers made-up
	// addresses (a check would only add traffic to the lab).
	"--health-check-default", "NONE",
	"--startup-timeout", "3s",
	"--conn-lease", "5s",
	"--raft-write-timeout", "3s",
	"--log-level", "info",
}

// Timings is a node timing profile: the flags every node runs with and the
// bounds the checker derives from them.
type Timings struct {
	Name string
	Args []string
	// Verify and Probe are the verification and probe periods.
	Verify, Probe time.Duration
	// TConv is reliability.md's convergence bound: 2×verify + sync timeout
	// + retry.
	TConv time.Duration
	// Detect bounds how long peers take to notice a fault (three failed
	// probes) and change their view, which restarts the expiry grace of
	// moved keys.
	Detect time.Duration
}

var (
	// Compressed is reliability.md §4's compressed timings, what the suite
	// runs by default: three failed probes at 200 ms with 500 ms timeouts
	// take about 2 s.
	Compressed = Timings{Name: "compressed", Args: []string{"--verify-interval", "500ms", "--probe-interval", "200ms",
		"--raft-heartbeat-timeout", "500ms", "--raft-election-timeout", "500ms"},
		Verify: 500 * time.Millisecond, Probe: 200 * time.Millisecond, TConv: 5 * time.Second, Detect: 2 * time.Second}
	// Defaults is distrod's default verification, probe and Raft timings
	// (CHAOS_TIMINGS=default), to measure convergence as users get it.
	Defaults = Timings{Name: "default", Args: nil,
		Verify: 5 * time.Second, Probe: time.Second, TConv: 12 * time.Second, Detect: 4 * time.Second}
)

// timing is the profile of this run; TConv and Detect are its bounds.
var (
	timing = Compressed
	TConv  = timing.TConv
	Detect = timing.Detect
)

// useTimings selects the profile (once, before any scenario runs).
func useTimings(t Timings) { timing, TConv, Detect = t, t.TConv, t.Detect }

// Workload instance timings (metadata of every instance) and the bounds the
// checker derives from them and from the node timings.
const (
	BeatInterval  = time.Second
	BeatTimeout   = 3 * time.Second // preserved.heart.beat.timeout
	DeleteTimeout = 6 * time.Second // preserved.ip.delete.timeout
	// ScanInterval is how often the owner checks deadlines (registry.ScanInterval).
	ScanInterval = 250 * time.Millisecond
	// ExpireWindow is the self-preservation cap's window (health.Config):
	// expirations beyond the cap wait for the next window.
	ExpireWindow = 30 * time.Second
	// InFlight is how long an acknowledged write may be held by the node
	// that acknowledged it alone: the sync delay (20 ms) and the send. A
	// fault of that node within it holds the write back until the fault
	// ends (a SIGKILL loses it: docs/reliability.md, the effect inherent
	// to asynchronous replication).
	InFlight = 100 * time.Millisecond
	// HealConvBound is the issue-8 goal for every write made during a fault:
	// listed (or gone) everywhere within 5 s of the heal, p99.
	HealConvBound = 5 * time.Second
)

// healBound is how long after a heal a healthy node may miss an instance
// whose client kept beating: one verification round, plus the probe that
// notices the heal, plus one observer round (200 ms) of sampling
// resolution.
func healBound() time.Duration { return timing.Verify + timing.Probe + 200*time.Millisecond }

// Config describes one scenario's cluster.
type Config struct {
	Name  string // scenario id, e.g. "F1"
	Dir   string // results directory of the scenario (logs, history)
	Nodes int
	// ClusterConf gives each node its own --cluster-conf file (editable
	// live) instead of --members.
	ClusterConf bool
	// NodeExtra holds extra flags per role for the first start.
	NodeExtra map[string][]string
	// Distrod and Workload are the binaries.
	Distrod, Workload string
	Seed              uint64
	Logf              func(string, ...any)
}

// Event is one nemesis action, logged with its time.
type Event struct {
	T    int64  `json:"t"`
	Kind string `json:"kind"`
	Node string `json:"node,omitempty"`
	Note string `json:"note,omitempty"`
	// Client: the fault also cuts or slows the path between clients and
	// Node (client-side loss, rate limit, pause, kill), so client attempts
	// to Node during it measure the network, not distrod.
	Client bool `json:"client,omitempty"`
}

// Nemesis event kinds. Every kind but EvMark may move keys between owners
// (a view change) and so restarts expiry grace periods.
const (
	EvFault   = "fault"
	EvHeal    = "heal"
	EvKill    = "kill"
	EvStart   = "start"
	EvPause   = "pause"
	EvResume  = "resume"
	EvMember  = "member"
	EvMark    = "mark"
	EvQuiesce = "quiesce"
)

// Cluster is a lab, its distrod nodes, the observer and the workload.
type Cluster struct {
	Cfg    Config
	Lab    *Lab
	Nodes  []*Node
	Obs    *Observer
	Secret string

	wl       *workloadProc
	pollStop context.CancelFunc
	pollDone chan struct{}
	watchers sync.WaitGroup

	mu     sync.Mutex
	events []Event
	active []*Node // nodes the poller reads
}

// NewCluster creates the lab and the nodes (not started).
func NewCluster(cfg Config) (*Cluster, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	lab, err := NewLab(cfg.Nodes, cfg.Logf)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 48)
	_, _ = rand.Read(secret)
	c := &Cluster{Cfg: cfg, Lab: lab, Obs: newObserver("chaos-svc-"), Secret: base64.StdEncoding.EncodeToString(secret)}
	for _, role := range lab.Nodes {
		if _, err := c.newNode(role); err != nil {
			c.Close()
			return nil, err
		}
	}
	cfg.Logf("lab %s: bridge %s, subnet %s.0/24, nodes %v", lab.ID, lab.Bridge, lab.Net, lab.Nodes)
	return c, nil
}

func (c *Cluster) newNode(role string) (*Node, error) {
	ip := c.Lab.IP(role)
	n := &Node{Role: role, IP: ip, Addr: ip + ":" + strconv.Itoa(HTTPPort), lab: c.Lab, bin: c.Cfg.Distrod,
		logPath: filepath.Join(c.Cfg.Dir, role+".log"),
		// Client auth (on by default in a cluster) is off explicitly: the
		// suite tests Distro, and its workload and observers speak to the
		// nodes anonymously.
		env: []string{"DISTRO_CLUSTER_SECRET=" + c.Secret, "DISTRO_AUTH=false"}}
	n.DataDir = filepath.Join(c.Cfg.Dir, role+"-data")
	n.args = []string{"--port", strconv.Itoa(HTTPPort), "--bind", ip, "--advertise", n.Addr, "--data-dir", n.DataDir}
	if c.Cfg.ClusterConf {
		conf := c.confPath(role)
		if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
			return nil, err
		}
		n.args = append(n.args, "--cluster-conf", conf)
	} else {
		var members []string
		for _, r := range c.Lab.Nodes {
			members = append(members, c.Lab.IP(r)+":"+strconv.Itoa(HTTPPort))
		}
		n.args = append(n.args, "--members", strings.Join(members, ","))
	}
	n.args = append(n.args, commonArgs...)
	n.args = append(n.args, timing.Args...)
	n.Extra = c.Cfg.NodeExtra[role]
	c.Nodes = append(c.Nodes, n)
	if c.Cfg.ClusterConf {
		if err := c.WriteMembers(role, c.Lab.Nodes); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (c *Cluster) confPath(role string) string {
	return filepath.Join(c.Cfg.Dir, "conf-"+role, "cluster.conf")
}

// WriteMembers replaces role's member file with members (atomically, by
// rename; the node watches the directory).
func (c *Cluster) WriteMembers(role string, members []string) error {
	var b strings.Builder
	b.WriteString("# written by the chaos suite\n")
	for _, m := range members {
		fmt.Fprintf(&b, "%s:%d\n", c.Lab.IP(m), HTTPPort)
	}
	p := c.confPath(role)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// AddNode creates namespace and node n<N+1> (not started).
func (c *Cluster) AddNode() (*Node, error) {
	role, err := c.Lab.AddNode()
	if err != nil {
		return nil, err
	}
	return c.newNode(role)
}

// Node returns the node of role.
func (c *Cluster) Node(role string) *Node {
	for _, n := range c.Nodes {
		if n.Role == role {
			return n
		}
	}
	panic("chaos: no node " + role)
}

// Event records a nemesis action.
func (c *Cluster) Event(kind, node, format string, args ...any) {
	c.event(Event{Kind: kind, Node: node, Note: fmt.Sprintf(format, args...)})
}

// ClientEvent records a nemesis action that also affects clients of node.
func (c *Cluster) ClientEvent(kind, node, format string, args ...any) {
	c.event(Event{Kind: kind, Node: node, Note: fmt.Sprintf(format, args...), Client: true})
}

func (c *Cluster) event(e Event) {
	e.T = time.Now().UnixNano()
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.Cfg.Logf("nemesis: %s %s %s", e.Kind, e.Node, e.Note)
}

// Events returns the nemesis log.
func (c *Cluster) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// StartAll starts every node and waits until all answer /readyz 200.
func (c *Cluster) StartAll() error {
	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			return err
		}
	}
	c.SetActive(c.Nodes...)
	return c.WaitReady(30*time.Second, c.Nodes...)
}

// SetActive sets the nodes the poller and the final checks read.
func (c *Cluster) SetActive(nodes ...*Node) {
	c.mu.Lock()
	c.active = slices.Clone(nodes)
	c.mu.Unlock()
}

// Active returns the nodes the poller reads.
func (c *Cluster) Active() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.active)
}

// WaitReady waits until every node answers /readyz 200.
func (c *Cluster) WaitReady(d time.Duration, nodes ...*Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, n := range nodes {
		for c.Obs.Ready(ctx, n.Addr) != http.StatusOK {
			if !n.Running() {
				return fmt.Errorf("%s exited during startup; see %s", n.Role, n.logPath)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready after %v", n.Role, d)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// StartPoller samples the active nodes every period until StopPoller.
func (c *Cluster) StartPoller(period time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	c.pollStop, c.pollDone = cancel, make(chan struct{})
	go func() {
		defer close(c.pollDone)
		c.Obs.Poll(ctx, period, c.Active)
	}()
}

// StopPoller stops the poller and waits for its last round.
func (c *Cluster) StopPoller() {
	if c.pollStop != nil {
		c.pollStop()
		<-c.pollDone
		c.pollStop = nil
	}
	c.watchers.Wait()
}

// --- faults, each logged as a nemesis event ---

// Isolate cuts role from every other node.
func (c *Cluster) Isolate(role string) error {
	c.Event(EvFault, role, "isolate %s from all peers", role)
	return c.Lab.Isolate(role)
}

// Cut partitions a from b both ways.
func (c *Cluster) Cut(a, b string) error {
	c.Event(EvFault, a, "cut %s <-/-> %s", a, b)
	return c.Lab.Cut(a, b)
}

// Split cuts every node of side a from every node of side b.
func (c *Cluster) Split(a, b []string) error {
	c.Event(EvFault, "", "split %v | %v", a, b)
	for _, x := range a {
		for _, y := range b {
			if err := c.Lab.Cut(x, y); err != nil {
				return err
			}
		}
	}
	return nil
}

// OneWay stops a from reaching b's servers (b still reaches a).
func (c *Cluster) OneWay(a, b string) error {
	c.Event(EvFault, a, "one-way: %s cannot reach %s; %s reaches %s", a, b, b, a)
	return c.Lab.OneWay(a, b, HTTPPort, GRPCPort, ClusterPort, RaftPort)
}

// NoClients makes role unreachable from clients.
func (c *Cluster) NoClients(role string) error {
	c.ClientEvent(EvFault, role, "clients cannot reach %s", role)
	return c.Lab.NoClients(role)
}

// Loss drops pct% of role's inbound packets.
func (c *Cluster) Loss(role string, pct int) error {
	c.ClientEvent(EvFault, role, "%d%% inbound loss on %s", pct, role)
	return c.Lab.Loss(role, pct)
}

// Slow rate-limits role's egress.
func (c *Cluster) Slow(role, rate string) error {
	c.ClientEvent(EvFault, role, "egress of %s limited to %s", role, rate)
	return c.Lab.Slow(role, rate)
}

// Heal removes every network fault.
func (c *Cluster) Heal() error {
	c.Event(EvHeal, "", "heal all network faults")
	return c.Lab.Heal()
}

// Kill SIGKILLs role.
func (c *Cluster) Kill(role string) error {
	c.ClientEvent(EvKill, role, "SIGKILL %s", role)
	return c.Node(role).Kill()
}

// Restart starts role again (after Kill) and watches its startup gate in
// the background (I8).
func (c *Cluster) Restart(role string) error {
	n := c.Node(role)
	c.Event(EvStart, role, "start %s (incarnation %d) %s", role, n.Gen()+1, strings.Join(n.Extra, " "))
	if err := n.Start(); err != nil {
		return err
	}
	c.watchers.Go(func() { c.Obs.WatchStartup(context.Background(), n, 30*time.Second) })
	return nil
}

// Pause SIGSTOPs role.
func (c *Cluster) Pause(role string) error {
	c.ClientEvent(EvPause, role, "SIGSTOP %s", role)
	return c.Node(role).Pause()
}

// Resume SIGCONTs role.
func (c *Cluster) Resume(role string) error {
	c.Event(EvResume, role, "SIGCONT %s", role)
	return c.Node(role).Resume()
}

// --- workload ---

type workloadProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
	mu    sync.Mutex
}

// HistoryPath is where the workload writes its history.
func (c *Cluster) HistoryPath() string { return filepath.Join(c.Cfg.Dir, "history.jsonl") }

// StartWorkload runs the workload in the client namespace against nodes
// and waits for its initial registrations.
func (c *Cluster) StartWorkload(nodes []*Node, ready time.Duration, extra ...string) error {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr)
	}
	args := append([]string{"netns", "exec", c.Lab.NS(ClientNS), c.Cfg.Workload,
		"--nodes", strings.Join(addrs, ","), "--history", c.HistoryPath(),
		"--seed", strconv.FormatUint(c.Cfg.Seed, 10), "--max-duration", "20m",
		"--hb-timeout-ms", strconv.Itoa(int(BeatTimeout.Milliseconds())),
		"--delete-timeout-ms", strconv.Itoa(int(DeleteTimeout.Milliseconds())),
		"--beat-interval", BeatInterval.String()}, extra...)
	cmd := exec.Command("ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errf, err := os.Create(filepath.Join(c.Cfg.Dir, "workload.log"))
	if err != nil {
		return err
	}
	cmd.Stderr = errf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.Lab.TrackPID(cmd.Process.Pid)
	w := &workloadProc{cmd: cmd, stdin: stdin, lines: make(chan string, 64), done: make(chan struct{})}
	c.wl = w
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(errf, "stdout:", sc.Text())
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	go func() {
		_ = cmd.Wait()
		c.Lab.UntrackPID(cmd.Process.Pid)
		errf.Close()
		close(w.done)
	}()
	return c.expect("ready", ready)
}

func (c *Cluster) expect(want string, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.wl.lines:
			if !ok {
				return fmt.Errorf("workload exited while waiting for %q", want)
			}
			if l == want {
				return nil
			}
			if strings.HasPrefix(l, "error ") {
				return errors.New("workload: " + l)
			}
		case <-timer.C:
			return fmt.Errorf("workload: no %q within %v", want, d)
		}
	}
}

// Workload sends a command to the workload and waits for its ack.
func (c *Cluster) Workload(cmd string) error {
	if c.wl == nil {
		return errors.New("workload not started")
	}
	c.wl.mu.Lock()
	defer c.wl.mu.Unlock()
	if kind, _, _ := strings.Cut(cmd, " "); kind == "quiesce" {
		c.Event(EvQuiesce, "", "workload: %s", cmd)
	} else {
		c.Event(EvMark, "", "workload: %s", cmd)
	}
	if _, err := io.WriteString(c.wl.stdin, cmd+"\n"); err != nil {
		return err
	}
	return c.expect("ok "+cmd, 90*time.Second)
}

// StopWorkload ends the workload and waits for its history to be flushed.
func (c *Cluster) StopWorkload() error {
	if c.wl == nil {
		return nil
	}
	w := c.wl
	c.Event(EvMark, "", "workload: stop")
	_, _ = io.WriteString(w.stdin, "stop\n")
	_ = w.stdin.Close()
	go func() {
		for range w.lines {
		}
	}()
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
		return errors.New("workload did not stop; killed")
	}
	c.wl = nil
	if w.cmd.ProcessState != nil && !w.cmd.ProcessState.Success() {
		return fmt.Errorf("workload: %v", w.cmd.ProcessState)
	}
	return nil
}

// Close stops everything and removes the lab. Node logs stay in Cfg.Dir.
func (c *Cluster) Close() {
	c.StopPoller()
	if c.wl != nil {
		_ = c.wl.cmd.Process.Kill()
		<-c.wl.done
		c.wl = nil
	}
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(func() { _ = n.Terminate(5 * time.Second) })
	}
	wg.Wait()
	c.Lab.Down()
}

// SaveEvidence writes the nemesis log and every observer sample to dir.
func (c *Cluster) SaveEvidence() error {
	if err := writeJSONL(filepath.Join(c.Cfg.Dir, "nemesis.jsonl"), c.Events()); err != nil {
		return err
	}
	return writeJSONL(filepath.Join(c.Cfg.Dir, "samples.jsonl"), c.Obs.Samples())
}

func writeJSONL[T any](path string, items []T) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for i := range items {
		if err := enc.Encode(&items[i]); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
