package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DefaultGroup is the Nacos group every benchmark service lives in.
const DefaultGroup = "DEFAULT_GROUP"

// Instance is one instance a scenario registers, beats or removes.
type Instance struct {
	// Service is the bare service name (the group is DefaultGroup).
	Service string
	IP      string
	Port    int
	// Ephemeral instances need heartbeats (v1) or a connection (v2);
	// persistent ones stay until removed.
	Ephemeral bool
	// Metadata is the instance metadata as a JSON object ("{}" if empty).
	Metadata string
}

// Grouped is the service name as Nacos clients send it: GROUP@@name.
func (in *Instance) Grouped() string { return DefaultGroup + "@@" + in.Service }

// Endpoint is an instance's address as a list or push reports it.
type Endpoint struct {
	IP   string
	Port int
}

// String is ip:port.
func (e Endpoint) String() string { return e.IP + ":" + strconv.Itoa(e.Port) }

// Endpoint returns the instance's address.
func (in *Instance) Endpoint() Endpoint { return Endpoint{IP: in.IP, Port: in.Port} }

// Outcome is what one operation produced. Kind is empty on success;
// otherwise it names the failure ("http_503", "timeout", "conn_refused",
// "not_visible", ...), and results count errors by kind.
type Outcome struct {
	// Op names the operation for per-operation breakdowns (mixed); empty
	// means the scenario's name.
	Op     string
	Status int
	// Bytes is the size of the response body.
	Bytes int64
	Kind  string
	// Sample is a scenario-specific measurement (time to visible, time to
	// push) recorded in the result's metric histogram when HasSample is set.
	Sample    time.Duration
	HasSample bool
	// Samples are further measurements of the same kind, all recorded
	// (fanout: one per subscriber).
	Samples []time.Duration
	// Stop tells the load loop that the scenario has no more work (a
	// deregistration pool is empty). The operation is not counted.
	Stop bool
}

// OK reports success.
func (o Outcome) OK() bool { return o.Kind == "" && !o.Stop }

// Failed returns o marked as failed with kind.
func (o Outcome) Failed(kind string) Outcome { o.Kind = kind; return o }

// Driver speaks one client protocol to the servers under test. Node indexes
// the targets given to the driver. Implementations are safe for concurrent
// use. The v1 HTTP driver is HTTPDriver; a Nacos v2 gRPC driver implements
// the same interface (Beat is then ErrUnsupported: v2 clients keep
// instances alive with their connection).
type Driver interface {
	// Name identifies the protocol in results ("http-v1").
	Name() string
	// Nodes is the number of targets.
	Nodes() int
	// Register registers (or replaces) in on node.
	Register(ctx context.Context, node int, in *Instance) Outcome
	// Deregister removes in from node.
	Deregister(ctx context.Context, node int, in *Instance) Outcome
	// Beat sends one heartbeat for in.
	Beat(ctx context.Context, node int, in *Instance) Outcome
	// Query fetches a service's instance list without decoding it.
	Query(ctx context.Context, node int, service string) Outcome
	// Lookup fetches and decodes a service's instance list.
	Lookup(ctx context.Context, node int, service string) (Outcome, []Endpoint)
	// Close releases connections and sockets.
	Close() error
}

// Watcher is implemented by drivers that can subscribe to push
// notifications (v1: UDP push; v2: gRPC server push).
type Watcher interface {
	// Watch subscribes to service on node. Notifications arrive on the
	// returned subscription until it is closed.
	Watch(ctx context.Context, node int, service string) (Subscription, Outcome)
}

// Subscription delivers push notifications for one service.
type Subscription interface {
	// C receives every notification for the service.
	C() <-chan Notification
	// Close stops delivery (the server keeps the subscriber until it idles out).
	Close()
}

// Notification is one push received by a subscriber.
type Notification struct {
	// Service is the grouped name the push was for.
	Service string
	Hosts   []Endpoint
	// At is when the push arrived.
	At time.Time
	// Bytes is the size of the datagram or message.
	Bytes int
}

// Contains reports whether the notification lists e.
func (n Notification) Contains(e Endpoint) bool { return containsEndpoint(n.Hosts, e) }

func containsEndpoint(hs []Endpoint, e Endpoint) bool {
	for _, h := range hs {
		if h == e {
			return true
		}
	}
	return false
}

// ErrUnsupported is the failure kind of operations a driver cannot perform.
var ErrUnsupported = errors.New("operation not supported by this driver")

// unsupported is the Outcome of an operation the driver cannot perform.
func unsupported(op string) Outcome { return Outcome{Op: op, Kind: "unsupported"} }

// statusKind names a non-2xx status.
func statusKind(code int) string { return fmt.Sprintf("http_%d", code) }
