package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Raft rows of the fault matrix (reliability.md §4b): a persistent
// workload (register with a value, deregister, linearizable read of a few
// persistent instances) runs through every node while the nemesis acts;
// the recorded history is checked for linearizability with porcupine
// (chaos/lincheck), and every node must end with the same persistent data.

type raftScenario struct {
	ID, Name string
	// Mounts: give every node's data dir a tmpfs of this many MiB (R3).
	TmpfsMiB int
	Run      func(r *raftRun) error
}

func raftScenarios() []*raftScenario {
	return []*raftScenario{
		{ID: "R1", Name: "partition-the-raft-leader", Run: func(r *raftRun) error {
			leader, err := r.leader()
			if err != nil {
				return err
			}
			if err := r.c.Isolate(leader); err != nil {
				return err
			}
			r.sleep(r.d(8 * time.Second))
			if err := r.c.Heal(); err != nil {
				return err
			}
			r.sleep(3 * time.Second)
			// And the new leader too.
			if leader, err = r.leader(); err != nil {
				return err
			}
			if err := r.c.Isolate(leader); err != nil {
				return err
			}
			r.sleep(r.d(6 * time.Second))
			return nil
		}},
		{ID: "R2", Name: "restart-with-wiped-data-dir", Run: func(r *raftRun) error {
			for round := range 2 {
				victim := "n" + strconv.Itoa(1+r.rng.IntN(3))
				if round == 1 {
					// The leader this time.
					l, err := r.leader()
					if err != nil {
						return err
					}
					victim = l
				}
				if err := r.c.Kill(victim); err != nil {
					return err
				}
				if err := os.RemoveAll(r.c.Node(victim).DataDir); err != nil {
					return err
				}
				r.c.Event(EvMark, victim, "wiped the data dir of %s", victim)
				r.sleep(2 * time.Second)
				if err := r.c.Restart(victim); err != nil {
					return err
				}
				if err := r.c.WaitReady(30*time.Second, r.c.Node(victim)); err != nil {
					return err
				}
				r.sleep(r.d(6 * time.Second))
			}
			return nil
		}},
		{ID: "R3", Name: "disk-full-data-dir", TmpfsMiB: 16, Run: func(r *raftRun) error {
			// Fill every data dir: no quorum can persist anything, so
			// writes must fail (never be acknowledged); then free the
			// space and restart every node from what is on disk.
			full := func() error {
				for _, n := range r.c.Nodes {
					if err := fill(filepath.Join(n.DataDir, "filler")); err != nil {
						return err
					}
				}
				return nil
			}
			if err := full(); err != nil {
				return err
			}
			r.c.Event(EvFault, "", "every data dir is full")
			failedAt := r.failed()
			// Keep them full: the stores free pages (trimmed log, old
			// snapshots) that the filler takes again.
			for end := time.Now().Add(r.d(8 * time.Second)); time.Now().Before(end); {
				if err := full(); err != nil {
					return err
				}
				r.sleep(200 * time.Millisecond)
			}
			failedBefore := r.failed() - failedAt
			for _, n := range r.c.Nodes {
				_ = os.Remove(filepath.Join(n.DataDir, "filler"))
			}
			r.c.Event(EvHeal, "", "space freed")
			r.figure("errors-while-full=%d", failedBefore)
			if failedBefore == 0 {
				return fmt.Errorf("no write failed while every data dir was full")
			}
			r.sleep(r.d(6 * time.Second))
			for _, n := range r.c.Nodes {
				if err := r.c.Kill(n.Role); err != nil {
					return err
				}
			}
			for _, n := range r.c.Nodes {
				if err := r.c.Restart(n.Role); err != nil {
					return err
				}
			}
			return r.c.WaitReady(time.Minute, r.c.Nodes...)
		}},
	}
}

// fill appends zeros to path until the file system is full.
func fill(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			return nil // ENOSPC: full
		}
	}
}

type raftRun struct {
	*run
	mu      sync.Mutex
	ops     []linOp
	failedN int
}

// linOp is one operation of the history (chaos/lincheck's format).
type linOp struct {
	Client  int    `json:"client"`
	Kind    string `json:"kind"`
	Key     string `json:"key"`
	Value   int    `json:"value,omitempty"`
	Result  int    `json:"result"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return,omitempty"`
	Unknown bool   `json:"unknown,omitempty"`
	Node    string `json:"node"`
	Status  int    `json:"status,omitempty"`
}

