package store

import (
	"github.com/distro-registry/distro/internal/model"
)

// The persistent part of a service: its persistent (ephemeral=false)
// instances and its settings. It is written only by the CP protocol's state
// machine (internal/raftcp), in log order, so it needs no versions: every
// node applies the same commands in the same order. Distro never sees it:
// Records, PeerRecords, Merge, Digest and Tx cover the ephemeral records
// only, so the AP and CP sides cannot overwrite each other.
//
// When a persistent and an ephemeral instance share an (ip, port, cluster)
// (the write path refuses that, but two nodes can accept the two writes at
// the same moment), the persistent one is listed and the ephemeral one hidden.

// PTx is a transaction on the persistent part of one service. It is only
// valid inside the function passed to UpdatePersistent.
type PTx struct {
	s       *Store
	svc     *service
	changed bool
	// recs are the changed instances as records (KindDeleted for a
	// removal, KindUnhealthy under a health check verdict), for
	// subscribers that follow persistent instances (health checks).
	recs        []*Record
	metaChanged bool
}

// record is the synthetic record of persistent instance in.
func (p *PTx) record(in *model.Instance, kind Kind) *Record {
	return &Record{Instance: in, Origin: "raft", Kind: kind}
}

// Key returns the service being changed.
func (p *PTx) Key() model.ServiceKey { return p.svc.key }

// Instance returns the persistent instance with identity k, or nil.
func (p *PTx) Instance(k model.InstanceKey) *model.Instance { return p.svc.cp[k] }

// Instances returns the number of persistent instances.
func (p *PTx) Instances() int { return len(p.svc.cp) }

// Settings returns the service settings, or nil when none were set.
func (p *PTx) Settings() *model.ServiceMeta { return p.svc.settings }

// Put stores in as a persistent instance, replacing the one with its
// identity. in must not be modified afterwards.
func (p *PTx) Put(in *model.Instance) {
	existed := p.svc.exists()
	k := in.Key()
	if p.svc.cp == nil {
		p.svc.cp = make(map[model.InstanceKey]*model.Instance)
	}
	if _, ok := p.svc.cp[k]; !ok {
		p.s.instances.Add(1)
	}
	p.svc.cp[k] = in
	// A client write of the instance lifts a health check verdict, as a
	// newer version outranks it on the Distro side.
	delete(p.svc.cpDown, k)
	p.svc.cpEmptiedAt = 0
	p.changed = true
	p.recs = append(p.recs, p.record(in, KindLive))
	p.s.countService(existed, p.svc.exists())
}

// Delete removes the persistent instance with identity k and reports
// whether there was one.
func (p *PTx) Delete(k model.InstanceKey) bool {
	if _, ok := p.svc.cp[k]; !ok {
		return false
	}
	existed := p.svc.exists()
	p.recs = append(p.recs, p.record(p.svc.cp[k], KindDeleted))
	delete(p.svc.cp, k)
	delete(p.svc.cpDown, k)
	p.s.instances.Add(-1)
	p.changed = true
	p.noteEmptied()
	p.s.countService(existed, p.svc.exists())
	return true
}

// SetSettings replaces the service settings; nil removes them.
func (p *PTx) SetSettings(m *model.ServiceMeta) {
	existed := p.svc.exists()
	p.svc.settings = m
	p.changed = true
	p.metaChanged = true
	p.noteEmptied()
	p.s.countService(existed, p.svc.exists())
}

// Down reports whether a health check verdict marks instance k unhealthy.
func (p *PTx) Down(k model.InstanceKey) bool { return p.svc.cpDown[k] }

// SetDown records (or lifts) a health check verdict on instance k and
// reports whether anything changed.
func (p *PTx) SetDown(k model.InstanceKey, down bool) bool {
	in := p.svc.cp[k]
	if in == nil || p.svc.cpDown[k] == down {
		return false
	}
	if down {
		if p.svc.cpDown == nil {
			p.svc.cpDown = make(map[model.InstanceKey]bool)
		}
		p.svc.cpDown[k] = true
		p.recs = append(p.recs, p.record(in, KindUnhealthy))
	} else {
		delete(p.svc.cpDown, k)
		p.recs = append(p.recs, p.record(in, KindLive))
	}
	p.changed = true
	return true
}

// noteEmptied remembers when the persistent part became empty, so that the
// service entry (and with it a list view whose lastRefTime keeps growing)
// is kept as long as a tombstone would be.
func (p *PTx) noteEmptied() {
	if len(p.svc.cp) == 0 && p.svc.settings == nil {
		p.svc.cpEmptiedAt = p.s.wallMs()
	}
}

// Exists reports whether the service exists on this node: it has a present
// instance of either kind, or settings.
func (p *PTx) Exists() bool { return p.svc.exists() }

