package distro

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// Verification (anti-entropy). Every VerifyInterval each ready node sends
// every eligible peer one compact digest of the keys it owns: Buckets sums
// of per-key digests. The peer answers with the buckets that differ; the
// owner then sends key digests for those buckets only; the peer fetches the
// owner's full records for the keys that differ, merges them, and pushes
// back what it holds that is newer. Steady state costs one small message
// per peer per interval, whatever the number of keys or clients.
//
// Verification never deletes because of a difference, with one exception:
// a record the owner lacks entirely, older than the tombstone retention
// (so the owner would still hold its tombstone if it had been deleted
// recently), is dropped locally, but only when both nodes have the same
// view of ownership and both have finished their startup load (Nacos
// #10323, #7734).

func bucketOf(k model.ServiceKey, n int) uint32 { return uint32(store.HashKey(k) % uint64(n)) }

// ownedDigests returns, for the keys owner owns under eligible (every key
// when owner is ""), the bucket sums and (when want is non-nil) the key
// digests of the wanted buckets.
func (e *Engine) ownedDigests(owner string, eligible []string, want map[uint32]bool) ([]uint64, map[model.ServiceKey]uint64) {
	sums := make([]uint64, e.cfg.Buckets)
	var keys map[model.ServiceKey]uint64
	if want != nil {
		keys = make(map[model.ServiceKey]uint64)
	}
	e.store.RangeKeys(func(k model.ServiceKey, d uint64) bool {
		if owner != "" && Owner(k, eligible) != owner {
			return true
		}
		b := bucketOf(k, e.cfg.Buckets)
		sums[b] += d
		if want != nil && want[b] {
			keys[k] = d
		}
		return true
	})
	return sums, keys
}

func (e *Engine) verifyLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-e.readyCh:
	}
	t := e.clk.NewTicker(e.cfg.VerifyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			e.VerifyOnce(ctx)
		case addr := <-e.rejoined:
			e.rejoinRound(ctx, addr)
		}
	}
}

// rejoin asks for a rejoin round with a peer that has just become eligible
// again: run by the verify loop, or after the current call in stepped mode.
func (e *Engine) rejoin(addr string) {
	if e.cfg.NoRejoinRounds {
		return
	}
	if e.step != nil {
		e.step.later(func() { e.rejoinRound(context.Background(), addr) })
		return
	}
	select {
	case e.rejoined <- addr:
	default: // the periodic round catches up
	}
}

// rejoinRound runs a verification round in both directions with a peer
// that was unreachable and is back: writes made on either side meanwhile
// were not synced (DOWN peers get no tasks), so they are compared now
// instead of at the next tick, which could be a whole interval away. At
// most once per interval per peer, so a flapping link costs no more than
// the periodic rounds.
func (e *Engine) rejoinRound(ctx context.Context, addr string) {
	now := e.clk.Now()
	e.mu.Lock()
	if last, ok := e.rejoinAt[addr]; ok && now.Sub(last) < e.cfg.VerifyInterval {
		e.mu.Unlock()
		return
	}
	e.rejoinAt[addr] = now
	e.mu.Unlock()
	e.verifyWith(ctx, addr)
}

// verifyWith runs a verification round in both directions with one peer:
// this node's owned keys to it, and a pull of every key from it.
func (e *Engine) verifyWith(ctx context.Context, addr string) {
	v := e.view.Load()
	if !slices.Contains(v.Eligible(), addr) {
		return
	}
	sums, _ := e.ownedDigests(e.cfg.Self, v.Eligible(), nil)
	err := e.verifyPeer(ctx, v, addr, sums)
	if err != nil {
		e.log.Debug("verification with a returning peer failed", "peer", addr, "error", err)
	}
	e.stats.verified(addr, e.clk.Now(), err)
	if err := e.pullPeer(ctx, addr); err != nil {
		e.log.Debug("pull from a returning peer failed", "peer", addr, "error", err)
	}
}

