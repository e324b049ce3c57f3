package distro

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Confirmation of heartbeat timeouts (docs/protocol.md §8). Before the
// owner's timeout of an instance becomes a replicated version, every
// eligible peer is asked whether it handled a real beat of the instance
// within the timeout; one that did refutes it. The answers count only if
// they come, with this node, from a majority of the configured members:
// a node cut off from the majority cannot know what the others heard.

var _ registry.Confirmer = (*Engine)(nil)

// Quorum returns the number of members (this node included) whose answers
// make a majority of the configured members in view v.
func Quorum(v *View) int {
	n := len(v.Members)
	if v.StateOf(v.Self) == "" {
		n++
	}
	return n/2 + 1
}

// Confirm implements registry.Confirmer.
func (e *Engine) Confirm(ctx context.Context, sus []registry.Suspect) ([]time.Duration, time.Time) {
	ages := make([]time.Duration, len(sus))
	for i := range ages {
		ages[i] = -1
	}
	v := e.view.Load()
	need := Quorum(v)
	var peers []string
	for _, a := range v.Eligible() {
		if a != e.cfg.Self {
			peers = append(peers, a)
		}
	}
	if len(peers) == 0 {
		if need > 1 {
			e.m.confirmRounds.WithLabelValues("no-quorum").Inc()
			return ages, time.Time{}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		return ages, e.majoritySince // a cluster of one
	}
	// Without a majority in view the peers are asked all the same: one of
	// them may hold evidence, and the others hide the timeout too
	// (handleConfirm), so that a minority shows it on every node.
	var reqs []*clusterpb.Request
	for start := 0; start < len(sus); start += e.cfg.KeyDigestBatch {
		batch := sus[start:min(start+e.cfg.KeyDigestBatch, len(sus))]
		cr := &clusterpb.ConfirmRequest{Suspects: make([]*clusterpb.Suspect, len(batch))}
		for i, s := range batch {
			ik := s.Ref.Instance
			cr.Suspects[i] = &clusterpb.Suspect{Key: keyToPB(s.Ref.Service), Ip: ik.IP, Port: int32(ik.Port), Cluster: ik.Cluster,
				WindowMs: uint64(s.Window.Milliseconds()), Stamp: uint64(s.Stamp)}
			if !e.majorityFor(s.Window) {
				// Only a timeout this node cannot confirm asks the peers
				// to hide it too.
				cr.Suspects[i].Kind = uint32(s.Kind)
			}
		}
		reqs = append(reqs, &clusterpb.Request{Kind: &clusterpb.Request_Confirm{Confirm: cr}})
	}
	var mu sync.Mutex
	answered := 1
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			got := make([]int64, 0, len(sus))
			for _, req := range reqs {
				resp, err := e.tr.Call(ctx, p, req)
				r := resp.GetConfirm()
				if err == nil && (r == nil || len(r.GetEvidenceAgeMs()) != len(req.GetConfirm().GetSuspects())) {
					err = errors.New("confirm reply does not match the request")
				}
				if err != nil {
					e.log.Debug("timeout confirmation: peer did not answer", "peer", p, "error", err)
					return
				}
				got = append(got, r.GetEvidenceAgeMs()...)
			}
			mu.Lock()
			defer mu.Unlock()
			answered++
			for i, a := range got {
				if d := time.Duration(a) * time.Millisecond; a >= 0 && (ages[i] < 0 || d < ages[i]) {
					ages[i] = d
				}
			}
		})
	}
	wg.Wait()
	for _, a := range ages {
		if a >= 0 {
			e.m.confirmRefuted.Inc()
		}
	}
	if answered < need {
		e.m.confirmRounds.WithLabelValues("no-quorum").Inc()
		return ages, time.Time{}
	}
	e.m.confirmRounds.WithLabelValues("quorum").Inc()
	e.mu.Lock()
	since := e.majoritySince
	e.mu.Unlock()
	return ages, since
}

// majorityFor reports whether this node has heard a majority of the
// members without interruption for at least window.
func (e *Engine) majorityFor(window time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.majoritySince.IsZero() && !e.majoritySince.After(e.clk.Now().Add(-window))
}

// noteMajority tracks since when this node's view has held a majority of
// the members without interruption. Caller holds e.mu.
func (e *Engine) noteMajority(v *View, now time.Time) {
	switch has := len(v.Eligible()) >= Quorum(v); {
	case has && e.majoritySince.IsZero():
		e.majoritySince = now
	case !has:
		e.majoritySince = time.Time{}
	}
}

// relayTimeout bounds the round a member asks on behalf of a peer: well
// inside the asker's own registry.ConfirmTimeout (500 ms).
const relayTimeout = 250 * time.Millisecond

