package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/distro-registry/distro/internal/model"
)

// OpKind names a write. Its numeric value crosses the cluster connection:
// only append.
type OpKind uint8

// Write kinds.
const (
	OpRegister OpKind = iota + 1
	OpDeregister
	OpUpdate // PUT /instance: replace weight, enabled, metadata
	OpPatch  // PATCH /instance: change only the given fields
	OpBeat
	OpCreateService
	OpUpdateService
	OpDeleteService
	// OpBatchRegister replaces a connection's instances of a service with
	// Op.Instances (Nacos 2 BatchInstanceRequest). Connection-held only.
	OpBatchRegister
	// OpUpdateCluster sets the settings (health checker, check port,
	// metadata) of cluster Op.ClusterName of the service to Op.Cluster
	// (PUT /v1/ns/cluster). Service settings: replicated with them.
	OpUpdateCluster
	// OpSetHealth records a server-side health check verdict for a
	// persistent instance: Op.Instance names it (ip, port, cluster) and
	// Op.Instance.Healthy is the verdict. It changes nothing if the
	// instance is absent, ephemeral or already in that state, so a stale
	// verdict that raced with a deregistration is harmless.
	OpSetHealth
)

// String names the kind for logs and metrics.
func (k OpKind) String() string {
	switch k {
	case OpRegister:
		return "register"
	case OpDeregister:
		return "deregister"
	case OpUpdate:
		return "update"
	case OpPatch:
		return "patch"
	case OpBeat:
		return "beat"
	case OpCreateService:
		return "create-service"
	case OpUpdateService:
		return "update-service"
	case OpDeleteService:
		return "delete-service"
	case OpBatchRegister:
		return "batch-register"
	case OpUpdateCluster:
		return "update-cluster"
	case OpSetHealth:
		return "set-health"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Field names an instance field given explicitly in an update or patch.
type Field string

// Fields that updates and patches can carry.
const (
	FieldWeight   Field = "weight"
	FieldEnabled  Field = "enabled"
	FieldHealthy  Field = "healthy"
	FieldMetadata Field = "metadata"
)

// Op is one client write. Entry points validate it fully before calling a
// Writer; Instance is owned by the Op and must not be shared afterwards.
type Op struct {
	Kind     OpKind
	Key      model.ServiceKey
	Instance model.Instance
	// Fields lists what an update or patch sets.
	Fields []Field
	// LightBeat is a beat without instance data: it cannot register.
	LightBeat bool
	// Service carries settings for service operations.
	Service model.ServiceMeta
	// Instances carries the set of a batch register.
	Instances []model.Instance
	// Conn and ConnNode tie the instance to a client connection (gRPC).
	Conn, ConnNode string
	// ClusterName and Cluster carry an OpUpdateCluster.
	ClusterName string
	Cluster     model.ClusterMeta
}

// Has reports whether f was given.
func (op *Op) Has(f Field) bool {
	for _, g := range op.Fields {
		if g == f {
			return true
		}
	}
	return false
}

// Beat result codes (Nacos NamingResponseCode).
const (
	BeatOK       = 10200
	BeatNotFound = 20404
)

// Result is what a write answers besides success or failure.
type Result struct {
	BeatCode           int
	ClientBeatInterval int64
}

// Writer applies client writes. Implementations must be safe for concurrent
// use, and must not keep the *Op once Apply returned: callers reset and
// reuse it (what its fields point to, such as a metadata map, may be kept;
// callers never change those).
type Writer interface {
	Apply(ctx context.Context, op *Op) (Result, error)
}

// Error is a write refused for a reason the client must see, with the HTTP
// status Nacos uses for it.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf builds an *Error.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// StatusOf maps any error to the HTTP status a client should get.
func StatusOf(err error) int {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Status
	case errors.Is(err, model.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