// VerifyOnce runs one verification round against every eligible peer.
func (e *Engine) VerifyOnce(ctx context.Context) {
	v := e.view.Load()
	sums, _ := e.ownedDigests(e.cfg.Self, v.Eligible(), nil)
	var wg sync.WaitGroup
	for _, addr := range v.Eligible() {
		if addr == e.cfg.Self {
			continue
		}
		one := func() {
			err := e.verifyPeer(ctx, v, addr, sums)
			if err != nil {
				e.log.Debug("verification with peer failed", "peer", addr, "error", err)
			}
			e.stats.verified(addr, e.clk.Now(), err)
		}
		if e.step != nil {
			one()
		} else {
			wg.Go(one)
		}
	}
	wg.Wait()
	// One pull round per interval, with the peers in turn: compare every
	// key, and fetch what differs. It is the only direction that works when
	// this node can reach a peer but the peer cannot reach it (a one-way
	// partition), and it costs one more small message per interval.
	peers := v.Eligible()
	if len(peers) > 1 {
		e.pullTurn++
		addr := peers[e.pullTurn%len(peers)]
		if addr == e.cfg.Self {
			addr = peers[(e.pullTurn+1)%len(peers)]
		}
		if err := e.pullPeer(ctx, addr); err != nil {
			e.log.Debug("pull verification with peer failed", "peer", addr, "error", err)
		}
	}
}

// pullPeer runs a pull round: digests over every key this node holds, the
// peer names the keys that differ, and this node fetches and merges them,
// pushing back its younger records. A pull never drops anything.
func (e *Engine) pullPeer(ctx context.Context, addr string) error {
	sums, _ := e.ownedDigests("", nil, nil)
	cctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	resp, err := e.tr.Call(cctx, addr, &clusterpb.Request{Kind: &clusterpb.Request_Digest{Digest: &clusterpb.DigestRequest{
		AllKeys: true, BucketCount: uint32(len(sums)), Buckets: sums}}})
	cancel()
	if err != nil {
		return err
	}
	e.takeSuspects(addr, resp.GetDigest().GetSuspects())
	diff := resp.GetDigest().GetDiffering()
	if len(diff) == 0 {
		return nil
	}
	want := make(map[uint32]bool, len(diff))
	for _, b := range diff {
		want[b] = true
	}
	_, keys := e.ownedDigests("", nil, want)
	var differing []model.ServiceKey
	err = e.sendKeyDigests(ctx, addr, &clusterpb.KeyDigestRequest{AllKeys: true}, keys, want, func(r *clusterpb.KeyDigestReply) error {
		for _, pk := range r.GetWant() {
			k, err := keyFromPB(pk, e.cfg.Limits)
			if err != nil {
				return e.reject("key-digest-reply", err)
			}
			differing = append(differing, k)
		}
		return nil
	})
	if err != nil || len(differing) == 0 {
		return err
	}
	e.m.digestMismatch.Add(float64(len(differing)))
	return e.repair(ctx, addr, differing, repairPolicy{})
}

