package raftcp

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/transport/raftstream"
)

// A Raft server id is the data directory's incarnation, not an address:
// a member whose address changes (a pod rescheduled with a new IP, a
// host renumbered) stays the same server. Addresses come from the member
// list: every node asks each listed member for its server id over the
// authenticated cluster channel (identification), and the transport
// dials the member that holds an id (ServerAddr), naming the id in the
// handshake so that a stale address is refused rather than served. The
// leader then rewrites the addresses in the configuration, one change at
// a time. All of this works without a leader, which is what lets a
// cluster whose every member moved at once elect one again.

// ident is what a member said its server id is.
type ident struct {
	id raft.ServerID
	at time.Time
}

// Identification timings.
const (
	identifyEvery   = time.Second      // a round, for members not identified yet
	identifyRefresh = 10 * time.Second // identified members are asked again this often
	identifyTimeout = time.Second
)

// learn records that member m holds server id.
func (n *Node) learn(m string, id raft.ServerID) {
	if id == "" {
		return
	}
	n.mu.Lock()
	prev, had := n.idents[m]
	n.idents[m] = ident{id: id, at: time.Now()}
	twin := m != n.cfg.Self && id == n.id
	n.mu.Unlock()
	if had && prev.id != id {
		n.log.Info("member's Raft server id changed (its data dir was replaced)", "member", m, "old", prev.id, "new", id)
	}
	if twin {
		n.twin.Store(&m)
		n.log.Error("another member reports this node's Raft server id: one data directory was copied to two members; "+
			"stop one of them and start it with an empty data dir (docs/operations.md#the-data-directory)", "member", m, "id", id)
	}
}

// memberOf returns the listed member that holds server id, if exactly one
// does (two would be a copied data dir: neither is trusted).
func (n *Node) memberOf(id raft.ServerID) (string, bool) {
	if id == n.id {
		return n.cfg.Self, true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	found := ""
	for _, m := range n.members {
		if n.idents[m].id == id {
			if found != "" {
				return "", false
			}
			found = m
		}
	}
	return found, found != ""
}

// identOf returns the server id member m reported, if any.
func (n *Node) identOf(m string) (raft.ServerID, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, ok := n.idents[m]
	return i.id, ok
}

// ServerAddr implements raft.ServerAddressProvider: the Raft address of
// the member holding id, else the configuration's address, with the id
// appended for the handshake (raftstream.IDSeparator).
func (n *Node) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if id == n.id {
		// Our own address goes into every RPC header: plain.
		return n.addr, nil
	}
	if m, ok := n.memberOf(id); ok {
		if a, err := n.raftAddrOf(m); err == nil {
			return a + raftstream.IDSeparator + raft.ServerAddress(id), nil
		}
	}
	if r := n.raftp.Load(); r != nil {
		if c := r.GetConfiguration(); c.Error() == nil {
			for _, s := range c.Configuration().Servers {
				if s.ID == id {
					return s.Address + raftstream.IDSeparator + raft.ServerAddress(id), nil
				}
			}
		}
	}
	return "", fmt.Errorf("raft server %s: no member holds it and the configuration does not list it", id)
}

// identify asks every listed member that has not told its server id (or
// not recently) for it, in parallel, until ctx ends.
func (n *Node) identify(ctx context.Context) {
	t := time.NewTicker(identifyEvery)
	defer t.Stop()
	for {
		n.identifyRound(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.identNow:
		}
	}
}

// identifyRound runs one round; all asks every member, identified or not.
func (n *Node) identifyRound(ctx context.Context, all bool) {
	now := time.Now()
	var wg sync.WaitGroup
	for _, m := range n.memberList() {
		if m == n.cfg.Self {
			continue
		}
		if i, ok := n.identOfAt(m); ok && !all && now.Sub(i.at) < identifyRefresh {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, identifyTimeout)
			defer cancel()
			resp, err := n.caller.Call(cctx, m, &clusterpb.Request{Kind: &clusterpb.Request_RaftStatus{RaftStatus: &clusterpb.RaftStatus{}}})
			if st := resp.GetRaftStatus(); err == nil && st != nil {
				n.learn(m, raft.ServerID(st.GetId()))
			}
		})
	}
	wg.Wait()
}

func (n *Node) identOfAt(m string) (ident, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, ok := n.idents[m]
	return i, ok
}

