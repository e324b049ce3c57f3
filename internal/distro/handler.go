package distro

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
)

var _ Handler = (*Engine)(nil)

// HandleCall serves one authenticated peer request. Every payload is
// validated before anything is applied: one bad entry rejects the message.
func (e *Engine) HandleCall(ctx context.Context, from string, req *clusterpb.Request) (*clusterpb.Response, error) {
	switch k := req.GetKind().(type) {
	case *clusterpb.Request_Sync:
		return e.handleSync(from, k.Sync)
	case *clusterpb.Request_Probe:
		if k.Probe != nil {
			e.notePeerReady(from, k.Probe.GetReady())
		}
		ready, _ := e.Ready()
		return &clusterpb.Response{Kind: &clusterpb.Response_Probe{Probe: &clusterpb.ProbeReply{
			Node: e.cfg.Self, Ready: ready, ViewId: e.view.Load().ID(),
			MonoMicros: e.mono(e.clk.Now()).Microseconds(), ClockId: e.clockID}}}, nil
	case *clusterpb.Request_Digest:
		return e.handleDigest(from, k.Digest)
	case *clusterpb.Request_KeyDigest:
		return e.handleKeyDigest(from, k.KeyDigest)
	case *clusterpb.Request_Fetch:
		return e.handleFetch(k.Fetch)
	case *clusterpb.Request_Forward:
		return e.handleForward(ctx, from, k.Forward)
	case *clusterpb.Request_Confirm:
		return e.handleConfirm(ctx, from, k.Confirm)
	}
	e.m.rejected.WithLabelValues("unknown").Inc()
	return nil, status.Error(codes.InvalidArgument, "unknown request kind")
}

func (e *Engine) reject(kind string, err error) error {
	e.m.rejected.WithLabelValues(kind).Inc()
	e.log.Warn("rejected peer message", "kind", kind, "error", err)
	return status.Error(codes.InvalidArgument, err.Error())
}

func ack() *clusterpb.Response {
	return &clusterpb.Response{Kind: &clusterpb.Response_Ack{Ack: &clusterpb.Ack{}}}
}

func (e *Engine) handleSync(_ string, b *clusterpb.SyncBatch) (*clusterpb.Response, error) {
	entries, err := decodeKeyRecords(b.GetEntries(), e.cfg.Limits)
	if err != nil {
		return nil, e.reject("sync", err)
	}
	for _, d := range entries {
		e.store.Merge(d.key, d.recs, d.meta, e.cfg.MaxClockAhead)
	}
	return ack(), nil
}

func (e *Engine) handleFetch(f *clusterpb.FetchRequest) (*clusterpb.Response, error) {
	if len(f.GetKeys()) > e.cfg.KeyDigestBatch {
		return nil, e.reject("fetch", errors.New("too many keys in one fetch"))
	}
	reply := &clusterpb.FetchReply{}
	for _, pk := range f.GetKeys() {
		k, err := keyFromPB(pk, e.cfg.Limits)
		if err != nil {
			return nil, e.reject("fetch", err)
		}
		recs, meta := e.store.PeerRecords(k, nil)
		reply.Entries = append(reply.Entries, keyRecordsToPB(k, recs, meta))
	}
	return &clusterpb.Response{Kind: &clusterpb.Response_Fetch{Fetch: reply}}, nil
}

// handleForward applies a write handed on by a peer. It is applied here
// whatever this node's view says: a handed-on write is never handed on
// again, so two nodes that disagree about the owner cannot bounce it.
func (e *Engine) handleForward(ctx context.Context, from string, f *clusterpb.ForwardRequest) (*clusterpb.Response, error) {
	op, err := opFromPB(f.GetOp(), e.cfg.Limits)
	if err != nil {
		return nil, e.reject("forward", err)
	}
	if !e.ready.Load() {
		// A node that has not loaded its data must not be the authority
		// for a write: it could stamp a deletion of a record it has not
		// received yet below that record's version (chaos F12, with a
		// slow clock). The sender applies the write itself.
		e.m.forwardLate.Inc()
		return &clusterpb.Response{Kind: &clusterpb.Response_Forward{Forward: &clusterpb.ForwardReply{
			Status: http.StatusServiceUnavailable, Message: "node is loading its data; apply the write locally"}}}, nil
	}
	// The sender stops waiting after ForwardTimeout and applies the write
	// itself; a copy that arrives later (it sat in a connection through a
	// partition) must not be applied after newer writes. The age is read in
	// the sender's own clock (peerclock.go); a write the sender may have
	// given up on is refused, and the sender applies it.
	if age, tol, ok := e.forwardAge(from, f.GetOp(), e.clk.Now()); ok && age+tol >= e.cfg.ForwardTimeout {
		e.m.forwardLate.Inc()
		return &clusterpb.Response{Kind: &clusterpb.Response_Forward{Forward: &clusterpb.ForwardReply{
			Status: http.StatusRequestTimeout, Message: "handed-on write arrived after the sender's timeout"}}}, nil
	}
	e.m.forwardServed.Inc()
	res, err := e.local.Apply(ctx, op)
	fr := &clusterpb.ForwardReply{Status: http.StatusOK, BeatCode: int32(res.BeatCode), ClientBeatInterval: res.ClientBeatInterval}
	if err != nil {
		fr.Status = int32(registry.StatusOf(err))
		fr.Message = err.Error()
	}
	return &clusterpb.Response{Kind: &clusterpb.Response_Forward{Forward: fr}}, nil
}

// HandleSnapshot streams every key this node holds, tombstones included, in
// bounded chunks. A node that has not finished its own load refuses: it
// must not hand its empty or partial state to another starting node (Nacos
// #8436).
func (e *Engine) HandleSnapshot(ctx context.Context, _ string, req *clusterpb.SnapshotRequest, send func(*clusterpb.SnapshotChunk) error) error {
	if !e.ready.Load() {
		return status.Error(codes.FailedPrecondition, errNotReady.Error())
	}
	ch := clusterpb.NewChunker(clusterpb.ChunkBudget(req.GetMaxChunkBytes()), send)
	var err error
	e.store.RangeKeys(func(k model.ServiceKey, _ uint64) bool {
		if err = ctx.Err(); err != nil {
			return false
		}
		recs, meta := e.store.PeerRecords(k, nil)
		if len(recs) == 0 && meta == nil {
			return true
		}
		err = ch.Add(keyRecordsToPB(k, recs, meta))
		return err == nil
	})
	if err != nil {
		return err
	}
	return ch.Close()
}
