package store

import (
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
)

// Kind is the state a record version represents. Its numeric value is part of
// the cluster protocol and of the merge order: only append.
type Kind uint8

const (
	// KindLive is a registered instance.
	KindLive Kind = 0
	// KindUnhealthy is a live instance that missed its heartbeat timeout.
	// It keeps the stamp of the live version it annotates.
	KindUnhealthy Kind = 1
	// KindExpired is an instance removed by heartbeat expiry. It keeps the
	// stamp of the version it removes, so any renewal outranks it.
	KindExpired Kind = 2
	// KindDeleted is an explicit deregistration with its own fresh stamp.
	KindDeleted Kind = 3
)

// String names the kind for logs.
func (k Kind) String() string {
	switch k {
	case KindLive:
		return "live"
	case KindUnhealthy:
		return "unhealthy"
	case KindExpired:
		return "expired"
	case KindDeleted:
		return "deleted"
	}
	return "unknown"
}

// Record is one version of one instance. Records are immutable once stored;
// the Instance they point to is shared and must not be modified.
type Record struct {
	Instance *model.Instance
	Stamp    hlc.Timestamp
	Origin   string
	Kind     Kind
	// Conn is the connection id for instances owned by a client connection
	// (Nacos 2 gRPC clients); empty for instances kept alive by heartbeats.
	Conn string
	// ConnNode is the node holding Conn.
	ConnNode string
	// Suspected is set only on records served to peers: the serving node
	// hides this version under a timeout of that kind it could not confirm
	// (AnnotateLocal). It is not part of the version.
	Suspected Kind
}

// Key returns the record's instance identity.
func (r *Record) Key() model.InstanceKey { return r.Instance.Key() }

// Alive reports whether the record represents a present instance.
func (r *Record) Alive() bool { return r.Kind <= KindUnhealthy }

// Healthy reports the health clients see: the instance's own flag, unless a
// heartbeat timeout marked it unhealthy.
func (r *Record) Healthy() bool { return r.Kind == KindLive && r.Instance.Healthy }

// Compare orders two versions of the same instance: -1, 0 or +1.
func (r *Record) Compare(o *Record) int {
	switch {
	case r.Stamp != o.Stamp:
		return cmp(r.Stamp < o.Stamp)
	case r.Origin != o.Origin:
		return cmp(r.Origin < o.Origin)
	case r.Kind != o.Kind:
		return cmp(r.Kind < o.Kind)
	}
	return 0
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

// hash is the record's contribution to its service digest. It covers the
// version only: two nodes holding the same version hold the same data.
func (r *Record) hash() uint64 {
	h := newHasher()
	h.str(r.Instance.IP)
	h.u64(uint64(r.Instance.Port))
	h.str(r.Instance.Cluster)
	h.u64(uint64(r.Stamp))
	h.str(r.Origin)
	h.u64(uint64(r.Kind))
	return h.sum()
}

// MetaRecord is one version of a service's explicit settings.
type MetaRecord struct {
	Meta    model.ServiceMeta
	Stamp   hlc.Timestamp
	Origin  string
	Deleted bool
}

// Compare orders two versions of service settings.
func (m *MetaRecord) Compare(o *MetaRecord) int {
	switch {
	case m.Stamp != o.Stamp:
		return cmp(m.Stamp < o.Stamp)
	case m.Origin != o.Origin:
		return cmp(m.Origin < o.Origin)
	case m.Deleted != o.Deleted:
		return cmp(!m.Deleted)
	}
	return 0
}

func (m *MetaRecord) hash() uint64 {
	h := newHasher()
	h.str("meta")
	h.u64(uint64(m.Stamp))
	h.str(m.Origin)
	return h.sum()
}

// hasher is FNV-1a 64 with length-prefixed strings: stable across nodes and
// releases, unlike maphash.
type hasher uint64

func newHasher() hasher { return 14695981039346656037 }

func (h *hasher) byte(b byte) { *h = (*h ^ hasher(b)) * 1099511628211 }

func (h *hasher) u64(v uint64) {
	for i := 0; i < 8; i++ {
		h.byte(byte(v >> (8 * i)))
	}
}

func (h *hasher) str(s string) {
	h.u64(uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h.byte(s[i])
	}
}

func (h hasher) sum() uint64 {
	// Final avalanche (splitmix64) so that summed digests of similar records
	// do not cancel out.
	z := uint64(h)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// HashKey hashes a service key with the same stable hash; used for bucketing.
func HashKey(k model.ServiceKey) uint64 {
	h := newHasher()
	h.str(k.Namespace)
	h.str(k.Group)
	h.str(k.Name)
	return h.sum()
}