// handleConfirm answers a peer's confirmation round from this node's
// evidence of real heartbeats. A suspect of a service whose owner in this
// node's view is a third member, reachable, is asked of that owner: the
// asker's view misses it (a one-way cut: the asker cannot reach the owner
// that the clients' beats go to), and only the owner and the nodes that
// applied beats themselves hold evidence of what went to it. Without the
// relay the asker and this node would make a majority without evidence and
// remove live instances (chaos F3 with default timings).
func (e *Engine) handleConfirm(ctx context.Context, from string, c *clusterpb.ConfirmRequest) (*clusterpb.Response, error) {
	if len(c.GetSuspects()) > e.cfg.KeyDigestBatch {
		return nil, e.reject("confirm", errors.New("too many suspects in one confirmation"))
	}
	reply := &clusterpb.ConfirmReply{EvidenceAgeMs: make([]int64, len(c.GetSuspects()))}
	refs := make([]health.Ref, len(c.GetSuspects()))
	windows := make([]time.Duration, len(c.GetSuspects()))
	relay := map[string][]int{}
	v := e.view.Load()
	for i, s := range c.GetSuspects() {
		ref, err := e.suspectRef(s)
		if err != nil {
			return nil, e.reject("confirm", err)
		}
		refs[i] = ref
		windows[i] = time.Duration(min(s.GetWindowMs(), uint64(24*time.Hour/time.Millisecond))) * time.Millisecond
		reply.EvidenceAgeMs[i] = -1
		if age, ok := e.local.Evidence(ref, windows[i]); ok {
			reply.EvidenceAgeMs[i] = age.Milliseconds()
			continue
		}
		if c.GetRelayed() {
			continue
		}
		if o := e.Owner(ref.Service); o != e.cfg.Self && o != from && v.StateOf(o) == StateUp {
			relay[o] = append(relay[o], i)
		}
	}
	if c.GetRelayed() {
		return &clusterpb.Response{Kind: &clusterpb.Response_Confirm{Confirm: reply}}, nil
	}
	e.relayConfirm(ctx, c, relay, reply)
	for i, s := range c.GetSuspects() {
		if reply.EvidenceAgeMs[i] >= 0 {
			continue
		}
		if kind := store.Kind(s.GetKind()); (kind == store.KindUnhealthy || kind == store.KindExpired) && !e.majorityFor(windows[i]) {
			// Neither of us can confirm it: this node hides it too, so that
			// every node on this side of a partition shows what its owner
			// timed out, and settles it the same way (registry.Local).
			e.local.Adopt(refs[i], kind, hlc.Timestamp(s.GetStamp()))
		}
	}
	return &clusterpb.Response{Kind: &clusterpb.Response_Confirm{Confirm: reply}}, nil
}

// relayConfirm asks each owner in relay (owner → indexes into c's
// suspects) about its suspects, in parallel, and records the evidence they
// hold in reply. An owner that does not answer in time adds nothing.
func (e *Engine) relayConfirm(ctx context.Context, c *clusterpb.ConfirmRequest, relay map[string][]int, reply *clusterpb.ConfirmReply) {
	if len(relay) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for owner, idx := range relay {
		req := &clusterpb.ConfirmRequest{Relayed: true, Suspects: make([]*clusterpb.Suspect, len(idx))}
		for j, i := range idx {
			s := c.GetSuspects()[i]
			// Without the kind: a relayed round never asks to hide.
			req.Suspects[j] = &clusterpb.Suspect{Key: s.GetKey(), Ip: s.GetIp(), Port: s.GetPort(), Cluster: s.GetCluster(),
				WindowMs: s.GetWindowMs(), Stamp: s.GetStamp()}
		}
		wg.Go(func() {
			resp, err := e.tr.Call(ctx, owner, &clusterpb.Request{Kind: &clusterpb.Request_Confirm{Confirm: req}})
			ages := resp.GetConfirm().GetEvidenceAgeMs()
			if err != nil || len(ages) != len(idx) {
				e.log.Debug("timeout confirmation: relay to the owner failed", "owner", owner, "error", err)
				return
			}
			e.m.confirmRelayed.Add(float64(len(idx)))
			mu.Lock()
			defer mu.Unlock()
			for j, i := range idx {
				if a := ages[j]; a >= 0 && (reply.EvidenceAgeMs[i] < 0 || a < reply.EvidenceAgeMs[i]) {
					reply.EvidenceAgeMs[i] = a
				}
			}
		})
	}
	wg.Wait()
}

// suspectsToPB renders this node's unconfirmed timeouts for a digest reply.
func suspectsToPB(sus []registry.Suspect) []*clusterpb.Suspect {
	out := make([]*clusterpb.Suspect, len(sus))
	for i, s := range sus {
		ik := s.Ref.Instance
		out[i] = &clusterpb.Suspect{Key: keyToPB(s.Ref.Service), Ip: ik.IP, Port: int32(ik.Port), Cluster: ik.Cluster,
			WindowMs: uint64(s.Window.Milliseconds()), Kind: uint32(s.Kind), Stamp: uint64(s.Stamp)}
	}
	return out
}

// takeSuspects hands a peer's unconfirmed timeouts (from a digest reply)
// to the write path, which confirms them with the members as its own.
func (e *Engine) takeSuspects(from string, sus []*clusterpb.Suspect) {
	if len(sus) > e.cfg.KeyDigestBatch {
		e.reject("digest-reply", fmt.Errorf("%d suspects from %s", len(sus), from))
		return
	}
	for _, s := range sus {
		ref, err := e.suspectRef(s)
		if err != nil {
			e.reject("digest-reply", err)
			return
		}
		kind := store.Kind(s.GetKind())
		if kind != store.KindUnhealthy && kind != store.KindExpired {
			continue
		}
		e.local.Suspect(registry.Suspect{Ref: ref, Kind: kind, Window: time.Duration(min(s.GetWindowMs(), uint64(24*time.Hour/time.Millisecond))) * time.Millisecond,
			Stamp: hlc.Timestamp(s.GetStamp())})
	}
}

// suspectRef validates a suspect's identity.
func (e *Engine) suspectRef(s *clusterpb.Suspect) (health.Ref, error) {
	k, err := keyFromPB(s.GetKey(), e.cfg.Limits)
	if err != nil {
		return health.Ref{}, err
	}
	ip, err := model.ValidateIP(s.GetIp())
	if err != nil {
		return health.Ref{}, err
	}
	if err := model.ValidatePort(int(s.GetPort())); err != nil {
		return health.Ref{}, err
	}
	cl, err := e.cfg.Limits.ValidateCluster(s.GetCluster())
	if err != nil {
		return health.Ref{}, err
	}
	return health.Ref{Service: k, Instance: model.InstanceKey{IP: ip, Port: int(s.GetPort()), Cluster: cl}}, nil
}
