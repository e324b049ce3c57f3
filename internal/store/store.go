package store

import (
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
)

const shardCount = 64

// Event describes one committed change to one service.
type Event struct {
	Key      model.ServiceKey
	Revision uint64
	// Changed holds the new version of every instance record that changed.
	Changed []*Record
	// MetaChanged is set when the service's settings changed.
	MetaChanged bool
	// Remote is set when the change was merged from a peer rather than made
	// by a local write.
	Remote bool
	// Renewal is set when every change was a Renew: a refutation or a
	// relayed beat, not a registration.
	Renewal bool
	// Persistent is set when the persistent part changed (see
	// UpdatePersistent); Changed is then empty and Remote set.
	Persistent bool
}

// Store is the registry's in-memory data. It is safe for concurrent use.
type Store struct {
	self   string
	clock  *hlc.Clock
	wallMs func() int64
	shards [shardCount]shard
	hooks  []func(Event)

	revision  atomic.Uint64
	services  atomic.Int64
	instances atomic.Int64
}

type shard struct {
	mu       sync.RWMutex
	services map[model.ServiceKey]*service
	// tx is the transaction of the Update holding mu (reused: a write
	// allocates no Tx).
	tx Tx
}

type service struct {
	key         model.ServiceKey
	recs        map[model.InstanceKey]*entry
	meta        *MetaRecord
	metaDeadAt  int64
	revision    uint64
	lastRefTime int64
	digest      uint64
	live        int
	view        atomic.Pointer[View]

	// cp and settings are the persistent part (persistent.go), written
	// only by the CP state machine; cpEmptiedAt is when it became empty.
	cp          map[model.InstanceKey]*model.Instance
	settings    *model.ServiceMeta
	cpEmptiedAt int64
	// cpDown marks persistent instances a health check found unhealthy
	// (shown unhealthy whatever their own flag says).
	cpDown map[model.InstanceKey]bool
}

// entry is a stored record plus local bookkeeping that is never replicated.
type entry struct {
	rec *Record
	// deadAt is the local wall time (ms) when the record became a tombstone;
	// tombstones are collected a retention period after it.
	deadAt int64
	// localOnly marks a record this node expired on its own (Forget): it
	// is not served to peers, so that one node's local judgement (a lease,
	// a verification forget) does not spread as if it were the owner's.
	localOnly bool
}

// New returns an empty store whose local writes are stamped by clock and
// attributed to origin self.
func New(self string, clock *hlc.Clock) *Store {
	s := &Store{self: self, clock: clock, wallMs: func() int64 { return time.Now().UnixMilli() }}
	for i := range s.shards {
		s.shards[i].services = make(map[model.ServiceKey]*service)
	}
	return s
}

// Self returns the origin id stamped on local writes.
func (s *Store) Self() string { return s.self }

// Clock returns the store's hybrid logical clock.
func (s *Store) Clock() *hlc.Clock { return s.clock }

// OnChange registers a subscriber. Call it before the store is shared.
func (s *Store) OnChange(fn func(Event)) { s.hooks = append(s.hooks, fn) }

// shardSeed hashes keys to shards. Shards are local to the process, so a
// seeded (hardware-accelerated) hash does; HashKey is for what nodes must
// agree on.
var shardSeed = maphash.MakeSeed()

func (s *Store) shardOf(k model.ServiceKey) *shard {
	return &s.shards[maphash.Comparable(shardSeed, k)%shardCount]
}

func (s *Store) emit(ev Event) {
	for _, h := range s.hooks {
		h(ev)
	}
}

// Tx is a read-modify-write transaction on one service. It is only valid
// inside the function passed to Update.
type Tx struct {
	s           *Store
	svc         *service
	changed     []*Record
	metaChanged bool
	renewals    int
}

// Key returns the service being changed.
func (tx *Tx) Key() model.ServiceKey { return tx.svc.key }

// Get returns the current record for k, tombstones included, or nil.
func (tx *Tx) Get(k model.InstanceKey) *Record {
	if e := tx.svc.recs[k]; e != nil {
		return e.rec
	}
	return nil
}

// Range calls fn for every record, tombstones included, until fn returns false.
func (tx *Tx) Range(fn func(*Record) bool) {
	for _, e := range tx.svc.recs {
		if !fn(e.rec) {
			return
		}
	}
}

// LiveCount returns the number of present ephemeral instances.
func (tx *Tx) LiveCount() int { return tx.svc.live }

