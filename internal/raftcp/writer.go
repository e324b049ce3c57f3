package raftcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Writer is the CP side of the consistency seam: it applies persistent
// writes through Raft. The checks that depend on ephemeral data (a
// node-local AP view) are made here, before the command is proposed, as
// Nacos does; the state machine checks the replicated state.
type Writer struct {
	Node  *Node
	Store *store.Store
}

var _ registry.Writer = (*Writer)(nil)

// Apply implements registry.Writer.
func (w *Writer) Apply(ctx context.Context, op *registry.Op) (registry.Result, error) {
	st := w.Store
	k := op.Instance.Key()
	switch op.Kind {
	case registry.OpBeat:
		// Persistent instances are not kept by heartbeats: a beat changes
		// nothing, except that a full beat registers an unknown one.
		res := registry.Result{BeatCode: registry.BeatOK, ClientBeatInterval: model.DefaultHeartBeatIntervalMs}
		if st.PersistentInstance(op.Key, k) != nil {
			return res, nil
		}
		if op.LightBeat {
			res.BeatCode = registry.BeatNotFound
			return res, nil
		}
		reg := *op
		reg.Kind = registry.OpRegister
		return res, w.propose(ctx, &reg)
	case registry.OpRegister:
		if st.EphemeralInstance(op.Key, k) != nil {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest,
				"instance %s of %s is registered as ephemeral; deregister it first", k, op.Key.Grouped())
		}
	case registry.OpCreateService:
		if st.View(op.Key) != nil {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest, "specified service %s already exists!", op.Key.Grouped())
		}
	case registry.OpUpdateService:
		if st.View(op.Key) == nil {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest, "service %s not found!", op.Key.Grouped())
		}
	case registry.OpDeleteService:
		v := st.View(op.Key)
		if v == nil {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest, "specified service %s not exist!", op.Key.Grouped())
		}
		if len(v.Instances) > 0 {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest, "service %s is not empty, can't be delete. Please unregister instance first", op.Key.Grouped())
		}
	case registry.OpUpdateCluster:
		if st.View(op.Key) == nil {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest, "service not found:%s", op.Key.Grouped())
		}
	case registry.OpUpdate, registry.OpPatch:
		if st.PersistentInstance(op.Key, k) == nil && st.View(op.Key) == nil {
			return registry.Result{}, registry.Errorf(http.StatusBadRequest, "service not found: %s", op.Key.Grouped())
		}
	}
	return registry.Result{}, w.propose(ctx, op)
}

func (w *Writer) propose(ctx context.Context, op *registry.Op) error {
	op.Instance.Ephemeral = false
	cmd, err := EncodeOp(op)
	if err != nil {
		return err
	}
	return unavailable(w.Node.Propose(ctx, cmd))
}

// unavailable maps the errors that mean "no quorum" to HTTP 503.
func unavailable(err error) error {
	if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrUnknown) {
		return &registry.Error{Status: http.StatusServiceUnavailable, Msg: err.Error()}
	}
	return err
}

// KV implements consistency.KV over the node.
type KV struct{ Node *Node }

var _ consistency.KV = KV{}

// Write implements consistency.KV.
func (kv KV) Write(ctx context.Context, w consistency.KVWrite) error {
	cmd, err := EncodeKV(w)
	if err != nil {
		return err
	}
	err = kv.Node.Propose(ctx, cmd)
	var re *registry.Error
	if errors.As(err, &re) && re.Status == http.StatusBadRequest {
		// Conditions come back from the leader as text; restore the sentinel.
		switch re.Msg {
		case ErrExists.Error():
			return fmt.Errorf("%w", ErrExists)
		case ErrNotFound.Error():
			return fmt.Errorf("%w", ErrNotFound)
		}
	}
	return unavailable(err)
}

// Get implements consistency.KV.
func (kv KV) Get(table, key string) ([]byte, bool) { return kv.Node.fsm.Get(table, key) }

// List implements consistency.KV.
func (kv KV) List(table string) []consistency.KVEntry { return kv.Node.fsm.List(table) }

// Sync implements consistency.KV.
func (kv KV) Sync(ctx context.Context) error { return unavailable(kv.Node.Barrier(ctx)) }
