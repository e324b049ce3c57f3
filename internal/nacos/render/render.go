package render

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/store"
)

// DefaultCacheMillis is the cacheMillis clients are told (Nacos
// defaultPushCacheMillis): how long they may keep a list before polling.
const DefaultCacheMillis = 10000

// Style selects the naming convention of a ServiceInfo.
type Style uint8

const (
	// V1 is the HTTP/UDP shape: "name" is the grouped name and "clusters"
	// echoes the request.
	V1 Style = iota
	// V2 is the gRPC shape: bare "name" plus "groupName", clusters "".
	V2
)

// Query selects what a ServiceInfo contains.
type Query struct {
	// Clusters is the raw comma-separated cluster filter; empty means all.
	Clusters    string
	HealthyOnly bool
	Style       Style
	CacheMillis int64
}

// commonKeys are the cache keys of the usual queries (no cluster filter,
// the default cacheMillis), by style and healthyOnly.
var commonKeys = func() (k [2][2]string) {
	for st := range 2 {
		for h := range 2 {
			k[st][h] = Query{Style: Style(st), HealthyOnly: h == 1, CacheMillis: DefaultCacheMillis}.cacheKey()
		}
	}
	return k
}()

// CacheKey identifies a rendering of one view for View.Rendered.
func (q Query) CacheKey() string {
	if q.Clusters == "" && q.CacheMillis == DefaultCacheMillis && q.Style <= V2 {
		h := 0
		if q.HealthyOnly {
			h = 1
		}
		return commonKeys[q.Style][h]
	}
	return q.cacheKey()
}

func (q Query) cacheKey() string {
	b := make([]byte, 0, len(q.Clusters)+8)
	b = append(b, byte('0'+q.Style))
	if q.HealthyOnly {
		b = append(b, 'h')
	} else {
		b = append(b, '-')
	}
	b = strconv.AppendInt(b, q.CacheMillis, 10)
	b = append(b, '|')
	b = append(b, q.Clusters...)
	return string(b)
}