// Exists reports whether the service exists: a present instance of either
// kind, or settings.
func (tx *Tx) Exists() bool { return tx.svc.exists() }

// Meta returns the service settings record, or nil.
func (tx *Tx) Meta() *MetaRecord { return tx.svc.meta }

// Put stores a new local version of an instance with a fresh stamp. The
// stamp is always above the stamp of the version it replaces, even when
// that version came from a node whose clock runs ahead of ours: a local
// write must win over what the writer saw.
func (tx *Tx) Put(in *model.Instance, kind Kind, conn, connNode string) *Record {
	stamp := tx.s.clock.Now()
	if cur := tx.svc.recs[in.Key()]; cur != nil && stamp <= cur.rec.Stamp+1 {
		// +2: a renewal of the same version takes +1, and a client write
		// must outrank it whatever the origins.
		stamp = cur.rec.Stamp + 2
	}
	r := &Record{Instance: in, Stamp: stamp, Origin: tx.s.self, Kind: kind, Conn: conn, ConnNode: connNode}
	tx.s.set(tx.svc, r)
	tx.changed = append(tx.changed, r)
	return r
}

// Renew restores the current version of k as live with a stamp just above
// it, not a fresh one from the clock: a renewal outranks the timeout it
// answers, but never a client write made after the version it renews
// (such as a deregistration on another node). It returns nil if k is absent
// or deleted.
func (tx *Tx) Renew(k model.InstanceKey) *Record {
	e := tx.svc.recs[k]
	if e == nil || e.rec.Kind == KindDeleted {
		return nil
	}
	r := *e.rec
	r.Stamp, r.Origin, r.Kind = e.rec.Stamp+1, tx.s.self, KindLive
	tx.s.set(tx.svc, &r)
	tx.changed = append(tx.changed, &r)
	tx.renewals++
	return &r
}

// Annotate raises the kind of the current version without a new stamp. It is
// how heartbeat timeouts mark records (see package doc); it does nothing if
// the record is absent or already at or above kind.
func (tx *Tx) Annotate(k model.InstanceKey, kind Kind) *Record {
	e := tx.svc.recs[k]
	if e == nil || e.rec.Kind >= kind {
		return nil
	}
	r := *e.rec
	r.Kind = kind
	tx.s.set(tx.svc, &r)
	tx.changed = append(tx.changed, &r)
	return &r
}

// PutMeta stores a new version of the service settings.
func (tx *Tx) PutMeta(m model.ServiceMeta, deleted bool) {
	stamp := tx.s.clock.Now()
	if cur := tx.svc.meta; cur != nil && stamp <= cur.Stamp {
		stamp = cur.Stamp + 1
	}
	tx.s.setMeta(tx.svc, &MetaRecord{Meta: m, Stamp: stamp, Origin: tx.s.self, Deleted: deleted})
	tx.metaChanged = true
}

// Update runs fn as a transaction on service k, creating the service entry if
// needed. If fn returns an error, nothing it did is undone; so fn must check
// everything before its first Put. Subscribers are notified after commit.
func (s *Store) Update(k model.ServiceKey, fn func(tx *Tx) error) error {
	var err error
	s.inService(k, func(sh *shard, svc *service) (Event, bool) {
		// The shard's transaction is reused (no allocation per write);
		// it is cleared after use, since the event keeps its changed slice.
		tx := &sh.tx
		*tx = Tx{s: s, svc: svc}
		defer func() { *tx = Tx{} }()
		err = fn(tx)
		if len(tx.changed) == 0 && !tx.metaChanged {
			return Event{}, false
		}
		ev := s.commit(svc, tx.changed, tx.metaChanged, false)
		ev.Renewal = tx.renewals == len(tx.changed) && !tx.metaChanged
		return ev, true
	})
	return err
}

// inService runs fn on service k under its shard lock, the entry created
// for the call if k has none, and emits the event fn returns once the
// lock is released. If fn reports no change, an entry created for the
// call is dropped again. Update and UpdatePersistent share it.
func (s *Store) inService(k model.ServiceKey, fn func(sh *shard, svc *service) (Event, bool)) {
	sh := s.shardOf(k)
	sh.mu.Lock()
	svc := sh.services[k]
	created := false
	if svc == nil {
		// The key is interned: the caller's may share a request's memory.
		svc = &service{key: k.Interned(), recs: make(map[model.InstanceKey]*entry)}
		sh.services[svc.key] = svc
		created = true
	}
	ev, changed := fn(sh, svc)
	if !changed && created {
		delete(sh.services, k)
	}
	sh.mu.Unlock()
	if changed {
		s.emit(ev)
	}
}

