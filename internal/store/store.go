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
	// LocalOnly is set when every change is this node's own, unconfirmed
	// judgement (AnnotateLocal, Revert): peers keep being served the
	// replicated version, so there is nothing to send them.
	LocalOnly bool
}

// Store is the registry's in-memory data. It is safe for concurrent use.
type Store struct {
	self    string
	clock   *hlc.Clock
	wallMs  func() int64
	shards  [shardCount]shard
	hooks   []func(Event)
	vouch   func(model.ServiceKey, *Record) (Kind, bool)
	suspect func(model.ServiceKey, *Record) bool

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
	// localOnly marks a record this node annotated on its own judgement:
	// peers are served shadow instead (nothing at all when shadow is nil:
	// Forget), so that one node's local judgement (a lease, a verification
	// forget, a timeout no majority confirmed) does not spread as if it
	// were the owner's.
	localOnly bool
	// shadow is the replicated version under a local-only annotation
	// (AnnotateLocal): what peers are served, and what Revert restores.
	shadow *Record
}

// served is the version peers see: nil when this node keeps the record to
// itself.
func (e *entry) served() *Record {
	if !e.localOnly {
		return e.rec
	}
	return e.shadow
}

// contrib is the entry's share of its service digest: digests describe what
// a node serves to peers, so local-only annotations do not make
// verification report differences that no repair can settle.
func (e *entry) contrib() uint64 {
	if r := e.served(); r != nil && r.Alive() {
		return r.hash()
	}
	return 0
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

// SetVouch installs the refutation check Merge applies to a remote
// heartbeat timeout (KindUnhealthy or KindExpired) of a heartbeat-kept
// instance that would replace the local version: if fn reports that this
// node holds evidence the instance is alive, Merge stores, instead of the
// timeout, a renewal of it (its stamp + 1, this node's origin, the returned
// kind), in the same critical section, so the node never shows the
// timeout, and reports the renewal as a local change so that it is
// replicated (hazard H6). fn runs under the store's lock: it must not call
// the store. Call it before the store is shared.
func (s *Store) SetVouch(fn func(k model.ServiceKey, timeout *Record) (renewAs Kind, ok bool)) {
	s.vouch = fn
}

func (s *Store) shardOf(k model.ServiceKey) *shard {
	return &s.shards[maphash.Comparable(shardSeed, k)%shardCount]
}

func (s *Store) emit(ev Event) {
	for _, h := range s.hooks {
		h(ev)
	}
}

// SetSuspect installs the check Merge applies to an incoming version a peer
// marked Suspected (it hides it under a timeout it could not confirm) when
// this node does not show the instance now: if fn agrees (this node has no
// evidence of life either, and takes the timeout as its own unconfirmed
// one), the version is stored under a local-only annotation of that kind,
// so this node does not show an instance it had stopped showing on the
// strength of a peer that suspects it dead. fn runs under the store's lock.
func (s *Store) SetSuspect(fn func(k model.ServiceKey, r *Record) bool) { s.suspect = fn }

// Tx is a read-modify-write transaction on one service. It is only valid
// inside the function passed to Update.
type Tx struct {
	s           *Store
	svc         *service
	changed     []*Record
	metaChanged bool
	renewals    int
	localOnly   int
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

// AnnotateLocal is Annotate as this node's own, unconfirmed judgement: the
// node shows the annotation, but peers keep being served the version it
// annotates (the shadow), until Publish makes it a replicated change or
// Revert drops it. It is how a node that cannot reach a majority of the
// members applies a heartbeat timeout (docs/protocol.md §8).
func (tx *Tx) AnnotateLocal(k model.InstanceKey, kind Kind) *Record {
	e := tx.svc.recs[k]
	if e == nil || e.rec.Kind >= kind || (e.localOnly && e.shadow == nil) {
		return nil
	}
	shadow := e.rec
	if e.localOnly {
		shadow = e.shadow
	}
	r := *e.rec
	r.Kind = kind
	tx.s.install(tx.svc, &entry{rec: &r, localOnly: true, shadow: shadow})
	tx.changed = append(tx.changed, &r)
	tx.localOnly++
	return &r
}

// LocalOnly returns the current record of k if it is a local-only
// annotation over a replicated version (AnnotateLocal), else nil.
func (tx *Tx) LocalOnly(k model.InstanceKey) *Record {
	if e := tx.svc.recs[k]; e != nil && e.localOnly && e.shadow != nil {
		return e.rec
	}
	return nil
}

// Publish turns the local-only annotation of k into a replicated change
// (the members confirmed it). It reports whether there was one.
func (tx *Tx) Publish(k model.InstanceKey) bool {
	e := tx.svc.recs[k]
	if e == nil || !e.localOnly || e.shadow == nil {
		return false
	}
	tx.s.install(tx.svc, &entry{rec: e.rec, deadAt: e.deadAt})
	tx.changed = append(tx.changed, e.rec)
	return true
}

// Abandon keeps the local-only expiry of k but stops serving the version it
// annotates: the record becomes a local tombstone, collected like any
// other. It is what becomes of a timeout no majority confirmed for a whole
// retention period, so that a node left alone does not keep every expired
// instance forever. It reports whether there was such an expiry.
func (tx *Tx) Abandon(k model.InstanceKey) bool {
	e := tx.svc.recs[k]
	if e == nil || !e.localOnly || e.shadow == nil || e.rec.Alive() {
		return false
	}
	tx.s.install(tx.svc, &entry{rec: e.rec, deadAt: tx.s.wallMs(), localOnly: true})
	tx.changed = append(tx.changed, e.rec)
	tx.localOnly++
	return true
}

// Revert drops the local-only annotation of k and shows the replicated
// version again (a member holds evidence against it). It reports whether
// there was one.
func (tx *Tx) Revert(k model.InstanceKey) bool {
	e := tx.svc.recs[k]
	if e == nil || !e.localOnly || e.shadow == nil {
		return false
	}
	tx.s.set(tx.svc, e.shadow)
	tx.changed = append(tx.changed, e.shadow)
	tx.localOnly++
	return true
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
		ev.LocalOnly = tx.localOnly == len(tx.changed) && !tx.metaChanged
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

// set installs r as the current, replicated version.
func (s *Store) set(svc *service, r *Record) { s.install(svc, &entry{rec: r}) }

// install makes e the entry of its record's instance, maintaining counters
// and digest.
func (s *Store) install(svc *service, e *entry) {
	existed := svc.exists()
	k := e.rec.Key()
	if old := svc.recs[k]; old != nil {
		if old.rec.Alive() {
			svc.live--
			s.instances.Add(-1)
		}
		svc.digest -= old.contrib()
	}
	if e.rec.Alive() {
		svc.live++
		s.instances.Add(1)
	} else if e.deadAt == 0 {
		e.deadAt = s.wallMs()
	}
	svc.digest += e.contrib()
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
// associative and idempotent; the one exception is a timeout refuted by the
// vouch check (SetVouch), which is answered with a renewal instead. It
// returns the number of records that changed.
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
	var changed, renewed []*Record
	for _, r := range recs {
		s.clock.Observe(r.Stamp, maxAhead)
		cur := svc.recs[r.Key()]
		if cur != nil && r.Compare(cur.rec) <= 0 {
			if cur.shadow != nil {
				s.mergeShadow(svc, cur, r)
			}
			continue
		}
		if s.vouch != nil && (r.Kind == KindUnhealthy || r.Kind == KindExpired) && r.Conn == "" && r.Instance.Ephemeral {
			if kind, ok := s.vouch(k, r); ok {
				nr := *r
				nr.Stamp, nr.Origin, nr.Kind = r.Stamp+1, s.self, kind
				s.set(svc, &nr)
				renewed = append(renewed, &nr)
				continue
			}
		}
		if sk := r.Suspected; sk != 0 {
			r.Suspected = 0 // a property of the sender's copy, not of the version
			if (sk == KindUnhealthy || sk == KindExpired) && r.Alive() && r.Conn == "" && r.Instance.Ephemeral &&
				(cur == nil || !cur.rec.Alive()) && s.suspect != nil && s.suspect(k, r) {
				hidden := *r
				hidden.Kind = sk
				s.install(svc, &entry{rec: &hidden, localOnly: true, shadow: r})
				changed = append(changed, &hidden)
				continue
			}
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
	var ev, rev Event
	n := len(changed)
	if n > 0 || metaChanged {
		ev = s.commit(svc, changed, metaChanged, true)
	}
	if len(renewed) > 0 {
		rev = s.commit(svc, renewed, false, false)
		rev.Renewal = true
	}
	if n == 0 && !metaChanged && len(renewed) == 0 && created {
		delete(sh.services, k)
	}
	sh.mu.Unlock()
	if n > 0 || metaChanged {
		s.emit(ev)
	}
	if len(renewed) > 0 {
		s.emit(rev)
	}
	return n + len(renewed)
}

// mergeShadow records a peer's version r under a local-only annotation that
// it does not replace: once the cluster holds the annotated version itself
// the annotation is no longer local; a newer replicated version becomes
// the shadow.
func (s *Store) mergeShadow(svc *service, cur *entry, r *Record) {
	switch {
	case r.Compare(cur.rec) == 0:
		s.install(svc, &entry{rec: cur.rec, deadAt: cur.deadAt})
	case r.Compare(cur.shadow) > 0:
		s.install(svc, &entry{rec: cur.rec, deadAt: cur.deadAt, localOnly: true, shadow: r})
	}
}

// Records returns every record of service k (tombstones included) and its
// settings record. With keys non-nil, only those instances are returned.
func (s *Store) Records(k model.ServiceKey, keys []model.InstanceKey) ([]*Record, *MetaRecord) {
	return s.records(k, keys, false)
}

// PeerRecords is Records for sending to peers: records this node annotated
// on its own judgement are served as the version they annotate
// (AnnotateLocal), or left out (Forget).
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
	pick := func(e *entry) *Record {
		if !forPeers {
			return e.rec
		}
		if e.localOnly && e.shadow != nil {
			r := *e.shadow
			r.Suspected = e.rec.Kind
			return &r
		}
		return e.served()
	}
	if keys == nil {
		out = make([]*Record, 0, len(svc.recs))
		for _, e := range svc.recs {
			if r := pick(e); r != nil {
				out = append(out, r)
			}
		}
	} else {
		for _, ik := range keys {
			if e := svc.recs[ik]; e != nil {
				if r := pick(e); r != nil {
					out = append(out, r)
				}
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
	return s.GCBefore(s.wallMs() - retention.Milliseconds())
}

// GCBefore drops tombstones that became tombstones before horizon (wall
// ms), and services left with nothing. It returns how many records it
// dropped.
func (s *Store) GCBefore(horizon int64) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, svc := range sh.services {
			for ik, e := range svc.recs {
				if !e.rec.Alive() && e.deadAt < horizon && e.shadow == nil {
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
		if e := svc.recs[ik]; e != nil && e.rec.Alive() {
			r := *e.rec
			r.Kind = KindExpired
			s.install(svc, &entry{rec: &r, localOnly: true})
			tx.changed = append(tx.changed, &r)
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
