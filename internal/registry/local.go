package registry

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// Local applies writes to the local store and runs heartbeat expiry for the
// keys this node owns.
type Local struct {
	store   *store.Store
	tracker *health.Tracker
	clk     clock.Clock
	log     *slog.Logger

	// owns reports whether this node is responsible for a key; heartbeat
	// expiry runs only there. Standalone nodes own everything.
	owns atomic.Pointer[func(model.ServiceKey) bool]

	connAlive atomic.Pointer[func(string) bool]
	confirmer atomic.Pointer[Confirmer]
	// pending holds the timeouts applied locally only (no majority).
	pending pendingSet
	kick    chan struct{}

	// ownHooks are told about every ownership change (see OnOwnership).
	ownHooks []func(gained, lost []model.ServiceKey)

	expired, markedUnhealthy, refuted atomic.Uint64
}

// ScanInterval is how often expiry deadlines are checked; expiry takes effect
// within this long of its deadline.
const ScanInterval = 250 * time.Millisecond

// NewLocal wires a Local to st. It subscribes to st's change events, so call
// it before the store is shared.
func NewLocal(st *store.Store, cfg health.Config, clk clock.Clock, log *slog.Logger) *Local {
	l := &Local{store: st, clk: clk, log: log, kick: make(chan struct{}, 1)}
	l.tracker = health.New(cfg, clk.Now(), ScanInterval)
	all := func(model.ServiceKey) bool { return true }
	l.owns.Store(&all)
	st.OnChange(l.onChange)
	st.SetVouch(l.vouch)
	st.SetSuspect(l.suspect)
	return l
}

// Tracker exposes the heartbeat tracker (metrics, tests).
func (l *Local) Tracker() *health.Tracker { return l.tracker }

// Stats returns expiry counters: instances expired (locally or confirmed),
// marked unhealthy, and timeouts refuted with evidence of a real beat (a
// remote one refuted here, or one of ours refuted by a member).
func (l *Local) Stats() (expired, unhealthy, refuted uint64) {
	return l.expired.Load(), l.markedUnhealthy.Load(), l.refuted.Load()
}

func (l *Local) ownsKey(k model.ServiceKey) bool { return (*l.owns.Load())(k) }

// Owns reports whether this node is responsible for k: it runs heartbeat
// expiry and health checks only for such keys.
func (l *Local) Owns(k model.ServiceKey) bool { return l.ownsKey(k) }

// OnOwnership registers fn to be called after every ownership change with
// the keys gained and lost (server-side health checks follow ownership this
// way). Call it before the node starts; fn runs on the caller of
// SetOwnership and must not block.
func (l *Local) OnOwnership(fn func(gained, lost []model.ServiceKey)) {
	l.ownHooks = append(l.ownHooks, fn)
}

// SetOwnership replaces the ownership predicate. gained lists keys this node
// has just become responsible for, lost the keys it gave up: every instance
// of a gained key gets a full grace period from now before it can expire
// (hazard H1), and lost keys stop being tracked.
func (l *Local) SetOwnership(owns func(model.ServiceKey) bool, gained, lost []model.ServiceKey) {
	l.owns.Store(&owns)
	now := l.clk.Now()
	for _, k := range lost {
		recs, _ := l.store.Records(k, nil)
		for _, r := range recs {
			// The evidence of real beats stays: the new owner may ask.
			l.tracker.Disown(health.Ref{Service: k, Instance: r.Key()}, now)
		}
	}
	for _, k := range gained {
		recs, _ := l.store.Records(k, nil)
		for _, r := range recs {
			if heartbeatKept(r) && r.Alive() {
				l.tracker.Grace(health.Ref{Service: k, Instance: r.Key()}, r.Instance, now)
			}
		}
	}
	for _, fn := range l.ownHooks {
		fn(gained, lost)
	}
}

// heartbeatKept reports whether r's liveness comes from HTTP heartbeats.
func heartbeatKept(r *store.Record) bool { return r.Instance.Ephemeral && r.Conn == "" }

