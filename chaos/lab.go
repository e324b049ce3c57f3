package chaos

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// StateRoot holds one directory per live lab: the owner's pid and the pids
// of every process started in it, so that a later run can clean up after a
// run that was killed (go test's timeout panics without running cleanups).
const StateRoot = "/run/distro-chaos"

// Lab is a set of network namespaces on one Linux bridge: nodes n1..nN and
// a client namespace cl, modelled on netns-lab.sh. Every name carries the
// lab's random prefix and the subnet is one nobody else on the host routes,
// so labs never collide with each other or with anything else.
//
// The bridge itself has the observer address (.254) in the root namespace:
// the test process reads every node through it, independently of the
// client namespace, so client-side faults never blind the checker.
type Lab struct {
	ID     string // "dx" + 4 hex digits
	Net    string // first three octets of the /24, e.g. "10.88.147"
	Nodes  []string
	Bridge string
	dir    string
	logf   func(string, ...any)
}

// Names of the namespaces' roles.
const (
	ClientNS = "cl"
	clientIP = 100
	obsIP    = 254
)

// NewLab creates a lab with n node namespaces and the client namespace.
// On error everything created so far is removed.
func NewLab(n int, logf func(string, ...any)) (*Lab, error) {
	if err := SweepStale(logf); err != nil {
		logf("sweeping stale labs: %v", err)
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	l := &Lab{ID: "dx" + hex.EncodeToString(b[:]), logf: logf}
	l.Bridge = l.ID + "-br"
	for i := 1; i <= n; i++ {
		l.Nodes = append(l.Nodes, "n"+strconv.Itoa(i))
	}
	var err error
	if l.Net, err = freeSubnet(int(b[0])<<8 | int(b[1])); err != nil {
		return nil, err
	}
	l.dir = filepath.Join(StateRoot, l.ID)
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(l.dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if err := l.up(); err != nil {
		l.Down()
		return nil, err
	}
	return l, nil
}

// freeSubnet picks 10.88.X.0/24 with X not covered by any route or address
// of the root namespace (so the observer route is unambiguous).
func freeSubnet(seed int) (string, error) {
	out, err := exec.Command("ip", "-4", "-o", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip route: %v: %s", err, out)
	}
	addrs, err := exec.Command("ip", "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip addr: %v: %s", err, addrs)
	}
	var used []netip.Prefix
	for _, f := range strings.Fields(string(out) + " " + string(addrs)) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used = append(used, p)
		} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
			used = append(used, netip.PrefixFrom(a, 32))
		}
	}
	for i := range 150 {
		x := 100 + (seed+i*37)%150
		cand := netip.MustParsePrefix(fmt.Sprintf("10.88.%d.0/24", x))
		if !slices.ContainsFunc(used, func(p netip.Prefix) bool { return p.Bits() > 0 && p.Overlaps(cand) }) {
			return fmt.Sprintf("10.88.%d", x), nil
		}
	}
	return "", errors.New("no free 10.88.X.0/24 subnet")
}

// NS returns the namespace name of a role ("n1", "cl").
func (l *Lab) NS(role string) string { return l.ID + "-" + role }

// IP returns the address of a role: nK is .K, cl .100, the observer .254.
func (l *Lab) IP(role string) string {
	switch {
	case role == ClientNS:
		return fmt.Sprintf("%s.%d", l.Net, clientIP)
	case role == "obs":
		return fmt.Sprintf("%s.%d", l.Net, obsIP)
	case strings.HasPrefix(role, "n"):
		return l.Net + "." + role[1:]
	}
	panic("chaos: unknown role " + role)
}

// AddNode creates one more node namespace (membership changes).
func (l *Lab) AddNode() (string, error) {
	role := "n" + strconv.Itoa(len(l.Nodes)+1)
	if err := l.mkNS(role); err != nil {
		return "", err
	}
	l.Nodes = append(l.Nodes, role)
	return role, nil
}

func (l *Lab) up() error {
	if err := sh("ip", "link", "add", l.Bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := sh("ip", "link", "set", l.Bridge, "up"); err != nil {
		return err
	}
	if err := sh("ip", "addr", "add", l.IP("obs")+"/24", "dev", l.Bridge); err != nil {
		return err
	}
	for _, r := range append(slices.Clone(l.Nodes), ClientNS) {
		if err := l.mkNS(r); err != nil {
			return err
		}
	}
	return nil
}

const nftTable = `table inet chaos {
  chain input  { type filter hook input  priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
`

func (l *Lab) mkNS(role string) error {
	ns, veth := l.NS(role), l.ID+"-"+role
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", l.Bridge, "up"},
		{"ip", "-n", ns, "addr", "add", l.IP(role) + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return err
		}
	}
	return runIn(nftTable, "ip", "netns", "exec", ns, "nft", "-f", "-")
}

