package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// tracker follows every client write from its acknowledgement until every
// node holds it, and keeps the expected final state of every instance.
type tracker struct {
	s       *Sim
	reg     []bool  // expected registered, by si*PerService+ij
	version []uint8 // last version written, by instance
	open    map[instRef]*change
}

// instRef names an instance by its service name and IP (unique per
// instance in the client model).
type instRef struct{ svc, ip string }

type change struct {
	si, ij  int
	target  *store.Record
	at      int64
	phase   phase
	reached []bool
	have    int
}

func (t *tracker) init(s *Sim) {
	t.s = s
	n := s.cfg.Services * s.cfg.PerService
	t.reg = make([]bool, n)
	t.version = make([]uint8, n)
	t.open = make(map[instRef]*change)
}

func (t *tracker) idx(si, ij int) int { return si*t.s.cfg.PerService + ij }

// bulk records the initial registrations.
func (t *tracker) bulk() {
	for i := range t.reg {
		t.reg[i] = true
	}
}

func (t *tracker) registered(si, ij int) bool { return t.reg[t.idx(si, ij)] }

func (t *tracker) busy(si, ij int) bool {
	_, ok := t.open[instRef{serviceKey(si).Name, instanceKey(ij).IP}]
	return ok
}

func (t *tracker) nextVersion(si, ij int) int {
	i := t.idx(si, ij)
	t.version[i]++
	return int(t.version[i])
}

// issued records an acknowledged write: its version is the newest record of
// the instance on any node right after the write.
func (t *tracker) issued(si, ij int, register bool, entry *node) {
	s := t.s
	t.reg[t.idx(si, ij)] = register
	k, ik := serviceKey(si), instanceKey(ij)
	var target *store.Record
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		if recs, _ := n.st.Records(k, []model.InstanceKey{ik}); len(recs) == 1 && (target == nil || recs[0].Compare(target) > 0) {
			target = recs[0]
		}
	}
	if target == nil {
		s.rep.violate("I5", "an acknowledged write is on no node")
		return
	}
	c := &change{si: si, ij: ij, target: target, at: s.now, phase: s.rep.phase, reached: make([]bool, len(s.nodes))}
	for _, n := range s.nodes {
		if !n.alive {
			c.reached[n.idx] = true
			c.have++
			continue
		}
		if recs, _ := n.st.Records(k, []model.InstanceKey{ik}); reaches(recs, target) {
			c.reached[n.idx] = true
			c.have++
		}
	}
	if c.have == len(c.reached) {
		s.rep.propagated(c, 0)
		return
	}
	t.open[instRef{k.Name, ik.IP}] = c
}

// reaches reports whether a node holding recs (its record of the instance,
// if any) shows what target shows: target's version or a newer one, or for
// a removal, no live copy at all. Tombstone versions are not visible: an
// older tombstone lists the instance as absent just as well (and
// verification, which compares visible state, leaves it alone).
func reaches(recs []*store.Record, target *store.Record) bool {
	if len(recs) == 1 && recs[0].Compare(target) >= 0 {
		return true
	}
	return !target.Alive() && (len(recs) == 0 || !recs[0].Alive())
}

// watch follows n's store: each merged or written record that reaches an
// open change's version counts for that change.
func (t *tracker) watch(n *node) {
	inc := n.inc
	n.st.OnChange(func(ev store.Event) {
		if len(t.open) == 0 || n.inc != inc {
			return
		}
		for _, r := range ev.Changed {
			ref := instRef{ev.Key.Name, r.Instance.IP}
			c := t.open[ref]
			if c != nil && reaches([]*store.Record{r}, c.target) {
				t.reach(ref, c, n)
			}
		}
	})
}

// crashed excuses n from every open change: a crashed node loses its data
// and reloads it with its snapshot. A change that no live node holds yet
// was lost with n (it was acknowledged within the sync delay before the
// crash): its client writes it again at its next heartbeat, as Nacos
// clients do when a beat finds their instance unknown. crashed returns
// those changes, ordered.
func (t *tracker) crashed(n *node) []*change {
	var lost []*change
	for ref, c := range t.open {
		// Held means some other live node has the write itself (not just
		// an equivalent absence).
		held := false
		k, ik := serviceKey(c.si), instanceKey(c.ij)
		for _, m := range t.s.nodes {
			if m != n && m.alive {
				if recs, _ := m.st.Records(k, []model.InstanceKey{ik}); len(recs) == 1 && recs[0].Compare(c.target) >= 0 {
					held = true
				}
			}
		}
		if !held {
			delete(t.open, ref)
			lost = append(lost, c)
			continue
		}
		t.reach(ref, c, n)
	}
	slices.SortFunc(lost, func(a, b *change) int { return cmp.Or(cmp.Compare(a.si, b.si), cmp.Compare(a.ij, b.ij)) })
	return lost
}

// reach counts n for c (once) and closes c when every node has it.
func (t *tracker) reach(ref instRef, c *change, n *node) {
	if n.idx >= len(c.reached) || c.reached[n.idx] {
		return
	}
	c.reached[n.idx] = true
	c.have++
	if c.have == len(c.reached) {
		delete(t.open, ref)
		t.s.rep.propagated(c, t.s.now-c.at)
	}
}

func (t *tracker) outstanding() int { return len(t.open) }

// example describes one open change (the smallest, for a stable report):
// what was written, and what each node that lacks it holds instead.
func (t *tracker) example() string {
	var refs []instRef
	for r := range t.open {
		refs = append(refs, r)
	}
	if len(refs) == 0 {
		return ""
	}
	slices.SortFunc(refs, func(a, b instRef) int { return strings.Compare(a.svc+"/"+a.ip, b.svc+"/"+b.ip) })
	c := t.open[refs[0]]
	k, ik := serviceKey(c.si), instanceKey(c.ij)
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s %s %s written in %s at +%v:", k.Name, ik.IP, c.target.Kind, c.target.Stamp, c.phase,
		time.Duration(c.at-t.s.rep.startNs))
	for _, n := range t.s.nodes {
		if n.idx >= len(c.reached) || c.reached[n.idx] {
			continue
		}
		have := "nothing"
		if recs, _ := n.st.Records(k, []model.InstanceKey{ik}); len(recs) == 1 {
			have = recs[0].Kind.String() + " " + recs[0].Stamp.String()
		}
		fmt.Fprintf(&b, " %s has %s;", n.addr, have)
	}
	return b.String()
}