// onChange keeps the tracker in step with the store. (A peer's timeout of an
// instance this node has evidence is alive is refuted earlier, inside the
// merge: see vouch.)
func (l *Local) onChange(ev store.Event) {
	if ev.LocalOnly {
		return // this node's own unconfirmed timeouts; the scan handles them
	}
	var refute []model.InstanceKey
	if ev.Remote {
		for _, r := range ev.Changed {
			if r.Conn != "" && r.Kind == store.KindExpired && r.ConnNode == l.store.Self() && l.connIsAlive(r.Conn) {
				// A lease expiry of a connection that is open here (the
				// partition healed before the client left).
				refute = append(refute, r.Key())
			}
		}
	}
	owned := l.ownsKey(ev.Key)
	now := l.clk.Now()
	for _, r := range ev.Changed {
		ref := health.Ref{Service: ev.Key, Instance: r.Key()}
		switch {
		case !heartbeatKept(r):
			l.tracker.Untrack(ref)
		case r.Kind == store.KindLive && !ev.Remote && !ev.Renewal:
			// A local registration: evidence of life. (Beats record
			// themselves, see beat.)
			if owned {
				l.tracker.Beat(ref, r.Instance, now)
			} else {
				l.tracker.Witness(ref, r.Instance, now)
			}
		case !owned:
		case r.Kind == store.KindLive:
			// A version written elsewhere, or a renewal: a full period
			// from now, but no evidence of life here.
			l.tracker.Grace(ref, r.Instance, now)
		case !r.Alive():
			l.tracker.Untrack(ref)
		}
	}
	if len(refute) == 0 {
		return
	}
	// Subscribers run after the store lock is released, so writing here is
	// safe; the renewal is itself an event, replicated like any write.
	_ = l.store.Update(ev.Key, func(tx *store.Tx) error {
		for _, ik := range refute {
			if r := tx.Get(ik); r != nil && r.Kind == store.KindExpired && tx.Renew(ik) != nil {
				l.refuted.Add(1)
				l.log.Debug("refuted a peer's lease expiry", "service", ev.Key.String(), "instance", ik.String(), "stamp", r.Stamp.String())
			}
		}
		return nil
	})
}

// Run scans expiry deadlines every ScanInterval, and at once after Kick,
// until ctx ends.
func (l *Local) Run(ctx context.Context) {
	t := l.clk.NewTicker(ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-l.kick:
		}
		l.ScanOnce()
	}
}

// Apply implements Writer.
func (l *Local) Apply(_ context.Context, op *Op) (Result, error) {
	switch op.Kind {
	case OpRegister:
		return Result{}, l.register(op)
	case OpDeregister:
		return Result{}, l.deregister(op)
	case OpUpdate, OpPatch:
		return Result{}, l.update(op)
	case OpBeat:
		return l.beat(op)
	case OpCreateService, OpUpdateService, OpDeleteService:
		// In a node the consistency router sends these to Raft; Local
		// applies them only where no CP side runs (in-memory test clusters).
		return Result{}, l.service(op)
	case OpBatchRegister:
		if op.Conn == "" {
			return Result{}, Errorf(http.StatusBadRequest, "batch register needs a client connection")
		}
		return Result{}, l.registerConn(op, op.Instances)
	case OpUpdateCluster:
		return Result{}, l.updateCluster(op)
	case OpSetHealth:
		return Result{}, l.setHealth(op)
	}
	return Result{}, Errorf(http.StatusBadRequest, "unknown operation %d", op.Kind)
}