// EphemeralLive returns the number of present ephemeral instances. It is
// this node's AP view: never use it to decide a state-machine result.
func (p *PTx) EphemeralLive() int { return p.svc.live }

// UpdatePersistent runs fn as a transaction on the persistent part of
// service k. As with Update, fn must check everything before its first
// change. Subscribers get an Event with Persistent and Remote set (Distro
// does not replicate it); its Changed holds synthetic records of the
// changed instances (stamp 0, origin "raft") and MetaChanged is set when
// the settings changed.
func (s *Store) UpdatePersistent(k model.ServiceKey, fn func(*PTx) error) error {
	var err error
	s.inService(k, func(_ *shard, svc *service) (Event, bool) {
		p := &PTx{s: s, svc: svc}
		err = fn(p)
		if !p.changed {
			return Event{}, false
		}
		ev := s.commit(svc, p.recs, p.metaChanged, true)
		ev.Persistent = true
		return ev, true
	})
	return err
}

// PersistentService is the persistent part of one service, as a snapshot
// of the CP state sees it.
type PersistentService struct {
	Key       model.ServiceKey
	Instances []*model.Instance
	Settings  *model.ServiceMeta
	// Down lists the instances a health check verdict marks unhealthy.
	Down []model.InstanceKey
}

// RangePersistent calls fn with the persistent part of every service that
// has one, shard by shard, without holding a lock while fn runs. The
// instances are shared and must not be modified. It is consistent only if
// no persistent write runs meanwhile (the CP state machine calls it from its
// own goroutine).
func (s *Store) RangePersistent(fn func(PersistentService) bool) {
	var buf []PersistentService
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.RLock()
		for k, svc := range sh.services {
			if len(svc.cp) == 0 && svc.settings == nil {
				continue
			}
			ps := PersistentService{Key: k, Settings: svc.settings, Instances: make([]*model.Instance, 0, len(svc.cp))}
			for _, in := range svc.cp {
				ps.Instances = append(ps.Instances, in)
			}
			for k := range svc.cpDown {
				ps.Down = append(ps.Down, k)
			}
			buf = append(buf, ps)
		}
		sh.mu.RUnlock()
		for _, ps := range buf {
			if !fn(ps) {
				return
			}
		}
	}
}

// ClearPersistent removes the persistent part of every service (a state
// machine restore starts with it) and returns the keys it changed.
func (s *Store) ClearPersistent() []model.ServiceKey {
	var keys []model.ServiceKey
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, svc := range sh.services {
			if len(svc.cp) > 0 || svc.settings != nil {
				keys = append(keys, k)
			}
		}
		sh.mu.RUnlock()
	}
	for _, k := range keys {
		_ = s.UpdatePersistent(k, func(p *PTx) error {
			for ik := range p.svc.cp {
				p.Delete(ik)
			}
			if p.svc.settings != nil {
				p.SetSettings(nil)
			}
			return nil
		})
	}
	return keys
}

// PersistentInstance returns the persistent instance k of service svc on
// this node, or nil.
func (s *Store) PersistentInstance(svc model.ServiceKey, k model.InstanceKey) *model.Instance {
	sh := s.shardOf(svc)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if e := sh.services[svc]; e != nil {
		return e.cp[k]
	}
	return nil
}

// EphemeralInstance returns the present ephemeral record k of service svc
// on this node, or nil.
func (s *Store) EphemeralInstance(svc model.ServiceKey, k model.InstanceKey) *Record {
	sh := s.shardOf(svc)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if e := sh.services[svc]; e != nil {
		if r := e.recs[k]; r != nil && r.rec.Alive() {
			return r.rec
		}
	}
	return nil
}

// PersistentRecords returns the persistent instances of service k as
// synthetic records (KindUnhealthy under a health check verdict), only
// those of keys when keys is non-nil, and the settings as a MetaRecord
// (nil when none). Health checks read persistent instances this way,
// whichever side holds them.
func (s *Store) PersistentRecords(k model.ServiceKey, keys []model.InstanceKey) ([]*Record, *MetaRecord) {
	sh := s.shardOf(k)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	svc := sh.services[k]
	if svc == nil {
		return nil, nil
	}
	var mr *MetaRecord
	if svc.settings != nil {
		mr = &MetaRecord{Meta: *svc.settings, Origin: "raft"}
	}
	rec := func(ik model.InstanceKey, in *model.Instance) *Record {
		kind := KindLive
		if svc.cpDown[ik] {
			kind = KindUnhealthy
		}
		return &Record{Instance: in, Origin: "raft", Kind: kind}
	}
	var out []*Record
	if keys == nil {
		for ik, in := range svc.cp {
			out = append(out, rec(ik, in))
		}
	} else {
		for _, ik := range keys {
			if in := svc.cp[ik]; in != nil {
				out = append(out, rec(ik, in))
			}
		}
	}
	return out, mr
}