// raftAddrOf is the Raft address of a member: its host, its port + offset.
func (n *Node) raftAddrOf(member string) (raft.ServerAddress, error) {
	host, port, err := net.SplitHostPort(member)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	return raft.ServerAddress(net.JoinHostPort(host, strconv.Itoa(p+n.cfg.PortOffset))), nil
}

// setSources recomputes the source filter of the Raft listener from the
// member list: when every member is named by an IP literal, connections
// from any other address are refused before the handshake. A member named
// by a hostname (whose connections may come from any of its addresses)
// turns the filter off, and so does Config.AnySource (NAT).
func (n *Node) setSources(list []string) {
	if n.cfg.AnySource || len(list) == 0 {
		n.sources.Store(nil)
		return
	}
	set := map[netip.Addr]bool{}
	for _, m := range list {
		host, _, err := net.SplitHostPort(m)
		ip, perr := netip.ParseAddr(host)
		if err != nil || perr != nil {
			n.sources.Store(nil)
			return
		}
		set[ip.Unmap()] = true
	}
	n.sources.Store(&set)
}

func (n *Node) allowSource(ip netip.Addr) bool {
	set := n.sources.Load()
	return set == nil || (*set)[ip]
}

// placeholder is the address a server is moved to when another server
// takes over its address (two members swapped addresses): unique, never
// reachable, and never used to dial while its member is identified.
func placeholder(id raft.ServerID) raft.ServerAddress {
	return raft.ServerAddress("moved-" + hex.EncodeToString([]byte(id)) + ".invalid:1")
}

// setAddress changes a server's address, keeping its suffrage.
func (n *Node) setAddress(s raft.Server, addr raft.ServerAddress, idx uint64) error {
	if s.Suffrage == raft.Voter {
		return n.raft.AddVoter(s.ID, addr, idx, n.cfg.WriteTimeout).Error()
	}
	return n.raft.AddNonvoter(s.ID, addr, idx, n.cfg.WriteTimeout).Error()
}

// placement is where the leader finds a configured server.
type placement struct {
	// member is the listed member that holds the server ("" if none is
	// identified with it).
	member string
	// want is the address the server should have (its member's Raft
	// address), "" if unknown.
	want raft.ServerAddress
	// present: the server may be at a listed member (identified there,
	// or at an address whose member has not told its id).
	present bool
}

func (n *Node) place(s raft.Server) placement {
	if m, ok := n.memberOf(s.ID); ok {
		want, _ := n.raftAddrOf(m)
		return placement{member: m, want: want, present: true}
	}
	m, err := raftstream.MemberOfOffset(n.cfg.PortOffset)(s.Address)
	if err != nil || !n.isMember(m) {
		return placement{}
	}
	// A listed member is at the server's address: it may be that server,
	// unless it told another id.
	id, ok := n.identOf(m)
	return placement{present: !ok || id == s.ID}
}

// reconcile is the leader's membership duty, one change at a time: it
// rewrites an address that moved (making room first if another server
// still holds the new address), else removes a server no listed member
// has held for removeAfter.
func (n *Node) reconcile(c raft.Configuration, idx uint64) {
	taken := map[raft.ServerAddress]raft.Server{}
	for _, s := range c.Servers {
		taken[s.Address] = s
	}
	now := time.Now()
	var remove raft.ServerID
	for _, s := range c.Servers {
		if p := n.place(s); p.want != "" && p.want != s.Address {
			n.moveServer(s, p, taken, idx)
			return
		} else if p.present || s.ID == n.id {
			n.mu.Lock()
			delete(n.absent, s.ID)
			n.mu.Unlock()
			continue
		}
		n.mu.Lock()
		if since, ok := n.absent[s.ID]; !ok {
			n.absent[s.ID] = now
		} else if now.Sub(since) >= removeAfter && remove == "" {
			remove = s.ID
		}
		n.mu.Unlock()
	}
	if remove == "" {
		return
	}
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	if err := n.raft.RemoveServer(remove, idx, n.cfg.WriteTimeout).Error(); err != nil {
		n.log.Warn("raft server removal failed", "id", remove, "error", err)
		return
	}
	n.mu.Lock()
	delete(n.absent, remove)
	n.mu.Unlock()
	n.log.Info("raft server removed: no listed member holds it", "id", remove)
}