// Select applies the Nacos read filters to a view: cluster membership,
// enabled only, and the protect threshold or healthyOnly. It returns the
// instances to show and whether the protect threshold was reached, in which
// case every returned instance must be shown healthy.
func Select(v *store.View, clusters string, healthyOnly bool) (hosts []*model.Instance, protect bool) {
	if v == nil {
		return nil, false
	}
	var want []string
	if c := strings.TrimSpace(clusters); c != "" {
		for _, p := range strings.Split(c, ",") {
			if p = strings.TrimSpace(p); p != "" {
				want = append(want, p)
			}
		}
	}
	healthy := 0
	hosts = make([]*model.Instance, 0, len(v.Instances))
	for _, in := range v.Instances {
		if !in.Enabled || (len(want) > 0 && !contains(want, in.Cluster)) {
			continue
		}
		if in.Healthy {
			healthy++
		}
		hosts = append(hosts, in)
	}
	if v.Meta != nil && v.Meta.ProtectThreshold > 0 && len(hosts) > 0 &&
		float64(healthy)/float64(len(hosts)) <= v.Meta.ProtectThreshold {
		return hosts, true
	}
	if healthyOnly {
		out := hosts[:0]
		for _, in := range hosts {
			if in.Healthy {
				out = append(out, in)
			}
		}
		hosts = out
	}
	return hosts, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ServiceInfo encodes the service as a Nacos ServiceInfo. v may be nil (an
// unknown service renders with no hosts). lastRefTime is used when v is nil.
func ServiceInfo(dst []byte, key model.ServiceKey, v *store.View, q Query, lastRefTime int64) []byte {
	hosts, protect := Select(v, q.Clusters, q.HealthyOnly)
	if v != nil {
		lastRefTime = v.LastRefTime
	}
	grouped := key.Grouped()
	dst = append(dst, `{"name":`...)
	if q.Style == V1 {
		dst = AppendString(dst, grouped)
	} else {
		dst = AppendString(dst, key.Name)
	}
	dst = append(dst, `,"groupName":`...)
	dst = AppendString(dst, key.Group)
	dst = append(dst, `,"clusters":`...)
	if q.Style == V1 {
		dst = AppendString(dst, q.Clusters)
	} else {
		dst = append(dst, `""`...)
	}
	dst = append(dst, `,"cacheMillis":`...)
	dst = strconv.AppendInt(dst, q.CacheMillis, 10)
	dst = append(dst, `,"lastRefTime":`...)
	dst = strconv.AppendInt(dst, lastRefTime, 10)
	dst = append(dst, `,"checksum":"","allIPs":false,"reachProtectionThreshold":`...)
	dst = strconv.AppendBool(dst, protect)
	dst = append(dst, `,"valid":true`...)
	if q.Style == V1 {
		dst = append(dst, `,"dom":`...)
		dst = AppendString(dst, grouped)
		dst = append(dst, `,"useSpecifiedURL":false,"env":""`...)
	}
	dst = append(dst, `,"hosts":[`...)
	for i, in := range hosts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendInstance(dst, in, key, protect || in.Healthy)
	}
	dst = append(dst, "]}"...)
	return dst
}

// AppendInstance encodes one instance as a Nacos Instance object.
func AppendInstance(dst []byte, in *model.Instance, key model.ServiceKey, healthy bool) []byte {
	dst = append(dst, `{"instanceId":`...)
	if in.InstanceID != "" {
		dst = AppendString(dst, in.InstanceID)
	} else {
		dst = AppendString(dst, model.DefaultInstanceID(in, key))
	}
	dst = append(dst, `,"ip":`...)
	dst = AppendString(dst, in.IP)
	dst = append(dst, `,"port":`...)
	dst = strconv.AppendInt(dst, int64(in.Port), 10)
	dst = append(dst, `,"weight":`...)
	dst = AppendFloat(dst, in.Weight)
	dst = append(dst, `,"healthy":`...)
	dst = strconv.AppendBool(dst, healthy)
	dst = append(dst, `,"enabled":`...)
	dst = strconv.AppendBool(dst, in.Enabled)
	dst = append(dst, `,"ephemeral":`...)
	dst = strconv.AppendBool(dst, in.Ephemeral)
	dst = append(dst, `,"valid":`...)
	dst = strconv.AppendBool(dst, healthy)
	dst = append(dst, `,"marked":false,"clusterName":`...)
	dst = AppendString(dst, in.Cluster)
	dst = append(dst, `,"serviceName":`...)
	dst = AppendString(dst, key.Grouped())
	dst = append(dst, `,"metadata":`...)
	dst = AppendMap(dst, in.Metadata)
	dst = append(dst, `,"instanceHeartBeatInterval":`...)
	dst = strconv.AppendInt(dst, in.HeartBeatIntervalMs(), 10)
	dst = append(dst, `,"instanceHeartBeatTimeOut":`...)
	dst = strconv.AppendInt(dst, in.HeartBeatTimeoutMs(), 10)
	dst = append(dst, `,"ipDeleteTimeout":`...)
	dst = strconv.AppendInt(dst, in.IPDeleteTimeoutMs(), 10)
	dst = append(dst, `,"instanceIdGenerator":"simple"}`...)
	return dst
}

// AppendMap encodes a string map as a JSON object with sorted keys.
func AppendMap(dst []byte, m map[string]string) []byte {
	dst = append(dst, '{')
	for i, k := range model.SortedKeys(m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		dst = AppendString(dst, m[k])
	}
	return append(dst, '}')
}

// AppendFloat encodes a float the way Java's Jackson does for doubles that
// hold whole numbers ("1.0"), so responses match what Nacos sends.
func AppendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "0.0"...)
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	for _, c := range dst[n:] {
		if c == '.' || c == 'e' || c == 'E' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

const hex = "0123456789abcdef"

// AppendString encodes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// in encoding/json.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
