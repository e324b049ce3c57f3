package distro

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
)

// Startup load. A starting node streams a full snapshot, in chunks, from
// one ready peer, trying peers in turn with a pause between rounds. Chunks
// are merged, so writes this node accepted meanwhile are kept (Nacos
// #15857). Until the load is done the node expires nothing, sends no
// verification and serves no snapshot. If no ready peer answers within
// StartupTimeout, the node starts as the first of its cluster.

func (e *Engine) loadLoop(ctx context.Context) {
	start := e.clk.Now()
	for attempt := 0; !e.ready.Load(); attempt++ {
		if e.loadAttempt(ctx, start, attempt) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-e.clk.After(e.cfg.LoadRetry):
		case <-e.viewCh:
		}
	}
}

// loadAttempt makes one round of the startup load: every peer in turn until
// one serves a snapshot, then the first-node rules. It reports whether the
// node is ready.
func (e *Engine) loadAttempt(ctx context.Context, start time.Time, attempt int) bool {
	v := e.view.Load()
	peers := v.Peers()
	if len(peers) == 0 {
		e.firstNode.Store(true)
		e.markReady("no peers: first node")
		return true
	}
	for _, m := range e.loadOrder(peers, attempt) {
		n, err := e.loadFrom(ctx, m)
		if err == nil {
			e.markReady(fmt.Sprintf("snapshot of %d records loaded from %s", n, m))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		e.log.Info("snapshot load failed; trying next peer", "peer", m, "error", err)
	}
	if e.wholeClusterStarting(peers) {
		// Every peer answered and none is ready: the whole cluster is
		// starting, so no node holds data to load.
		e.firstNode.Store(true)
		e.markReady("every peer is starting too: first node")
		return true
	}
	if e.clk.Now().Sub(start) >= e.cfg.StartupTimeout && !e.anyPeerReady() {
		e.firstNode.Store(true)
		e.markReady("no ready peer answered within the startup timeout: first node")
		return true
	}
	msg := fmt.Sprintf("loading snapshot (attempt %d, no ready peer yet)", attempt+1)
	e.readyMsg.Store(&msg)
	return false
}

// wholeClusterStarting reports whether every configured peer is UP and has
// told us it is not ready.
func (e *Engine) wholeClusterStarting(peers []Member) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range peers {
		ready, known := e.peerReady[m.Addr]
		if m.State != StateUp || !known || ready {
			return false
		}
	}
	return true
}

// anyPeerReady reports whether some peer said it is ready in its last probe:
// then this node keeps trying to load rather than start as the first node.
func (e *Engine) anyPeerReady() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.peerReady {
		if r {
			return true
		}
	}
	return false
}

// loadOrder lists peers to try: UP peers that reported ready first, then
// other UP and SUSPICIOUS peers, rotated by attempt so that retries spread.
func (e *Engine) loadOrder(peers []Member, attempt int) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var first, rest []string
	for _, m := range peers {
		switch {
		case m.State == StateDown:
		case m.State == StateUp && e.peerReady[m.Addr]:
			first = append(first, m.Addr)
		default:
			rest = append(rest, m.Addr)
		}
	}
	out := append(first, rest...)
	if len(out) > 1 {
		r := attempt % len(out)
		out = append(out[r:], out[:r]...)
	}
	return out
}

func (e *Engine) loadFrom(ctx context.Context, peer string) (int, error) {
	total := 0
	var lastSeq uint64
	gotLast := false
	err := e.tr.Snapshot(ctx, peer, &clusterpb.SnapshotRequest{MaxChunkBytes: uint32(e.cfg.SnapshotChunkBytes)}, func(c *clusterpb.SnapshotChunk) error {
		if c.GetSeq() != lastSeq {
			return fmt.Errorf("snapshot chunk %d out of order (want %d)", c.GetSeq(), lastSeq)
		}
		lastSeq++
		entries, err := decodeKeyRecords(c.GetEntries(), e.cfg.Limits)
		if err != nil {
			return e.reject("snapshot", err)
		}
		for _, d := range entries {
			e.store.Merge(d.key, d.recs, d.meta, e.cfg.MaxClockAhead)
			total += len(d.recs)
		}
		e.m.snapshotRecords.Add(float64(countRecords(c.GetEntries())))
		gotLast = c.GetLast()
		return nil
	})
	if err == nil && !gotLast {
		err = errors.New("snapshot ended without its last chunk")
	}
	return total, err
}

// Probe implements the member health prober over the cluster connection:
// a peer is healthy when it answers and names itself as the member we
// probed (a mismatch means a misconfigured identity, hazard H13).
func (e *Engine) Probe(ctx context.Context, peer string) error {
	ready, _ := e.Ready()
	sent := e.clk.Now()
	resp, err := e.tr.Call(ctx, peer, &clusterpb.Request{Kind: &clusterpb.Request_Probe{Probe: &clusterpb.Probe{
		ViewId: e.view.Load().ID(), Ready: ready}}})
	if err != nil {
		return err
	}
	received := e.clk.Now()
	pr := resp.GetProbe()
	if pr == nil {
		return errors.New("probe answered without a probe reply")
	}
	if pr.GetNode() != peer {
		return fmt.Errorf("member %s answers as %q: check its --advertise / cluster.conf entry", peer, pr.GetNode())
	}
	e.notePeerReady(peer, pr.GetReady())
	e.noteClock(peer, sent, received, pr)
	return nil
}

func (e *Engine) notePeerReady(peer string, ready bool) {
	e.mu.Lock()
	if _, ok := e.peers[peer]; ok {
		e.peerReady[peer] = ready
	}
	e.mu.Unlock()
}