// Down kills every process the lab recorded and removes its namespaces and
// bridge. It is safe to call more than once.
func (l *Lab) Down() {
	downLab(l.ID, l.logf)
}

// TrackPID records a process started in the lab, for SweepStale.
func (l *Lab) TrackPID(pid int) {
	_ = os.WriteFile(filepath.Join(l.dir, "pid."+strconv.Itoa(pid)), nil, 0o644)
}

// UntrackPID forgets a process that has exited.
func (l *Lab) UntrackPID(pid int) {
	_ = os.Remove(filepath.Join(l.dir, "pid."+strconv.Itoa(pid)))
}

func downLab(id string, logf func(string, ...any)) {
	dir := filepath.Join(StateRoot, id)
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], id+"-") {
			// Only processes inside the lab's own namespaces are killed: a
			// recorded pid may have been recycled by something else.
			pids, _ := exec.Command("ip", "netns", "pids", f[0]).Output()
			for _, p := range strings.Fields(string(pids)) {
				if pid, err := strconv.Atoi(p); err == nil && ownProcess(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if err := sh("ip", "netns", "del", f[0]); err != nil && logf != nil {
				logf("lab %s: %v", id, err)
			}
		}
	}
	// Veth ends in the root namespace die with their peers; the bridge does not.
	_ = exec.Command("ip", "link", "del", id+"-br").Run()
	_ = os.RemoveAll(dir)
}

// ownProcess reports whether pid is a process this suite starts (distrod
// or the workload), so that a recycled pid is never signalled.
func ownProcess(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
	return strings.Contains(cmd, "distrod") || strings.Contains(cmd, "workload")
}

// SweepStale removes labs whose owner process is gone.
func SweepStale(logf func(string, ...any)) error {
	ents, err := os.ReadDir(StateRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(StateRoot, e.Name(), "owner"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			continue
		}
		logf("removing stale lab %s (owner %d gone)", e.Name(), pid)
		downLab(e.Name(), logf)
	}
	return nil
}

func sh(args ...string) error { return runIn("", args...) }

func runIn(stdin string, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *Lab) nft(role string, rule ...string) error {
	return sh(append([]string{"ip", "netns", "exec", l.NS(role), "nft", "add", "rule", "inet", "chaos"}, rule...)...)
}

// Cut drops every packet between a and b, both ways (symmetric partition).
func (l *Lab) Cut(a, b string) error {
	if err := l.nft(a, "input", "ip", "saddr", l.IP(b), "drop"); err != nil {
		return err
	}
	return l.nft(b, "input", "ip", "saddr", l.IP(a), "drop")
}

// OneWay makes a unable to reach b's servers while b still reaches a's:
// a's requests to b's ports and their answers are dropped, b's connections
// to a are untouched. netns-lab.sh drops only "ct state new" packets, which
// leaves the long-lived gRPC connection a opened earlier working, so this
// matches the ports instead and also breaks established connections.
func (l *Lab) OneWay(a, b string, ports ...int) error {
	set := portSet(ports)
	if err := l.nft(a, "output", "ip", "daddr", l.IP(b), "tcp", "dport", set, "drop"); err != nil {
		return err
	}
	return l.nft(a, "input", "ip", "saddr", l.IP(b), "tcp", "sport", set, "drop")
}

func portSet(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// Isolate cuts a from every other node; clients still reach it.
func (l *Lab) Isolate(a string) error {
	for _, n := range l.Nodes {
		if n != a {
			if err := l.Cut(a, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// NoClients makes a unreachable from the client namespace; peers and the
// observer still reach it.
func (l *Lab) NoClients(a string) error {
	return l.nft(a, "input", "ip", "saddr", l.IP(ClientNS), "drop")
}

// Loss drops pct% of the packets a receives (nft numgen; netem is not
// available on this kernel).
func (l *Lab) Loss(a string, pct int) error {
	return l.nft(a, "input", "numgen", "random", "mod", "100", "<", strconv.Itoa(pct), "drop")
}

// Slow limits a's egress to rate (tbf, e.g. "256kbit").
func (l *Lab) Slow(a, rate string) error {
	return sh("ip", "netns", "exec", l.NS(a), "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
		"rate", rate, "burst", "32kbit", "latency", "400ms")
}

// Heal removes every rule and qdisc from every namespace.
func (l *Lab) Heal() error {
	var errs []error
	for _, r := range append(slices.Clone(l.Nodes), ClientNS) {
		if err := sh("ip", "netns", "exec", l.NS(r), "nft", "flush", "table", "inet", "chaos"); err != nil {
			errs = append(errs, err)
		}
		_ = exec.Command("ip", "netns", "exec", l.NS(r), "tc", "qdisc", "del", "dev", "eth0", "root").Run()
	}
	return errors.Join(errs...)
}
