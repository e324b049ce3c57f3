package distro

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// PeerStatus is this node's replication state towards one peer, for
// operators (the web console). Counters only grow while the process runs.
type PeerStatus struct {
	Addr string
	// QueueDepth is the keys waiting to be sent to the peer, a batch in
	// flight included.
	QueueDepth int
	// Synced counts local changes the peer acknowledged, and SyncLatency
	// sums their change-to-acknowledgement times: over an interval the mean
	// latency is ΔSyncLatency/ΔSynced. LastSync is the last acknowledgement.
	Synced      uint64
	SyncLatency time.Duration
	LastSync    time.Time
	// LastVerify is when this node last ran a verification round of its own
	// keys against the peer; VerifyErr is that round's error ("" if it
	// succeeded). LastVerifiedBy is when the peer last sent this node a
	// verification round (of its own keys, or a pull of everything).
	LastVerify     time.Time
	VerifyErr      string
	LastVerifiedBy time.Time
	// Repaired counts keys this node repaired from the peer's records
	// (divergences found by verification).
	Repaired uint64
}

// peerStats collects PeerStatus figures. Its zero value is ready; it has its
// own lock so the hot paths never wait on Engine.mu for it.
type peerStats struct {
	mu sync.Mutex
	by map[string]*PeerStatus
}

func (s *peerStats) get(addr string) *PeerStatus {
	if s.by == nil {
		s.by = make(map[string]*PeerStatus)
	}
	p := s.by[addr]
	if p == nil {
		p = &PeerStatus{Addr: addr}
		s.by[addr] = p
	}
	return p
}

func (s *peerStats) synced(addr string, tasks []*task, now time.Time) {
	if len(tasks) == 0 {
		return // a refused batch that was dropped
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.get(addr)
	for _, t := range tasks {
		p.Synced++
		p.SyncLatency += now.Sub(t.since)
	}
	p.LastSync = now
}

func (s *peerStats) verified(addr string, now time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.get(addr)
	p.LastVerify, p.VerifyErr = now, ""
	if err != nil {
		p.VerifyErr = err.Error()
	}
}

func (s *peerStats) verifiedBy(addr string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(addr).LastVerifiedBy = now
}

func (s *peerStats) repaired(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(addr).Repaired++
}

// PeerStatuses returns the replication state towards every current peer,
// sorted by address.
func (e *Engine) PeerStatuses() []PeerStatus {
	e.mu.Lock()
	out := make([]PeerStatus, 0, len(e.peers))
	for addr, p := range e.peers {
		out = append(out, PeerStatus{Addr: addr, QueueDepth: p.depth()})
	}
	e.mu.Unlock()
	e.stats.mu.Lock()
	for i := range out {
		if st := e.stats.by[out[i].Addr]; st != nil {
			depth := out[i].QueueDepth
			out[i] = *st
			out[i].QueueDepth = depth
		}
	}
	e.stats.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}
