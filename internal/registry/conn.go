package registry

import (
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// Connection-held instances (Nacos 2 gRPC clients). Their liveness is the
// client's connection to this node, not heartbeats: they are registered
// with Op.Conn set, are never handed on (the node holding the connection
// owns them), and go away when the connection does.

// SetConnAlive installs the predicate that tells whether a client
// connection held by this node is still open. Local uses it to refute
// remote lease expiries of instances whose connection is alive here.
func (l *Local) SetConnAlive(alive func(conn string) bool) { l.connAlive.Store(&alive) }

func (l *Local) connIsAlive(conn string) bool {
	if p := l.connAlive.Load(); p != nil {
		return (*p)(conn)
	}
	return false
}

// DropConn removes every instance conn registered in the given services.
// The removal keeps each record's version and only marks it expired, so a
// newer registration of the same instance made elsewhere (the client
// reconnected to another node first) outranks it.
func (l *Local) DropConn(conn string, services []model.ServiceKey) int {
	n := 0
	for _, k := range services {
		_ = l.store.Update(k, func(tx *store.Tx) error {
			var mine []model.InstanceKey
			tx.Range(func(r *store.Record) bool {
				if r.Conn == conn && r.Alive() {
					mine = append(mine, r.Key())
				}
				return true
			})
			for _, ik := range mine {
				if tx.Annotate(ik, store.KindExpired) != nil {
					n++
				}
			}
			return nil
		})
	}
	return n
}

// SweepConns drops instances recorded as held by this node (origin self)
// for connections that are not open: after a restart, peers hand back the
// records of connections this process never had.
func (l *Local) SweepConns(self string) int {
	n := 0
	for _, k := range l.store.ServiceKeys("") {
		recs, _ := l.store.Records(k, nil)
		var stale []string
		for _, r := range recs {
			if r.Alive() && r.Conn != "" && r.ConnNode == self && !l.connIsAlive(r.Conn) {
				stale = append(stale, r.Conn)
			}
		}
		for _, c := range stale {
			n += l.DropConn(c, []model.ServiceKey{k})
		}
	}
	return n
}

// registerConn applies a connection's register or batch register in one
// transaction: the connection's other instances in the service are
// replaced (a connection publishes one instance per service, or one batch).
func (l *Local) registerConn(op *Op, ins []model.Instance) error {
	return l.store.Update(op.Key, func(tx *store.Tx) error {
		// A connection registers one instance per service, or a batch: a
		// map only for big batches.
		var keep map[model.InstanceKey]bool
		if len(ins) > 8 {
			keep = make(map[model.InstanceKey]bool, len(ins))
			for i := range ins {
				keep[ins[i].Key()] = true
			}
		}
		kept := func(k model.InstanceKey) bool {
			if keep != nil {
				return keep[k]
			}
			for i := range ins {
				if ins[i].Key() == k {
					return true
				}
			}
			return false
		}
		var drop []*store.Record
		tx.Range(func(r *store.Record) bool {
			if r.Conn == op.Conn && r.Alive() && !kept(r.Key()) {
				drop = append(drop, r)
			}
			return true
		})
		for _, r := range drop {
			tx.Put(r.Instance, store.KindDeleted, r.Conn, r.ConnNode)
		}
		for i := range ins {
			in := ins[i]
			cur := tx.Get(in.Key())
			if cur != nil && cur.Kind == store.KindLive && cur.Conn == op.Conn && cur.Instance.Equal(&in) {
				continue // the SDK registers twice at start-up
			}
			in.Own()
			tx.Put(&in, store.KindLive, op.Conn, op.ConnNode)
		}
		return nil
	})
}