func (l *Local) register(op *Op) error {
	if op.Conn != "" {
		return l.registerConn(op, []model.Instance{op.Instance})
	}
	in := op.Instance
	var track *model.Instance
	var key model.ServiceKey
	err := l.store.Update(op.Key, func(tx *store.Tx) error {
		cur := tx.Get(in.Key())
		if cur != nil && cur.Kind == store.KindLive && cur.Conn == op.Conn && cur.Instance.Equal(&in) {
			// Same data again (clients re-register on reconnect): no new
			// version, just a sign of life.
			track, key = cur.Instance, tx.Key()
			return nil
		}
		stored := in
		stored.Own()
		tx.Put(&stored, store.KindLive, op.Conn, op.ConnNode)
		return nil
	})
	if track != nil && track.Ephemeral && op.Conn == "" {
		// The stored key and instance: the tracker keeps them.
		if ref := (health.Ref{Service: key, Instance: track.Key()}); l.ownsKey(op.Key) {
			l.tracker.Beat(ref, track, l.clk.Now())
		} else {
			l.tracker.Witness(ref, track, l.clk.Now())
		}
	}
	return err
}

func (l *Local) deregister(op *Op) error {
	k := op.Instance.Key()
	if op.Conn != "" {
		// A connection removes its own instance of the service, whatever
		// fields the request carries (Nacos 2 semantics).
		return l.registerConn(op, nil)
	}
	return l.store.Update(op.Key, func(tx *store.Tx) error {
		cur := tx.Get(k)
		// The deregistration is recorded with a fresh version even when
		// this node holds no live copy (it expired here, or was registered
		// on the other side of a partition) or holds an older tombstone (a
		// re-registration made elsewhere has not reached it yet: found by
		// the scale simulation, docs/scale.md): the client's removal must
		// outrank any copy another node still holds.
		if cur == nil || cur.Kind == store.KindDeleted {
			tomb := op.Instance
			tomb.Own()
			tx.Put(&tomb, store.KindDeleted, "", "")
			return nil
		}
		tomb := *cur.Instance
		tx.Put(&tomb, store.KindDeleted, cur.Conn, cur.ConnNode)
		return nil
	})
}

func (l *Local) update(op *Op) error {
	k := op.Instance.Key()
	return l.store.Update(op.Key, func(tx *store.Tx) error {
		cur := tx.Get(k)
		if cur == nil || !cur.Alive() {
			if !tx.Exists() {
				return Errorf(http.StatusBadRequest, "service not found: %s", op.Key.Grouped())
			}
			return Errorf(http.StatusBadRequest, "instance not found: %s in %s", k.String(), op.Key.Grouped())
		}
		next := *cur.Instance
		if op.Has(FieldWeight) {
			next.Weight = op.Instance.Weight
		}
		if op.Has(FieldEnabled) {
			next.Enabled = op.Instance.Enabled
		}
		if op.Has(FieldHealthy) {
			next.Healthy = op.Instance.Healthy
		}
		if op.Has(FieldMetadata) {
			next.Metadata = maps.Clone(op.Instance.Metadata)
		}
		if next.Equal(cur.Instance) {
			return nil
		}
		next.Own()
		// An update is not a sign of life: an instance a heartbeat timeout
		// marked unhealthy stays so (only a beat or a registration restores it).
		tx.Put(&next, cur.Kind, cur.Conn, cur.ConnNode)
		return nil
	})
}

func (l *Local) beat(op *Op) (Result, error) {
	k := op.Instance.Key()
	res := Result{BeatCode: BeatOK, ClientBeatInterval: model.DefaultHeartBeatIntervalMs}
	var beaten *store.Record
	var key model.ServiceKey
	err := l.store.Update(op.Key, func(tx *store.Tx) error {
		cur := tx.Get(k)
		if cur == nil || !cur.Alive() {
			if op.LightBeat {
				res.BeatCode = BeatNotFound
				return nil
			}
			// A beat carrying instance data registers it (Nacos "data compensation").
			stored := op.Instance
			stored.Own()
			tx.Put(&stored, store.KindLive, "", "")
			res.ClientBeatInterval = stored.HeartBeatIntervalMs()
			return nil
		}
		res.ClientBeatInterval = cur.Instance.HeartBeatIntervalMs()
		// A renewal is a version just above the current one: it outranks
		// any timeout of it, but no client write made since. Health comes
		// back with one; and on a node that does not own the key (the
		// owner could not be reached, or this node is not ready) the beat
		// travels as one, so that it still reaches whoever expires the
		// instance.
		if cur.Kind == store.KindUnhealthy || (!l.ownsKey(op.Key) && heartbeatKept(cur)) {
			tx.Renew(k)
		}
		beaten, key = cur, tx.Key()
		return nil
	})
	if beaten != nil && heartbeatKept(beaten) {
		// The stored key and instance: the tracker keeps them.
		ref := health.Ref{Service: key, Instance: beaten.Key()}
		if l.ownsKey(op.Key) {
			l.tracker.Beat(ref, beaten.Instance, l.clk.Now())
		} else {
			// Evidence for the owner, which may ask before timing it out.
			l.tracker.Witness(ref, beaten.Instance, l.clk.Now())
		}
	}
	return res, err
}