func (r *raftRun) record(op linOp) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	if op.Kind != "get" && (op.Unknown || op.Status != http.StatusOK) {
		r.failedN++
	}
	r.mu.Unlock()
}

func (r *raftRun) failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failedN
}

const raftService = "DEFAULT_GROUP@@chaos-persistent"

var raftKeys = []int{3301, 3302, 3303, 3304}

var raftHTTP = &http.Client{Timeout: 6 * time.Second}

// leader returns the role of the Raft leader as the nodes report it.
func (r *raftRun) leader() (string, error) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range r.c.Nodes {
			if v, err := raftMetric(n.Addr, "distro_raft_leader"); err == nil && v == 1 {
				return n.Role, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no Raft leader within 20 s")
}

func raftMetric(addr, name string) (float64, error) {
	resp, err := raftHTTP.Get("http://" + addr + "/metrics")
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
	return 0, fmt.Errorf("no %s", name)
}

// do runs one operation against node addr and records it. A write is
// definite when answered 200 (applied) or with "was not applied" (never
// applied, so it is left out of the history); anything else may have been
// applied and is recorded as unknown. A read that fails constrains nothing.
func (r *raftRun) do(client int, addr, kind string, key, value int) {
	q := url.Values{"serviceName": {raftService}, "ip": {"10.77.0.1"}, "port": {strconv.Itoa(key)}, "ephemeral": {"false"}}
	method := http.MethodGet
	switch kind {
	case "put":
		method = http.MethodPost
		q.Set("weight", strconv.Itoa(value))
	case "del":
		method = http.MethodDelete
	case "get":
		q.Set("linearizable", "true")
	}
	op := linOp{Client: client, Kind: kind, Key: strconv.Itoa(key), Value: value, Node: addr, Call: time.Now().UnixNano()}
	req, _ := http.NewRequest(method, "http://"+addr+"/nacos/v1/ns/instance?"+q.Encode(), nil)
	resp, err := raftHTTP.Do(req)
	var body []byte
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		op.Status = resp.StatusCode
	}
	op.Return = time.Now().UnixNano()
	switch {
	case kind == "get" && err == nil && resp.StatusCode == http.StatusOK:
		var d struct{ Weight float64 }
		if json.Unmarshal(body, &d) != nil {
			op.Unknown = true
		}
		op.Result = int(d.Weight)
	case kind == "get" && err == nil && resp.StatusCode == http.StatusNotFound:
		op.Result = -1
	case kind == "get":
		return // no answer: constrains nothing
	case err == nil && resp.StatusCode == http.StatusOK:
	case err == nil && (resp.StatusCode == http.StatusBadRequest ||
		resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "was not applied")):
		// Certainly not applied: counted, left out of the history.
		r.mu.Lock()
		r.failedN++
		r.mu.Unlock()
		return
	default:
		op.Unknown, op.Return = true, 0
	}
	r.record(op)
}

// workload runs clients until ctx ends: each picks a node and a key at
// random and writes or reads (every value written is unique).
func (r *raftRun) workload(ctx context.Context, clients int) *sync.WaitGroup {
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for c := range clients {
		rng := rand.New(rand.NewPCG(r.seed, uint64(c)))
		wg.Go(func() {
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				n := r.c.Nodes[rng.IntN(len(r.c.Nodes))]
				key := raftKeys[rng.IntN(len(raftKeys))]
				switch p := rng.IntN(10); {
				case p < 4:
					mu.Lock()
					next++
					v := 1 + next%10000
					mu.Unlock()
					r.do(c, n.Addr, "put", key, v)
				case p < 5:
					r.do(c, n.Addr, "del", key, 0)
				default:
					r.do(c, n.Addr, "get", key, 0)
				}
				time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
			}
		})
	}
	return &wg
}

// TestChaosRaft runs the Raft rows.
func TestChaosRaft(t *testing.T) {
	requireLab(t)
	for i, sc := range raftScenarios() {
		t.Run(sc.ID, func(t *testing.T) { runRaftScenario(t, 100+i, sc) })
	}
}