// commit bumps the revision and lastRefTime and drops the cached view.
// Caller holds the shard lock.
func (s *Store) commit(svc *service, changed []*Record, metaChanged, remote bool) Event {
	svc.revision = s.revision.Add(1)
	now := s.wallMs()
	if now <= svc.lastRefTime {
		now = svc.lastRefTime + 1
	}
	svc.lastRefTime = now
	svc.view.Store(nil)
	return Event{Key: svc.key, Revision: svc.revision, Changed: changed, MetaChanged: metaChanged, Remote: remote}
}

func (svc *service) exists() bool {
	return svc.live > 0 || len(svc.cp) > 0 || svc.settings != nil || (svc.meta != nil && !svc.meta.Deleted)
}

// set installs r as the current version, maintaining counters and digest.
func (s *Store) set(svc *service, r *Record) {
	existed := svc.exists()
	k := r.Key()
	if old := svc.recs[k]; old != nil {
		if old.rec.Alive() {
			svc.live--
			s.instances.Add(-1)
			svc.digest -= old.rec.hash()
		}
	}
	e := &entry{rec: r}
	if r.Alive() {
		svc.live++
		s.instances.Add(1)
		svc.digest += r.hash()
	} else {
		e.deadAt = s.wallMs()
	}
	svc.recs[k] = e
	s.countService(existed, svc.exists())
}

func (s *Store) setMeta(svc *service, m *MetaRecord) {
	existed := svc.exists()
	if svc.meta != nil && !svc.meta.Deleted {
		svc.digest -= svc.meta.hash()
	}
	svc.meta = m
	if !m.Deleted {
		svc.digest += m.hash()
		svc.metaDeadAt = 0
	} else {
		svc.metaDeadAt = s.wallMs()
	}
	s.countService(existed, svc.exists())
}

func (s *Store) countService(before, after bool) {
	switch {
	case !before && after:
		s.services.Add(1)
	case before && !after:
		s.services.Add(-1)
	}
}

// Merge applies records and settings received from a peer. Each one replaces
// the local version only if it orders after it, so Merge is commutative,
// associative and idempotent. It returns the number of records that changed.
func (s *Store) Merge(k model.ServiceKey, recs []*Record, meta *MetaRecord, maxAhead time.Duration) int {
	sh := s.shardOf(k)
	sh.mu.Lock()
	svc := sh.services[k]
	created := false
	if svc == nil {
		// The key is interned: the caller's may share a request's memory.
		svc = &service{key: k.Interned(), recs: make(map[model.InstanceKey]*entry)}
		sh.services[svc.key] = svc
		created = true
	}
	var changed []*Record
	for _, r := range recs {
		s.clock.Observe(r.Stamp, maxAhead)
		if cur := svc.recs[r.Key()]; cur != nil && r.Compare(cur.rec) <= 0 {
			continue
		}
		s.set(svc, r)
		changed = append(changed, r)
	}
	metaChanged := false
	if meta != nil {
		s.clock.Observe(meta.Stamp, maxAhead)
		if svc.meta == nil || meta.Compare(svc.meta) > 0 {
			s.setMeta(svc, meta)
			metaChanged = true
		}
	}
	var ev Event
	n := len(changed)
	if n > 0 || metaChanged {
		ev = s.commit(svc, changed, metaChanged, true)
	} else if created {
		delete(sh.services, k)
	}
	sh.mu.Unlock()
	if n > 0 || metaChanged {
		s.emit(ev)
	}
	return n
}

// Records returns every record of service k (tombstones included) and its
// settings record. With keys non-nil, only those instances are returned.
func (s *Store) Records(k model.ServiceKey, keys []model.InstanceKey) ([]*Record, *MetaRecord) {
	return s.records(k, keys, false)
}

// PeerRecords is Records for sending to peers: it leaves out the records
// this node expired on its own judgement (see Forget).
func (s *Store) PeerRecords(k model.ServiceKey, keys []model.InstanceKey) ([]*Record, *MetaRecord) {
	return s.records(k, keys, true)
}

func (s *Store) records(k model.ServiceKey, keys []model.InstanceKey, forPeers bool) ([]*Record, *MetaRecord) {
	sh := s.shardOf(k)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	svc := sh.services[k]
	if svc == nil {
		return nil, nil
	}
	var out []*Record
	if keys == nil {
		out = make([]*Record, 0, len(svc.recs))
		for _, e := range svc.recs {
			if !forPeers || !e.localOnly {
				out = append(out, e.rec)
			}
		}
	} else {
		for _, ik := range keys {
			if e := svc.recs[ik]; e != nil && (!forPeers || !e.localOnly) {
				out = append(out, e.rec)
			}
		}
	}
	return out, svc.meta
}