// sendKeyDigests sends keys in batches, the last one naming the buckets.
func (e *Engine) sendKeyDigests(ctx context.Context, addr string, proto *clusterpb.KeyDigestRequest, keys map[model.ServiceKey]uint64,
	want map[uint32]bool, onReply func(*clusterpb.KeyDigestReply) error) error {
	buckets := slices.Sorted(func(yield func(uint32) bool) {
		for b := range want {
			if !yield(b) {
				return
			}
		}
	})
	// Sorted, so that which keys share a message does not depend on map
	// order (the simulator's runs must repeat exactly).
	sorted := slices.SortedFunc(maps.Keys(keys), compareKeys)
	list := make([]*clusterpb.KeyDigest, 0, len(keys))
	for _, k := range sorted {
		list = append(list, &clusterpb.KeyDigest{Key: keyToPB(k), Digest: keys[k]})
	}
	for start := 0; ; start += e.cfg.KeyDigestBatch {
		end := min(start+e.cfg.KeyDigestBatch, len(list))
		req := &clusterpb.KeyDigestRequest{ViewId: proto.ViewId, Ready: proto.Ready, UptimeMs: proto.UptimeMs,
			AllKeys: proto.AllKeys, Keys: list[start:end]}
		if end == len(list) {
			// The peer can tell "absent here" from "in another batch" only
			// once it knows the round is complete.
			req.Buckets = buckets
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
		resp, err := e.tr.Call(cctx, addr, &clusterpb.Request{Kind: &clusterpb.Request_KeyDigest{KeyDigest: req}})
		cancel()
		if err != nil {
			return err
		}
		if onReply != nil {
			if err := onReply(resp.GetKeyDigest()); err != nil {
				return err
			}
		}
		if end == len(list) {
			return nil
		}
	}
}

func (e *Engine) verifyPeer(ctx context.Context, v *View, addr string, sums []uint64) error {
	cctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	resp, err := e.tr.Call(cctx, addr, &clusterpb.Request{Kind: &clusterpb.Request_Digest{Digest: &clusterpb.DigestRequest{
		ViewId: v.ID(), Ready: true, BucketCount: uint32(len(sums)), Buckets: sums}}})
	if err != nil {
		return err
	}
	e.takeSuspects(addr, resp.GetDigest().GetSuspects())
	diff := resp.GetDigest().GetDiffering()
	if len(diff) == 0 {
		return nil
	}
	want := make(map[uint32]bool, len(diff))
	for _, b := range diff {
		want[b] = true
	}
	_, keys := e.ownedDigests(e.cfg.Self, v.Eligible(), want)
	// Uptime 0 means "not young": only a node that started first (no
	// snapshot) can vouch that it collected no tombstone yet.
	var uptime uint64
	if e.firstNode.Load() {
		uptime = max(1, uint64(e.clk.Now().Sub(e.started).Milliseconds()))
	}
	return e.sendKeyDigests(ctx, addr, &clusterpb.KeyDigestRequest{ViewId: v.ID(), Ready: true, UptimeMs: uptime}, keys, want, nil)
}

// handleDigest compares the owner's bucket sums with this node's copy of
// the keys it believes the sender owns.
func (e *Engine) handleDigest(from string, d *clusterpb.DigestRequest) (*clusterpb.Response, error) {
	if int(d.GetBucketCount()) != e.cfg.Buckets || len(d.GetBuckets()) != e.cfg.Buckets {
		return nil, e.reject("digest", fmt.Errorf("digest has %d/%d buckets; this node uses %d", d.GetBucketCount(), len(d.GetBuckets()), e.cfg.Buckets))
	}
	e.stats.verifiedBy(from, e.clk.Now())
	owner := from
	if d.GetAllKeys() {
		owner = ""
	}
	sums, _ := e.ownedDigests(owner, e.view.Load().Eligible(), nil)
	var diff []uint32
	for i, s := range sums {
		if s != d.GetBuckets()[i] {
			diff = append(diff, uint32(i))
		}
	}
	// Timeouts this node could not confirm travel back to the asker, which
	// hears this node and may hear a majority (docs/protocol.md §8.1).
	sus := suspectsToPB(e.local.Suspects(e.cfg.KeyDigestBatch))
	return &clusterpb.Response{Kind: &clusterpb.Response_Digest{Digest: &clusterpb.DigestReply{Differing: diff, Suspects: sus}}}, nil
}

// handleKeyDigest finds the keys whose digests differ and starts a repair
// from the sender in the background.
func (e *Engine) handleKeyDigest(from string, kd *clusterpb.KeyDigestRequest) (*clusterpb.Response, error) {
	if len(kd.GetKeys()) > e.cfg.KeyDigestBatch || len(kd.GetBuckets()) > e.cfg.Buckets {
		return nil, e.reject("key-digest", fmt.Errorf("key digest too large"))
	}
	remote := make(map[model.ServiceKey]uint64, len(kd.GetKeys()))
	for _, x := range kd.GetKeys() {
		k, err := keyFromPB(x.GetKey(), e.cfg.Limits)
		if err != nil {
			return nil, e.reject("key-digest", err)
		}
		remote[k] = x.GetDigest()
	}
	var differing []model.ServiceKey
	for k, d := range remote {
		if e.store.Digest(k) != d {
			differing = append(differing, k)
		}
	}
	v := e.view.Load()
	if len(kd.GetBuckets()) > 0 {
		// Last message of the round: keys in these buckets that the sender
		// owns in our view but did not list are absent at the owner.
		want := make(map[uint32]bool)
		for _, b := range kd.GetBuckets() {
			if int(b) >= e.cfg.Buckets {
				return nil, e.reject("key-digest", fmt.Errorf("bucket %d out of range", b))
			}
			want[b] = true
		}
		e.store.RangeKeys(func(k model.ServiceKey, d uint64) bool {
			if d != 0 && want[bucketOf(k, e.cfg.Buckets)] && (kd.GetAllKeys() || Owner(k, v.Eligible()) == from) {
				if _, listed := remote[k]; !listed && !e.inRound(from, k) {
					differing = append(differing, k)
				}
			}
			return true
		})
		e.endRound(from)
	} else {
		e.noteRound(from, remote)
	}
	slices.SortFunc(differing, compareKeys) // repairs in a repeatable order
	if len(differing) > 0 && !kd.GetAllKeys() {
		e.m.digestMismatch.Add(float64(len(differing)))
		pol := repairPolicy{
			agree:      kd.GetViewId() == v.ID() && kd.GetReady() && e.ready.Load(),
			ownerYoung: kd.GetUptimeMs() > 0 && time.Duration(kd.GetUptimeMs())*time.Millisecond < e.cfg.TombstoneRetention,
		}
		e.startRepair(from, differing, pol)
	}
	reply := &clusterpb.KeyDigestReply{}
	for _, k := range differing {
		reply.Want = append(reply.Want, keyToPB(k))
	}
	return &clusterpb.Response{Kind: &clusterpb.Response_KeyDigest{KeyDigest: reply}}, nil
}

// rounds remembers keys listed in earlier messages of a multi-message
// key-digest round, per sender.
type rounds struct {
	mu   sync.Mutex
	seen map[string]map[model.ServiceKey]bool
	busy map[string]bool
}

func (e *Engine) noteRound(from string, keys map[model.ServiceKey]uint64) {
	e.rounds.mu.Lock()
	defer e.rounds.mu.Unlock()
	if e.rounds.seen == nil {
		e.rounds.seen = make(map[string]map[model.ServiceKey]bool)
	}
	s := e.rounds.seen[from]
	if s == nil {
		s = make(map[model.ServiceKey]bool)
		e.rounds.seen[from] = s
	}
	for k := range keys {
		s[k] = true
	}
}

func (e *Engine) inRound(from string, k model.ServiceKey) bool {
	e.rounds.mu.Lock()
	defer e.rounds.mu.Unlock()
	return e.rounds.seen[from][k]
}

func (e *Engine) endRound(from string) {
	e.rounds.mu.Lock()
	defer e.rounds.mu.Unlock()
	delete(e.rounds.seen, from)
}

// startRepair runs one repair per sender at a time; a round that finds one
// in flight is skipped (the next round retries).
// repairPolicy says what a repair may do with records the owner lacks.
type repairPolicy struct {
	// agree: both nodes have the same view and both are ready, so a record
	// the owner lacks entirely and that is older than the tombstone
	// retention was deleted there long ago and may be dropped.
	agree bool
	// ownerYoung: the owner has held data for less than the tombstone
	// retention, so it cannot have collected a tombstone: whatever it lacks
	// it never deleted, and is pushed to it.
	ownerYoung bool
}

func (e *Engine) startRepair(from string, keys []model.ServiceKey, pol repairPolicy) {
	e.rounds.mu.Lock()
	if e.rounds.busy == nil {
		e.rounds.busy = make(map[string]bool)
	}
	if e.rounds.busy[from] {
		e.rounds.mu.Unlock()
		return
	}
	e.rounds.busy[from] = true
	e.rounds.mu.Unlock()
	e.mu.Lock()
	ctx := e.runCtx
	e.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	run := func() {
		defer func() {
			e.rounds.mu.Lock()
			delete(e.rounds.busy, from)
			e.rounds.mu.Unlock()
		}()
		if err := e.repair(ctx, from, keys, pol); err != nil {
			e.log.Debug("repair from peer failed", "peer", from, "keys", len(keys), "error", err)
		}
	}
	if e.step != nil {
		e.step.later(run)
		return
	}
	go run()
}

// repair fetches the owner's full records for keys, merges them, pushes
// back what this node has that is newer, and drops what the owner deleted
// long ago (only when views agree and both nodes are ready).
func (e *Engine) repair(ctx context.Context, from string, keys []model.ServiceKey, pol repairPolicy) error {
	// Two horizons, each with a margin for clock differences in the safe
	// direction: a record younger than push is one the owner would still
	// hold a tombstone for, had it deleted it, so it is pushed back; a
	// record older than forget is one the owner would no longer hold a
	// tombstone for. Between the two nothing is done (pull rounds and
	// heartbeats settle it).
	now := e.clk.Now()
	h := horizons{
		push:   now.Add(-e.cfg.TombstoneRetention + e.cfg.MaxClockAhead).UnixMilli(),
		forget: now.Add(-e.cfg.TombstoneRetention - e.cfg.MaxClockAhead).UnixMilli(),
	}
	for start := 0; start < len(keys); start += e.cfg.KeyDigestBatch {
		batch := keys[start:min(start+e.cfg.KeyDigestBatch, len(keys))]
		req := &clusterpb.FetchRequest{}
		for _, k := range batch {
			req.Keys = append(req.Keys, keyToPB(k))
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
		resp, err := e.tr.Call(cctx, from, &clusterpb.Request{Kind: &clusterpb.Request_Fetch{Fetch: req}})
		cancel()
		if err != nil {
			return err
		}
		entries, err := decodeKeyRecords(resp.GetFetch().GetEntries(), e.cfg.Limits)
		if err != nil {
			return e.reject("fetch-reply", err)
		}
		theirs := make(map[model.ServiceKey]*decoded, len(entries))
		for i := range entries {
			d := &entries[i]
			if prev := theirs[d.key]; prev != nil {
				prev.recs = append(prev.recs, d.recs...)
				continue
			}
			theirs[d.key] = d
		}
		for _, k := range batch {
			e.reconcile(from, k, theirs[k], pol, h)
		}
	}
	return nil
}

// horizons are the stamp bounds (wall ms) of reconcile's push and forget rules.
type horizons struct{ push, forget int64 }

// reconcile merges the owner's state of k and settles what remains different.
func (e *Engine) reconcile(from string, k model.ServiceKey, theirs *decoded, pol repairPolicy, h horizons) {
	remote := make(map[model.InstanceKey]*store.Record)
	var remoteMeta *store.MetaRecord
	if theirs != nil {
		for _, r := range theirs.recs {
			if cur := remote[r.Key()]; cur == nil || r.Compare(cur) > 0 {
				remote[r.Key()] = r
			}
		}
		remoteMeta = theirs.meta
		e.store.Merge(k, theirs.recs, theirs.meta, e.cfg.MaxClockAhead)
		e.m.repairedKeys.Inc()
		e.stats.repaired(from)
	}
	mine, myMeta := e.store.PeerRecords(k, nil)
	var push, forget []model.InstanceKey
	for _, r := range mine {
		rr := remote[r.Key()]
		switch {
		case rr != nil && r.Stamp > rr.Stamp:
			// A strictly newer version. (A kind-only difference is a
			// timeout annotation; if it is a local-only one, from a lease
			// or a forget, it must not spread.)
			push = append(push, r.Key())
		case rr != nil:
		case r.Stamp.WallMillis() > h.push || pol.ownerYoung:
			// The owner would still hold a tombstone had it deleted
			// this: it is simply missing there.
			push = append(push, r.Key())
		case !r.Instance.Ephemeral && r.Alive():
			// Persistent instances are never dropped because of an
			// absence: no heartbeat would bring a wrongly dropped one
			// back. Push it (see docs/protocol.md §7 for the limit this
			// implies after partitions longer than the retention).
			push = append(push, r.Key())
		case pol.agree && r.Alive() && r.Stamp.WallMillis() < h.forget:
			// A heartbeat-kept or connection-held instance: if it is in
			// fact alive, its client's next beat or its connection's node
			// brings it back.
			forget = append(forget, r.Key())
		}
	}
	pushMeta := myMeta != nil && (remoteMeta == nil || myMeta.Compare(remoteMeta) > 0)
	if len(push) > 0 || pushMeta {
		e.enqueueRepair(from, k, push, pushMeta)
	}
	if len(forget) > 0 {
		n := e.store.Forget(k, forget)
		e.m.forgotten.Add(float64(n))
		e.log.Info("dropped records deleted long ago at their owner", "service", k.String(), "owner", from, "records", n)
	}
}

// leaseLoop drops instances held by client connections of nodes that have
// been unreachable for longer than the lease (Nacos keeps them 3 minutes:
// #9935).
func (e *Engine) leaseLoop(ctx context.Context) {
	every := max(e.cfg.ConnLease/6, 100*time.Millisecond)
	t := e.clk.NewTicker(every)
	defer t.Stop()
	swept := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		now := e.clk.Now()
		var dead []string
		e.mu.Lock()
		for addr, since := range e.unreachableSince {
			if now.Sub(since) >= e.cfg.ConnLease && !swept[addr] {
				dead = append(dead, addr)
			}
		}
		for addr := range swept {
			if _, still := e.unreachableSince[addr]; !still {
				delete(swept, addr)
			}
		}
		e.mu.Unlock()
		if len(dead) == 0 {
			continue
		}
		n := e.store.ForgetConnNodes(dead)
		for _, a := range dead {
			swept[a] = true
		}
		if n > 0 {
			e.m.leaseExpired.Add(float64(n))
			e.log.Info("dropped instances of connections held by unreachable nodes", "nodes", dead, "instances", n)
		}
	}
}
