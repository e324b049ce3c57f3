package model

import (
	"maps"
	"sort"
	"strconv"
	"strings"
)

// Nacos defaults and separators. They are part of the wire contract.
const (
	DefaultNamespace = "public"
	DefaultGroup     = "DEFAULT_GROUP"
	DefaultCluster   = "DEFAULT"
	// GroupSeparator joins a group and a service name: "group@@service".
	GroupSeparator = "@@"

	// Preserved metadata keys, values in milliseconds.
	MetaHeartBeatInterval = "preserved.heart.beat.interval"
	MetaHeartBeatTimeout  = "preserved.heart.beat.timeout"
	MetaIPDeleteTimeout   = "preserved.ip.delete.timeout"

	DefaultHeartBeatIntervalMs = 5000
	DefaultHeartBeatTimeoutMs  = 15000
	DefaultIPDeleteTimeoutMs   = 30000
)

// ServiceKey names one service. It is the unit of ownership and replication
// (the Distro key). All three fields are canonical: never blank.
type ServiceKey struct {
	Namespace string
	Group     string
	Name      string
}

// Grouped returns the Nacos grouped form "group@@name".
func (k ServiceKey) Grouped() string { return k.Group + GroupSeparator + k.Name }

// String returns "namespace##group@@name", the form used in logs and hashing.
func (k ServiceKey) String() string { return k.Namespace + "##" + k.Grouped() }

// Less orders keys by namespace, group, then name.
func (k ServiceKey) Less(o ServiceKey) bool {
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	if k.Group != o.Group {
		return k.Group < o.Group
	}
	return k.Name < o.Name
}

// InstanceKey identifies an instance inside a service: at most one instance
// per (ip, port, cluster) exists in any answer.
type InstanceKey struct {
	IP      string
	Port    int
	Cluster string
}

// String returns "ip#port#cluster".
func (k InstanceKey) String() string {
	return k.IP + "#" + strconv.Itoa(k.Port) + "#" + k.Cluster
}

// Less orders instance keys by ip, port, then cluster.
func (k InstanceKey) Less(o InstanceKey) bool {
	if k.IP != o.IP {
		return k.IP < o.IP
	}
	if k.Port != o.Port {
		return k.Port < o.Port
	}
	return k.Cluster < o.Cluster
}

// Instance is one registered endpoint of a service. Values stored in the
// registry are immutable: writers build a new Instance instead of changing one.
type Instance struct {
	InstanceID string
	IP         string
	Port       int
	Weight     float64
	Healthy    bool
	Enabled    bool
	Ephemeral  bool
	Cluster    string
	Metadata   map[string]string
}

// Key returns the instance's identity within its service.
func (in *Instance) Key() InstanceKey {
	return InstanceKey{IP: in.IP, Port: in.Port, Cluster: in.Cluster}
}

// DefaultInstanceID builds the Nacos default id "ip#port#cluster#group@@service".
func DefaultInstanceID(in *Instance, svc ServiceKey) string {
	return in.IP + "#" + strconv.Itoa(in.Port) + "#" + in.Cluster + "#" + svc.Grouped()
}

// HeartBeatIntervalMs, HeartBeatTimeoutMs and IPDeleteTimeoutMs read the
// preserved metadata keys, falling back to the Nacos defaults when a key is
// absent or not a positive integer.
func (in *Instance) HeartBeatIntervalMs() int64 {
	return metaMillis(in.Metadata, MetaHeartBeatInterval, DefaultHeartBeatIntervalMs)
}

// HeartBeatTimeoutMs: see HeartBeatIntervalMs.
func (in *Instance) HeartBeatTimeoutMs() int64 {
	return metaMillis(in.Metadata, MetaHeartBeatTimeout, DefaultHeartBeatTimeoutMs)
}

// IPDeleteTimeoutMs: see HeartBeatIntervalMs.
func (in *Instance) IPDeleteTimeoutMs() int64 {
	return metaMillis(in.Metadata, MetaIPDeleteTimeout, DefaultIPDeleteTimeoutMs)
}

func metaMillis(md map[string]string, key string, def int64) int64 {
	if v, ok := md[key]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// Equal reports whether two instances carry the same data.
func (in *Instance) Equal(o *Instance) bool {
	if in.InstanceID != o.InstanceID || in.IP != o.IP || in.Port != o.Port ||
		in.Weight != o.Weight || in.Healthy != o.Healthy || in.Enabled != o.Enabled ||
		in.Ephemeral != o.Ephemeral || in.Cluster != o.Cluster || len(in.Metadata) != len(o.Metadata) {
		return false
	}
	for k, v := range in.Metadata {
		if ov, ok := o.Metadata[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// Selector is a service's instance selector (Nacos: {"type":"none"|"label","expression":...}).
type Selector struct {
	Type       string `json:"type"`
	Expression string `json:"expression,omitempty"`
}

// ServiceMeta holds the service-level fields a user can set explicitly.
type ServiceMeta struct {
	ProtectThreshold float64
	Metadata         map[string]string
	Selector         Selector
	// Clusters holds the settings of the clusters that have explicit ones
	// (PUT /v1/ns/cluster). Like every stored value it is never modified
	// in place: writers build a new map.
	Clusters map[string]ClusterMeta
}

// Cluster returns the settings of cluster name, or the defaults (with
// defaultCheck as the health checker type) when it has none.
func (m *ServiceMeta) Cluster(name, defaultCheck string) ClusterMeta {
	if m != nil {
		if c, ok := m.Clusters[name]; ok {
			return c
		}
	}
	return DefaultClusterMeta(defaultCheck)
}

// WithCluster returns the settings m would have with cluster name's set
// to c, and whether that changes anything; m (nil: the service has no
// settings yet, so the defaults) is not modified. A new cluster beyond
// MaxClusterSettings is an error wrapping ErrInvalid (HTTP 400).
func (m *ServiceMeta) WithCluster(name string, c ClusterMeta) (ServiceMeta, bool, error) {
	next := ServiceMeta{Selector: Selector{Type: "none"}}
	if m != nil {
		next = *m
	}
	if cur, ok := next.Clusters[name]; ok && cur.Equal(&c) {
		return next, false, nil
	} else if !ok && len(next.Clusters) >= MaxClusterSettings {
		return next, false, invalidf("the service already has settings for %d clusters; the limit is %d", len(next.Clusters), MaxClusterSettings)
	}
	clusters := make(map[string]ClusterMeta, len(next.Clusters)+1)
	maps.Copy(clusters, next.Clusters)
	c.Metadata = maps.Clone(c.Metadata)
	clusters[name] = c
	next.Clusters = clusters
	return next, true, nil
}

// SortedKeys returns the map's keys in order; used wherever output or
// hashing must not depend on map iteration order.
func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