// Digest returns the service's digest: a sum over its live record versions
// and its settings version. Equal digests mean equal visible state.
func (s *Store) Digest(k model.ServiceKey) uint64 {
	sh := s.shardOf(k)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if svc := sh.services[k]; svc != nil {
		return svc.digest
	}
	return 0
}

// RangeKeys calls fn with every stored service key and its digest, shard by
// shard, without holding a lock while fn runs. Keys that only hold
// tombstones are included (digest 0).
func (s *Store) RangeKeys(fn func(k model.ServiceKey, digest uint64) bool) {
	type kd struct {
		k model.ServiceKey
		d uint64
	}
	var buf []kd
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.RLock()
		for k, svc := range sh.services {
			buf = append(buf, kd{k, svc.digest})
		}
		sh.mu.RUnlock()
		for _, e := range buf {
			if !fn(e.k, e.d) {
				return
			}
		}
	}
}

// ServiceKeys returns the keys of existing services in namespace ns (all
// namespaces when ns is empty), sorted.
func (s *Store) ServiceKeys(ns string) []model.ServiceKey {
	var out []model.ServiceKey
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, svc := range sh.services {
			if (ns == "" || k.Namespace == ns) && svc.exists() {
				out = append(out, k)
			}
		}
		sh.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// Counts returns the number of existing services and live instances.
func (s *Store) Counts() (services, instances int64) {
	return s.services.Load(), s.instances.Load()
}

// GC drops tombstones that became tombstones before now-retention, and
// services left with nothing. It returns how many records it dropped.
func (s *Store) GC(retention time.Duration) int {
	horizon := s.wallMs() - retention.Milliseconds()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, svc := range sh.services {
			for ik, e := range svc.recs {
				if !e.rec.Alive() && e.deadAt < horizon {
					delete(svc.recs, ik)
					n++
				}
			}
			if svc.meta != nil && svc.meta.Deleted && svc.metaDeadAt < horizon {
				svc.meta = nil
			}
			cpGone := len(svc.cp) == 0 && svc.settings == nil && svc.cpEmptiedAt < horizon
			if len(svc.recs) == 0 && svc.meta == nil && cpGone {
				delete(sh.services, k)
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Forget drops the given live records locally, as expired, without a new
// version: the change is not a write of this node and is reported as
// Remote, so it is not replicated. Verification uses it for records their
// owner deleted long ago.
func (s *Store) Forget(k model.ServiceKey, keys []model.InstanceKey) int {
	return s.forget(k, func(tx *Tx) []model.InstanceKey { return keys })
}

// ForgetConnNodes drops, as Forget does, every live record held by a client
// connection of one of nodes. It returns how many it dropped.
func (s *Store) ForgetConnNodes(nodes []string) int {
	set := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		set[n] = true
	}
	total := 0
	for _, k := range s.allKeys() {
		total += s.forget(k, func(tx *Tx) []model.InstanceKey {
			var out []model.InstanceKey
			for ik, e := range tx.svc.recs {
				if e.rec.Conn != "" && set[e.rec.ConnNode] && e.rec.Alive() {
					out = append(out, ik)
				}
			}
			return out
		})
	}
	return total
}

func (s *Store) allKeys() []model.ServiceKey {
	var keys []model.ServiceKey
	s.RangeKeys(func(k model.ServiceKey, _ uint64) bool { keys = append(keys, k); return true })
	return keys
}

func (s *Store) forget(k model.ServiceKey, pick func(tx *Tx) []model.InstanceKey) int {
	sh := s.shardOf(k)
	sh.mu.Lock()
	svc := sh.services[k]
	if svc == nil {
		sh.mu.Unlock()
		return 0
	}
	tx := &Tx{s: s, svc: svc}
	for _, ik := range pick(tx) {
		if e := svc.recs[ik]; e != nil && e.rec.Alive() && tx.Annotate(ik, KindExpired) != nil {
			svc.recs[ik].localOnly = true
		}
	}
	n := len(tx.changed)
	var ev Event
	if n > 0 {
		ev = s.commit(svc, tx.changed, false, true)
	}
	sh.mu.Unlock()
	if n > 0 {
		s.emit(ev)
	}
	return n
}
