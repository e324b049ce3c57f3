package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/model"
)

type phase int

const (
	phaseBoot phase = iota
	phaseBulk
	phaseCalm
	phaseFaults
	phaseSettle
	phaseJoin
)

func (p phase) String() string {
	return [...]string{"boot", "bulk", "calm", "faults", "settle", "join"}[p]
}

// Report is the outcome of one run. Everything but Timing is a function of
// the Config alone.
type Report struct {
	Nodes     int    `json:"nodes"`
	Services  int    `json:"services"`
	Instances int    `json:"instances"`
	Seed      uint64 `json:"seed"`

	// Bulk is the initial replication of every instance from its owner.
	Bulk BulkStats `json:"bulk"`
	// Propagation is the time from a write's acknowledgement until every
	// node holds it, by the phase the write was made in.
	Propagation map[string]*Latency `json:"propagation"`
	// Wire is the traffic of each phase, by message kind.
	Wire map[string]map[string]Traffic `json:"wire"`
	// BytesPerChange is the calm phase's sync and hand-on bytes divided by
	// its writes.
	BytesPerChange float64 `json:"bytes_per_change"`
	// Verify is the steady-state verification cost (calm phase).
	Verify VerifyStats `json:"verify"`
	// Loads lists every startup snapshot load after the bootstrap.
	Loads []Load `json:"loads"`
	// Moves lists, for each change of node 0's eligible list, the share of
	// service keys whose owner changed.
	Moves []Move `json:"moves"`
	// LostInCrash counts acknowledged writes that were on no other node
	// when their node crashed (written within the sync delay before the
	// crash); their clients wrote them again at their next heartbeat.
	LostInCrash int `json:"lost_in_crash"`
	// Checked lists the invariants evaluated; Violations what failed.
	Checked    []string `json:"checked"`
	Violations []string `json:"violations"`
	// SimSeconds is the simulated time of the run.
	SimSeconds float64 `json:"sim_seconds"`
	// Timing holds real-clock measurements (Config.Timing only).
	Timing *Timing `json:"timing,omitempty"`

	phase   phase
	wire    wire
	lat     map[phase][]int64
	joinAt  int64
	timing  bool
	verifyN int
	vBytes  int64
	vMsgs   int64
	vCPU    time.Duration
	start   time.Time
	startNs int64
}

// BulkStats describe the initial replication.
type BulkStats struct {
	SimSeconds       float64 `json:"sim_seconds"`
	Bytes            int64   `json:"bytes"`
	BytesPerInstance float64 `json:"bytes_per_instance"`
}