// moveServer gives server s its member's address p.want. If another server
// still holds that address (its member moved too, or it is an old
// incarnation), that one is parked first; it gets its own address in its
// turn.
func (n *Node) moveServer(s raft.Server, p placement, taken map[raft.ServerAddress]raft.Server, idx uint64) {
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	if other, ok := taken[p.want]; ok {
		if err := n.setAddress(other, placeholder(other.ID), idx); err != nil {
			n.log.Warn("raft address change failed", "id", other.ID, "error", err)
			return
		}
		n.log.Info("raft server's address is taken over by another member; parked", "id", other.ID, "addr", other.Address, "by", s.ID)
		return
	}
	if err := n.setAddress(s, p.want, idx); err != nil {
		n.log.Warn("raft address change failed", "id", s.ID, "error", err)
		return
	}
	n.log.Info("raft server address updated: its member moved", "id", s.ID, "from", s.Address, "to", p.want, "member", p.member)
}

// HandleJoin serves a join request on the leader: the sender must be a
// member and claim its own Raft address; its server id must not be held
// by another member. The sender's address is updated if it moved; a new
// server is added as a non-voter and promoted once it has caught up.
// Another server still configured at the sender's address is an old
// incarnation of it (removed first) or a member that moved away (parked
// until its own address is known). One change per call.
func (n *Node) HandleJoin(from string, req *clusterpb.RaftJoin) *clusterpb.RaftJoinReply {
	reply := &clusterpb.RaftJoinReply{CommitIndex: n.raft.CommitIndex()}
	id := raft.ServerID(req.GetId())
	want, err := n.raftAddrOf(from)
	switch {
	case !n.IsLeader():
		reply.Message = "not the leader; leader is " + n.Leader()
		return reply
	case err != nil || id == "" || raft.ServerAddress(req.GetAddress()) != want || !n.isMember(from):
		reply.Message = "join refused: the address must be the sender's own, and the sender a member"
		return reply
	}
	if m, ok := n.memberOf(id); ok && m != from {
		reply.Message = fmt.Sprintf("join refused: member %s holds the same Raft server id (a copied data dir?)", m)
		return reply
	}
	n.learn(from, id)
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	c, idx, err := n.configuration()
	if err != nil {
		reply.Message = err.Error()
		return reply
	}
	for _, s := range c.Servers {
		if s.ID != id && s.Address == want {
			if m, ok := n.memberOf(s.ID); ok && m != from {
				err = n.setAddress(s, placeholder(s.ID), idx)
				n.log.Info("raft server's address is taken over by a joining member; parked", "id", s.ID, "by", id)
			} else {
				err = n.raft.RemoveServer(s.ID, idx, n.cfg.WriteTimeout).Error()
				n.log.Info("raft server of an old incarnation removed", "id", s.ID, "new", id)
			}
			if err != nil {
				reply.Message = err.Error()
				return reply
			}
			reply.Message = "another server held this address; join again"
			return reply
		}
	}
	timeout := n.cfg.WriteTimeout
	for _, s := range c.Servers {
		if s.ID != id {
			continue
		}
		if s.Suffrage == raft.Voter {
			reply.Suffrage = "voter"
			if s.Address != want {
				if err := n.raft.AddVoter(id, want, idx, timeout).Error(); err != nil {
					reply.Message = err.Error()
					return reply
				}
				n.log.Info("raft server address updated on join", "id", id, "from", s.Address, "to", want)
			}
			return reply
		}
		reply.Suffrage = "nonvoter"
		if req.GetAppliedIndex()+n.cfg.CatchUpSlack >= n.raft.CommitIndex() {
			if err := n.raft.AddVoter(id, want, idx, timeout).Error(); err != nil {
				reply.Message = err.Error()
				return reply
			}
			n.log.Info("raft server promoted to voter", "id", id)
			reply.Suffrage = "voter"
		} else if s.Address != want {
			if err := n.raft.AddNonvoter(id, want, idx, timeout).Error(); err != nil {
				reply.Message = err.Error()
			}
		}
		return reply
	}
	if err := n.raft.AddNonvoter(id, want, idx, timeout).Error(); err != nil {
		reply.Message = err.Error()
		return reply
	}
	n.log.Info("raft server added as non-voter", "id", id, "addr", want)
	reply.Suffrage = "nonvoter"
	return reply
}

var _ raft.ServerAddressProvider = (*Node)(nil)