func runRaftScenario(t *testing.T, idx int, sc *raftScenario) {
	setupSuite(t)
	lincheck := buildLincheck(t)
	seed := suiteSeed + uint64(idx)*1000003
	dir := filepath.Join(suiteDir, sc.ID)
	t.Logf("%s %s at %s: seed %d, evidence in %s", sc.ID, sc.Name, suiteCommit, seed, dir)
	c, err := NewCluster(Config{Name: sc.ID, Dir: dir, Nodes: 3, Distrod: suiteBins[0], Workload: suiteBins[1], Seed: seed, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if sc.TmpfsMiB > 0 {
		for _, n := range c.Nodes {
			if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sc.TmpfsMiB), "tmpfs", n.DataDir).CombinedOutput(); err != nil {
				t.Fatalf("mount tmpfs: %v %s", err, out)
			}
			dd := n.DataDir
			defer func() { _ = exec.Command("umount", "-l", dd).Run() }()
		}
	}
	r := &raftRun{run: &run{t: t, c: c, short: short(), seed: seed, rng: rand.New(rand.NewPCG(seed, 42))}}
	line, pass := func() (string, bool) {
		if err := c.StartAll(); err != nil {
			return "harness: " + err.Error(), false
		}
		ctx, stop := context.WithCancel(context.Background())
		wg := r.workload(ctx, 6)
		r.sleep(3 * time.Second)
		runErr := sc.Run(r)
		_ = c.Heal()
		if runErr == nil {
			runErr = c.WaitReady(time.Minute, c.Nodes...)
		}
		r.sleep(3 * time.Second)
		stop()
		wg.Wait()
		if runErr != nil {
			return "fault schedule: " + runErr.Error(), false
		}
		// Final linearizable reads of every key on every node close the history.
		for _, n := range c.Nodes {
			for _, k := range raftKeys {
				r.do(99, n.Addr, "get", k, 0)
			}
		}
		acked, unknown := 0, 0
		for _, op := range r.ops {
			switch {
			case op.Kind != "get" && op.Unknown:
				unknown++
			case op.Kind != "get":
				acked++
			}
		}
		r.figure("ops=%d acked-writes=%d unknown=%d failed=%d", len(r.ops), acked, unknown, r.failed())
		hp := filepath.Join(dir, "raft-history.json")
		b, _ := json.Marshal(r.ops)
		if err := os.WriteFile(hp, b, 0o644); err != nil {
			return err.Error(), false
		}
		out, err := exec.Command(lincheck, hp, filepath.Join(dir, "linearizability.html")).CombinedOutput()
		verdict := strings.TrimSpace(string(out))
		if err != nil {
			return "linearizability: " + verdict, false
		}
		if acked == 0 {
			return "no write was acknowledged", false
		}
		if err := sameOnAll(c); err != nil {
			return err.Error(), false
		}
		return verdict, true
	}()
	c.Close()
	status := "PASS"
	if !pass {
		status = "FAIL"
	}
	full := fmt.Sprintf("%s %s %s: %s %s", status, sc.ID, sc.Name, line, strings.Join(r.extra, " "))
	if pass && os.Getenv("CHAOS_KEEP") != "1" {
		_ = os.RemoveAll(dir)
	} else {
		full += " evidence=" + dir
	}
	fmt.Println(full)
	appendSummary(full, nil)
	if !pass {
		t.Error(full)
	}
}

// sameOnAll: every node lists the same persistent instances with the same
// weights (read linearizably).
func sameOnAll(c *Cluster) error {
	var ref string
	for i, n := range c.Nodes {
		resp, err := raftHTTP.Get("http://" + n.Addr + "/nacos/v1/ns/instance/list?linearizable=true&serviceName=" + url.QueryEscape(raftService))
		if err != nil {
			return err
		}
		var info struct {
			Hosts []struct {
				Port   int
				Weight float64
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil {
			return err
		}
		got := fmt.Sprint(info.Hosts)
		if i == 0 {
			ref = got
		} else if got != ref {
			return fmt.Errorf("%s lists %s, %s lists %s", c.Nodes[0].Role, ref, n.Role, got)
		}
	}
	return nil
}

var (
	lincheckOnce sync.Once
	lincheckBin  string
	lincheckErr  error
)

// buildLincheck builds chaos/lincheck (its own module) once, unless
// CHAOS_LINCHECK names a binary.
func buildLincheck(t *testing.T) string {
	lincheckOnce.Do(func() {
		if lincheckBin = os.Getenv("CHAOS_LINCHECK"); lincheckBin != "" {
			return
		}
		lincheckBin = filepath.Join(suiteDir, "bin", "lincheck")
		cmd := exec.Command("go", "build", "-o", lincheckBin, ".")
		cmd.Dir = filepath.Join(distrodRepoRt, "chaos", "lincheck")
		if out, err := cmd.CombinedOutput(); err != nil {
			lincheckErr = fmt.Errorf("build lincheck: %v\n%s", err, out)
		}
	})
	if lincheckErr != nil {
		t.Fatal(lincheckErr)
	}
	return lincheckBin
}