// Latency summarises propagation times in milliseconds of simulated time.
type Latency struct {
	Changes int     `json:"changes"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// Traffic is messages and bytes (requests and replies) of one kind; Lost
// counts calls that were lost or could not be delivered.
type Traffic struct {
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	Lost     int64 `json:"lost,omitempty"`
}

// VerifyStats is the cost of one verification round of one node: its
// digests to every eligible peer and its pull round, with the replies.
type VerifyStats struct {
	Rounds                  int     `json:"rounds"`
	BytesPerRoundPerNode    float64 `json:"bytes_per_round_per_node"`
	MessagesPerRoundPerNode float64 `json:"messages_per_round_per_node"`
}

// Load is one startup snapshot load.
type Load struct {
	Node      string  `json:"node"`
	Phase     string  `json:"phase"`
	Records   int64   `json:"records"`
	Bytes     int64   `json:"bytes"`
	SimSecond float64 `json:"sim_second"`
	// CPUMillis is the CPU time of the load, sender's and receiver's work
	// together (Timing only).
	CPUMillis float64 `json:"cpu_ms,omitempty"`
}

// Move is one ownership change seen by node 0.
type Move struct {
	Phase  string  `json:"phase"`
	From   int     `json:"from_eligible"`
	To     int     `json:"to_eligible"`
	Moved  float64 `json:"moved_share"`
	Expect float64 `json:"expected_share"`
}

// Timing is measured as process CPU time on whatever machine ran it.
type Timing struct {
	// VerifyMillisPerRoundPerNode is the CPU time of one node's round,
	// including the peers' handling of its digests (the same work every
	// node does once per round as a sender and N-1 times as a receiver).
	VerifyMillisPerRoundPerNode float64 `json:"verify_ms_per_round_per_node"`
	WallSeconds                 float64 `json:"wall_seconds"`
}

func newReport(cfg Config) *Report {
	return &Report{Nodes: cfg.Nodes, Services: cfg.Services, Instances: cfg.Services * cfg.PerService, Seed: cfg.Seed,
		Propagation: map[string]*Latency{}, Wire: map[string]map[string]Traffic{}, lat: map[phase][]int64{},
		timing: cfg.Timing, wire: newWire(), start: time.Now()}
}

func (r *Report) violate(inv, msg string) {
	if len(r.Violations) < 50 {
		r.Violations = append(r.Violations, inv+": "+msg)
	}
}

func (r *Report) propagated(c *change, d int64) {
	r.lat[c.phase] = append(r.lat[c.phase], d)
}

func (r *Report) measure(fn func()) time.Duration {
	if !r.timing {
		fn()
		return 0
	}
	t := cpuTime()
	fn()
	return cpuTime() - t
}

// cpuTime is the process's user and system CPU time. The simulation runs on
// one goroutine, so a difference measures the work done in between (the
// garbage collector's included) without the time spent waiting for a core
// on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *Report) verifyRound(s *Sim, n *node, fn func()) {
	kinds := []string{"digest", "pull", "key-digest", "fetch"}
	var b0, m0 int64
	for _, k := range kinds {
		b0 += r.wire.bytes[k]
		m0 += r.wire.msgs[k]
	}
	cpu := r.measure(fn)
	if r.phase != phaseCalm {
		return
	}
	var b1, m1 int64
	for _, k := range kinds {
		b1 += r.wire.bytes[k]
		m1 += r.wire.msgs[k]
	}
	r.verifyN++
	r.vBytes += b1 - b0
	r.vMsgs += m1 - m0
	r.vCPU += cpu
}

// closePhase files the traffic since the last mark under p.
func (r *Report) closePhase(p phase) {
	r.Wire[p.String()] = r.wire.sinceMark()
	r.wire.mark()
}

func (r *Report) bulkDone(s *Sim, d time.Duration) {
	b := r.wire.sinceMark()
	var total int64
	for _, t := range b {
		total += t.Bytes
	}
	r.Wire[phaseBulk.String()] = b
	r.Bulk = BulkStats{SimSeconds: d.Seconds(), Bytes: total, BytesPerInstance: float64(total) / float64(r.Instances)}
}

func (r *Report) loaded(s *Sim, n *node, bytes int64, cpu time.Duration) {
	_, inst := n.st.Counts()
	l := Load{Node: n.addr, Phase: r.phase.String(), Records: inst, Bytes: bytes,
		SimSecond: s.nowTime().Sub(n.loadStart).Seconds()}
	if r.timing {
		l.CPUMillis = float64(cpu.Microseconds()) / 1000
	}
	r.Loads = append(r.Loads, l)
}

// noteMove records the share of keys whose owner changes on node 0 when
// its eligible list changes (after the bulk load, when keys exist).
func (r *Report) noteMove(s *Sim, n *node, before, after []string) {
	if n.idx != 0 || r.phase < phaseCalm || slices.Equal(before, after) {
		return
	}
	moved, total := 0, 0
	n.st.RangeKeys(func(k model.ServiceKey, _ uint64) bool {
		total++
		if distro.Owner(k, before) != distro.Owner(k, after) {
			moved++
		}
		return true
	})
	if total == 0 {
		return
	}
	// Rendezvous hashing moves only the keys of the members that left or
	// joined: their share of the larger list.
	changed := 0
	for _, a := range before {
		if !slices.Contains(after, a) {
			changed++
		}
	}
	for _, a := range after {
		if !slices.Contains(before, a) {
			changed++
		}
	}
	r.Moves = append(r.Moves, Move{Phase: r.phase.String(), From: len(before), To: len(after),
		Moved: round4(float64(moved) / float64(total)), Expect: round4(float64(changed) / float64(max(len(before), len(after))))})
}

func round4(x float64) float64 { return float64(int64(x*10000+0.5)) / 10000 }

func (r *Report) finish(s *Sim) {
	for p, ds := range r.lat {
		slices.Sort(ds)
		l := &Latency{Changes: len(ds)}
		if len(ds) > 0 {
			q := func(f float64) float64 { return float64(ds[min(len(ds)-1, int(f*float64(len(ds))))]) / 1e6 }
			l.P50, l.P99, l.Max = q(0.5), q(0.99), float64(ds[len(ds)-1])/1e6
		}
		r.Propagation[p.String()] = l
	}
	calm := r.Wire[phaseCalm.String()]
	if c := r.Propagation[phaseCalm.String()]; c != nil && c.Changes > 0 {
		r.BytesPerChange = float64(calm["sync"].Bytes+calm["forward"].Bytes) / float64(c.Changes)
	}
	if r.verifyN > 0 {
		r.Verify = VerifyStats{Rounds: r.verifyN, BytesPerRoundPerNode: float64(r.vBytes) / float64(r.verifyN),
			MessagesPerRoundPerNode: float64(r.vMsgs) / float64(r.verifyN)}
	}
	r.SimSeconds = time.Duration(s.now - time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()).Seconds()
	if r.timing {
		r.Timing = &Timing{WallSeconds: time.Since(r.start).Seconds()}
		if r.verifyN > 0 {
			r.Timing.VerifyMillisPerRoundPerNode = float64(r.vCPU.Microseconds()) / 1000 / float64(r.verifyN)
		}
	}
	if r.Violations == nil {
		r.Violations = []string{}
	}
	slices.Sort(r.Checked)
	r.Checked = slices.Compact(r.Checked)
}

// JSON renders the report; equal runs render equal bytes.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

// Table renders the headline figures as a Markdown table row set.
func (r *Report) Table() string {
	var b strings.Builder
	p := func(name string) *Latency {
		if l := r.Propagation[name]; l != nil {
			return l
		}
		return &Latency{}
	}
	fmt.Fprintf(&b, "| nodes | instances | propagation p50 / p99 (calm) | p50 / p99 (faults) | bytes/change | verify bytes/round/node | bulk bytes/instance | violations |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %.1f / %.1f ms | %.0f / %.0f ms | %.0f | %.0f | %.1f | %d |\n", r.Nodes, r.Instances,
		p("calm").P50, p("calm").P99, p("faults").P50, p("faults").P99, r.BytesPerChange, r.Verify.BytesPerRoundPerNode,
		r.Bulk.BytesPerInstance, len(r.Violations))
	return b.String()
}

// wire counts traffic by kind, cumulatively, with per-phase differences.
type wire struct {
	bytes, msgs, lostN  map[string]int64
	markB, markM, markL map[string]int64
}

func newWire() wire {
	w := wire{bytes: map[string]int64{}, msgs: map[string]int64{}, lostN: map[string]int64{}}
	w.mark()
	return w
}

func (w *wire) add(kind string, _ int, n int) {
	w.bytes[kind] += int64(n)
	w.msgs[kind]++
}

func (w *wire) lost(kind string) { w.lostN[kind]++ }

func (w *wire) mark() {
	w.markB, w.markM, w.markL = clone(w.bytes), clone(w.msgs), clone(w.lostN)
}

func clone(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (w *wire) sinceMark() map[string]Traffic {
	out := map[string]Traffic{}
	for k := range w.bytes {
		if t := (Traffic{Messages: w.msgs[k] - w.markM[k], Bytes: w.bytes[k] - w.markB[k], Lost: w.lostN[k] - w.markL[k]}); t.Messages > 0 || t.Lost > 0 {
			out[k] = t
		}
	}
	for k := range w.lostN {
		if _, ok := out[k]; !ok && w.lostN[k]-w.markL[k] > 0 {
			out[k] = Traffic{Lost: w.lostN[k] - w.markL[k]}
		}
	}
	return out
}
