package consistency

import (
	"context"
	"errors"
	"net/http"

	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Router is the registry.Writer every entry point uses.
type Router struct {
	// AP applies ephemeral writes (the Distro engine, or registry.Local).
	AP registry.Writer
	// CP applies persistent writes (raftcp.Writer).
	CP registry.Writer
	// Store is this node's store, for routing by what an identity holds.
	Store *store.Store
	// CheckNamespace, if set, refuses writes into a namespace that was
	// never created (Nacos's nacos.core.namespace.validation.enabled).
	// Removals are always allowed, so old data can be cleaned up, and so
	// are health check verdicts: they are the server's, about instances
	// that exist (those of a deleted namespace are still served).
	CheckNamespace func(namespace string) error
}

// Persistent reports whether op belongs to the CP side: service and cluster
// settings, health check verdicts of instances held there,
// writes that say ephemeral=false, and updates, patches, beats and
// deregistrations of an identity that this node holds as a persistent
// instance (Nacos clients often leave the ephemeral flag out of those).
func (r *Router) Persistent(op *registry.Op) bool {
	switch op.Kind {
	case registry.OpCreateService, registry.OpUpdateService, registry.OpDeleteService, registry.OpUpdateCluster:
		return true
	case registry.OpBatchRegister:
		return false
	case registry.OpSetHealth:
		// A health check verdict goes where the instance is held.
		return r.Store.PersistentInstance(op.Key, op.Instance.Key()) != nil
	}
	if op.Conn != "" {
		return false
	}
	if !op.Instance.Ephemeral {
		return true
	}
	if op.Kind == registry.OpRegister {
		return false
	}
	k := op.Instance.Key()
	return r.Store.PersistentInstance(op.Key, k) != nil && r.Store.EphemeralInstance(op.Key, k) == nil
}

// Apply implements registry.Writer.
func (r *Router) Apply(ctx context.Context, op *registry.Op) (registry.Result, error) {
	if r.CheckNamespace != nil && op.Kind != registry.OpDeregister && op.Kind != registry.OpDeleteService && op.Kind != registry.OpSetHealth {
		if err := r.CheckNamespace(op.Key.Namespace); err != nil {
			return registry.Result{}, err
		}
	}
	if r.Persistent(op) {
		return r.CP.Apply(ctx, op)
	}
	if op.Kind == registry.OpRegister && r.Store.PersistentInstance(op.Key, op.Instance.Key()) != nil {
		// One identity is one instance: Nacos keeps a service's ephemeral
		// and persistent instances apart, and so must a listing.
		return registry.Result{}, registry.Errorf(http.StatusBadRequest,
			"instance %s of %s is registered as persistent; deregister it (ephemeral=false) first", op.Instance.Key(), op.Key.Grouped())
	}
	return r.AP.Apply(ctx, op)
}

// KVMode says how a KV write treats an existing entry. Its numeric value
// is stored in the Raft log: only append.
type KVMode uint32

// KV write modes.
const (
	KVUpsert KVMode = iota + 1
	// KVCreate fails with ErrExists if the key is present.
	KVCreate
	// KVUpdate fails with ErrNotFound if the key is absent.
	KVUpdate
	// KVDelete fails with ErrNotFound if the key is absent.
	KVDelete
	// KVDeleteIfPresent succeeds either way.
	KVDeleteIfPresent
)

// KVWrite is one change of a table.
type KVWrite struct {
	Table, Key string
	Value      []byte
	Mode       KVMode
}

// KVEntry is one entry of a table. Value must not be modified.
type KVEntry struct {
	Key   string
	Value []byte
}

// Errors of conditional KV writes.
var (
	ErrExists   = errors.New("entry already exists")
	ErrNotFound = errors.New("entry not found")
)

// KV is durable tables replicated by the CP protocol (namespaces). Writes
// are linearizable and answered after commit (an error wrapping ErrExists
// or ErrNotFound for a failed condition; a *registry.Error with status 503
// when no quorum can be reached). Reads are this node's applied state;
// call Sync first for a linearizable read.
type KV interface {
	Write(ctx context.Context, w KVWrite) error
	Get(table, key string) ([]byte, bool)
	List(table string) []KVEntry
	Sync(ctx context.Context) error
}