func (l *Local) service(op *Op) error {
	return l.store.Update(op.Key, func(tx *store.Tx) error {
		m := tx.Meta()
		exists := m != nil && !m.Deleted
		switch op.Kind {
		case OpCreateService:
			if exists || tx.LiveCount() > 0 {
				return Errorf(http.StatusBadRequest, "specified service %s already exists!", op.Key.Grouped())
			}
		case OpUpdateService:
			if !exists && tx.LiveCount() == 0 {
				return Errorf(http.StatusBadRequest, "service %s not found!", op.Key.Grouped())
			}
		case OpDeleteService:
			if !exists && tx.LiveCount() == 0 {
				return Errorf(http.StatusBadRequest, "specified service %s not exist!", op.Key.Grouped())
			}
			if tx.LiveCount() > 0 {
				return Errorf(http.StatusBadRequest, "service %s is not empty, can't be delete. Please unregister instance first", op.Key.Grouped())
			}
			tx.PutMeta(model.ServiceMeta{}, true)
			return nil
		}
		next := op.Service
		if exists {
			// Cluster settings have their own operation (updateCluster);
			// a service update keeps them, as in Nacos.
			next.Clusters = m.Meta.Clusters
		}
		tx.PutMeta(next, false)
		return nil
	})
}

// updateCluster sets one cluster's settings inside the service's settings
// record, so they replicate (and merge) with the other service settings.
func (l *Local) updateCluster(op *Op) error {
	return l.store.Update(op.Key, func(tx *store.Tx) error {
		m := tx.Meta()
		exists := m != nil && !m.Deleted
		if !exists && tx.LiveCount() == 0 {
			return Errorf(http.StatusBadRequest, "service not found:%s", op.Key.Grouped())
		}
		var cur *model.ServiceMeta
		if exists {
			cur = &m.Meta
		}
		next, changed, err := cur.WithCluster(op.ClusterName, op.Cluster)
		if err != nil {
			return fmt.Errorf("service %s: %w", op.Key.Grouped(), err)
		}
		if !changed {
			return nil
		}
		tx.PutMeta(next, false)
		return nil
	})
}

// setHealth applies a health check verdict to a persistent instance. A
// verdict of unhealthy is a weak version (the stamp of the version that
// was checked, kind unhealthy), like a heartbeat timeout; healthy again is
// a renewal just above it. So any client write made since the check
// outranks the verdict, wherever it was made (docs/health-checks.md).
func (l *Local) setHealth(op *Op) error {
	k := op.Instance.Key()
	return l.store.Update(op.Key, func(tx *store.Tx) error {
		cur := tx.Get(k)
		if cur == nil || !cur.Alive() || cur.Instance.Ephemeral || cur.Conn != "" {
			return nil
		}
		switch {
		case !op.Instance.Healthy && cur.Kind == store.KindLive:
			tx.Annotate(k, store.KindUnhealthy)
		case op.Instance.Healthy && cur.Kind == store.KindUnhealthy:
			tx.Renew(k)
		}
		return nil
	})
}
