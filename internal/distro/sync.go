package distro

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/clusterpb"
)

// peer is the sending side towards one member: its task queue and the one
// goroutine that drains it over the peer's connection.
type peer struct {
	addr string

	mu      sync.Mutex
	q       *taskQueue
	wake    chan struct{}
	cancel  context.CancelFunc
	backoff time.Duration
	// inflight is the number of keys in the batch being sent.
	inflight int
}

func newPeer(addr string, limit int) *peer {
	return &peer{addr: addr, q: newTaskQueue(limit), wake: make(chan struct{}, 1)}
}

func (p *peer) enqueue(t *task, m *Metrics) {
	p.mu.Lock()
	ok := p.q.add(t)
	p.mu.Unlock()
	if !ok {
		m.queueDropped.WithLabelValues(p.addr).Inc()
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) depth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.q.len() + p.inflight
}

func (p *peer) stop() {
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	p.q.clear()
	p.mu.Unlock()
}

// startPeer launches p's send loop. Caller holds e.mu.
func (e *Engine) startPeer(p *peer) {
	ctx, cancel := context.WithCancel(e.runCtx)
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	go e.sendLoop(ctx, p)
}

// sendLoop sends due tasks in batches, one batch in flight at a time. On
// failure the batch goes back to the queue (merging with newer changes) and
// the peer backs off exponentially up to RetryMax.
func (e *Engine) sendLoop(ctx context.Context, p *peer) {
	for {
		p.mu.Lock()
		next, ok := p.q.next()
		p.mu.Unlock()
		now := e.clk.Now()
		if !ok || next.After(now) {
			var timer <-chan time.Time
			if ok {
				timer = e.clk.After(next.Sub(now))
			}
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
				continue
			case <-timer:
			}
		}
		e.sendDue(ctx, p)
	}
}

// sendDue sends one batch of p's due tasks, if any, and settles the
// outcome: on failure the batch goes back to the queue with backoff. It
// returns the send error.
func (e *Engine) sendDue(ctx context.Context, p *peer) error {
	p.mu.Lock()
	tasks := p.q.popDue(e.clk.Now(), e.cfg.BatchKeys)
	p.inflight = len(tasks)
	p.mu.Unlock()
	if len(tasks) == 0 {
		return nil
	}
	err := e.sendTasks(ctx, p.addr, tasks)
	now := e.clk.Now()
	p.mu.Lock()
	p.inflight = 0
	if err != nil && status.Code(err) == codes.InvalidArgument {
		// The peer refused the content (e.g. different limits during a
		// rolling change): resending it would stall every key batched
		// with it forever. Drop it; verification reports the difference.
		e.m.queueDropped.WithLabelValues(p.addr).Add(float64(len(tasks)))
		e.log.Warn("peer refused a sync batch as invalid; dropped", "peer", p.addr, "keys", len(tasks), "error", err)
		err = nil
		tasks = nil
	}
	if err != nil {
		if p.backoff == 0 {
			p.backoff = e.cfg.RetryMin
		} else if p.backoff *= 2; p.backoff > e.cfg.RetryMax {
			p.backoff = e.cfg.RetryMax
		}
		for _, t := range tasks {
			t.deadline = now.Add(p.backoff)
			p.q.add(t)
		}
	} else {
		p.backoff = 0
	}
	p.mu.Unlock()
	if err != nil {
		e.m.syncRetries.WithLabelValues(p.addr).Inc()
		e.log.Debug("sync to peer failed; will retry", "peer", p.addr, "keys", len(tasks), "error", err)
		return err
	}
	for _, t := range tasks {
		e.m.syncLatency.Observe(now.Sub(t.since).Seconds())
	}
	e.stats.synced(p.addr, tasks, now)
	return nil
}

// sendTasks reads the current records of every task's key and sends them in
// size-bounded messages.
func (e *Engine) sendTasks(ctx context.Context, addr string, tasks []*task) error {
	send := func(c *clusterpb.SnapshotChunk) error {
		if len(c.Entries) == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
		defer cancel()
		req := &clusterpb.Request{Kind: &clusterpb.Request_Sync{Sync: &clusterpb.SyncBatch{Entries: c.Entries}}}
		_, err := e.tr.Call(cctx, addr, req)
		if err == nil {
			e.m.syncMessages.Inc()
			e.m.syncRecords.Add(float64(countRecords(c.Entries)))
			e.m.syncBytes.Add(float64(proto.Size(req)))
		}
		return err
	}
	ch := clusterpb.NewChunker(clusterpb.ChunkBudget(uint32(e.cfg.SnapshotChunkBytes)), send)
	for _, t := range tasks {
		recs, meta := e.store.PeerRecords(t.key, t.instanceKeys())
		if !t.meta && !t.all {
			meta = nil
		}
		if len(recs) == 0 && meta == nil {
			continue
		}
		if err := ch.Add(keyRecordsToPB(t.key, recs, meta)); err != nil {
			return err
		}
	}
	return ch.Close()
}

func countRecords(entries []*clusterpb.KeyRecords) int {
	n := 0
	for _, e := range entries {
		n += len(e.Records)
	}
	return n
}
