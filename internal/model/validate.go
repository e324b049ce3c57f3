package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/distro-registry/distro/internal/jsonscan"
)

// Limits bounds what a request may carry. Every field has a default
// (DefaultLimits) and can be changed in the server configuration.
type Limits struct {
	// MaxNameLen bounds namespace, group, service and cluster names (bytes).
	MaxNameLen int `yaml:"max-name-len"`
	// MaxMetadataKeys bounds the number of metadata entries of an instance or service.
	MaxMetadataKeys int `yaml:"max-metadata-keys"`
	// MaxMetadataBytes bounds the summed length of all metadata keys and values.
	MaxMetadataBytes int `yaml:"max-metadata-bytes"`
	// MaxBodyBytes bounds an HTTP request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max-body-bytes"`
}

// DefaultLimits returns the limits used when the configuration sets none.
func DefaultLimits() Limits {
	return Limits{MaxNameLen: 255, MaxMetadataKeys: 64, MaxMetadataBytes: 16 << 10, MaxBodyBytes: 1 << 20}
}

// ProtocolLimits are the fixed maxima of replicated data: the largest
// values a configuration may set (config refuses more), and the only
// limits a replicated state machine decodes with. A configurable limit is
// an entry point's policy; applied to a log or a snapshot it would make
// nodes with different settings diverge, and a node restarted with lower
// limits drop data it had accepted.
func ProtocolLimits() Limits {
	return Limits{MaxNameLen: 1024, MaxMetadataKeys: 1024, MaxMetadataBytes: 256 << 10, MaxBodyBytes: 64 << 20}
}

// ErrInvalid is wrapped by every validation error, so callers can map any of
// them to HTTP 400 / INVALID_PARAM with errors.Is.
var ErrInvalid = errors.New("invalid parameter")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// nameChar reports whether c may appear in a namespace, group or service name.
// The set covers what real clients send (Dubbo uses ':' in service names,
// namespace ids are UUIDs) and excludes separators and control characters.
func nameChar(c byte) bool { return nameChars[c] }

var nameChars = func() (t [256]bool) {
	for c := range 256 {
		b := byte(c)
		t[c] = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '_' || b == '-' || b == '.' || b == ':'
	}
	return t
}()

// ValidateName checks one name component (namespace, group, bare service name
// or cluster) against the allowed characters and the length limit.
func (l Limits) ValidateName(what, s string) error {
	if s == "" {
		return invalidf("%s must not be empty", what)
	}
	if len(s) > l.MaxNameLen {
		return invalidf("%s is %d bytes long; the limit is %d", what, len(s), l.MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i]) {
			return invalidf("%s %q contains %q; allowed are letters, digits and _ - . :", what, s, rune(s[i]))
		}
	}
	if strings.Contains(s, "..") {
		return invalidf("%s %q must not contain \"..\"", what, s)
	}
	return nil
}

// ParseServiceKey builds a canonical key from the raw request parameters:
// namespace (blank means public), groupName (blank means DEFAULT_GROUP) and
// serviceName, which may be bare or grouped ("group@@name"). A grouped name
// takes precedence over groupName, as in Nacos's ServiceNameFilter.
func (l Limits) ParseServiceKey(namespace, group, serviceName string) (ServiceKey, error) {
	namespace = strings.TrimSpace(namespace)
	if namespace == "" {
		namespace = DefaultNamespace
	}
	serviceName = strings.TrimSpace(serviceName)
	if serviceName == "" {
		return ServiceKey{}, invalidf("Param 'serviceName' is required")
	}
	name := serviceName
	group = strings.TrimSpace(group)
	if group == "" {
		group = DefaultGroup
	}
	if i := strings.Index(serviceName, GroupSeparator); i >= 0 {
		g, rest := serviceName[:i], serviceName[i+len(GroupSeparator):]
		if strings.Contains(rest, GroupSeparator) {
			return ServiceKey{}, invalidf("Param 'serviceName' is illegal: %q has more than one %q", serviceName, GroupSeparator)
		}
		if g == "" {
			return ServiceKey{}, invalidf("Param 'serviceName' is illegal: group part of %q is empty", serviceName)
		}
		// The group part is taken as given: blank-means-default applies
		// only to the groupName parameter, so " @@x" is refused like "@@x".
		group, name = g, rest
	}
	k := ServiceKey{Namespace: namespace, Group: group, Name: name}
	if err := l.ValidateName("namespaceId", k.Namespace); err != nil {
		return ServiceKey{}, err
	}
	if err := l.ValidateName("groupName", k.Group); err != nil {
		return ServiceKey{}, err
	}
	if err := l.ValidateName("serviceName", k.Name); err != nil {
		return ServiceKey{}, err
	}
	return k, nil
}

// ValidateCluster checks a cluster name; blank means DEFAULT.
func (l Limits) ValidateCluster(c string) (string, error) {
	c = strings.TrimSpace(c)
	if c == "" {
		return DefaultCluster, nil
	}
	if err := l.ValidateName("clusterName", c); err != nil {
		return "", err
	}
	return c, nil
}

// ValidateIP accepts an IPv4 or IPv6 literal, or a DNS host name.
func ValidateIP(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidf("Param 'ip' is required")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", invalidf("ip %q must not carry a zone", s)
		}
		// The canonical form, without allocating when s already is one.
		var buf [64]byte
		if c := a.AppendTo(buf[:0]); string(c) != s {
			return string(c), nil
		}
		return s, nil
	}
	if !validHostname(s) {
		return "", invalidf("ip %q is neither an IP address nor a host name", s)
	}
	return s, nil
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// A name made only of digits and dots is a malformed IPv4 literal, not a host.
	return strings.Trim(s, "0123456789.") != ""
}

// ParsePort parses a port in 1..65535.
func ParsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, invalidf("Param 'port' is required")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalidf("port %q is not a number", s)
	}
	return n, ValidatePort(n)
}

// ValidatePort checks 1..65535.
func ValidatePort(n int) error {
	if n < 1 || n > 65535 {
		return invalidf("port %d is out of range 1-65535", n)
	}
	return nil
}

// ValidateWeight checks that w is finite and within 0..10000.
func ValidateWeight(w float64) error {
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 || w > 10000 {
		return invalidf("weight %v is out of range 0-10000", w)
	}
	return nil
}

// ParseWeight parses a weight; blank gives def.
func ParseWeight(s string, def float64) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	w, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, invalidf("weight %q is not a number", s)
	}
	return w, ValidateWeight(w)
}

// ParseBool parses a boolean parameter; blank gives def. Like Java's
// Boolean.parseBoolean, anything but "true" (any case) is false.
func ParseBool(s string, def bool) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	return strings.EqualFold(s, "true")
}

// ParseMetadata decodes metadata given as a JSON object or as "k1=v1,k2=v2".
// JSON scalars are kept as their string form, since clients decode metadata
// values as strings; nested values are rejected. Blank input gives nil.
// Keys and values are interned (see Intern).
func (l Limits) ParseMetadata(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var md map[string]string
	if strings.HasPrefix(s, "{") {
		var err error
		if md, err = parseJSONMetadata(s); err != nil {
			return nil, err
		}
	} else {
		md = make(map[string]string)
		for _, pair := range strings.Split(s, ",") {
			if pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			if !ok || k == "" {
				return nil, invalidf("metadata %q is neither a JSON object nor k=v pairs", s)
			}
			md[Intern(k)] = Intern(v)
		}
	}
	if err := l.ValidateMetadata(md); err != nil {
		return nil, err
	}
	return md, nil
}

// AtEOF reports whether dec has nothing but white space left. Use it after
// decoding one top-level value: json.Decoder.More alone misses a stray
// closing '}' or ']', which it treats as the end of an enclosing value.
func AtEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// jsonScalarString keeps a JSON scalar as a string: strings unescaped,
// null as "", numbers and booleans as their literal text.
func jsonScalarString(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", errors.New("empty")
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", err
		}
		return s, nil
	case '{', '[':
		return "", errors.New("must be a string, not an object or array")
	case 'n':
		return "", nil
	default: // number or boolean: keep its literal text
		return string(v), nil
	}
}

// metaPair is one metadata member as read: its key, the kind and text of
// its value.
type metaPair struct {
	k, raw string
	kind   jsonscan.Kind
}

// parseJSONMetadata decodes a metadata JSON object as encoding/json would
// decode it into map[string]json.RawMessage (a repeated key keeps its
// last value), then keeps scalar values as strings: strings unescaped,
// numbers and booleans as their literal text, null as "".
func parseJSONMetadata(s string) (map[string]string, error) {
	d := jsonscan.New(s)
	var buf [16]metaPair
	pairs := buf[:0]
	var index map[string]int // built once there are many keys
	if d.BeginObject() {
		for {
			k, ok := d.NextKey()
			if !ok {
				break
			}
			kind := d.Peek()
			raw, ok := d.Raw()
			if !ok {
				break
			}
			i := -1
			if index != nil {
				if j, dup := index[k]; dup {
					i = j
				}
			} else {
				for j := range pairs {
					if pairs[j].k == k {
						i = j
						break
					}
				}
			}
			if i >= 0 {
				pairs[i].raw, pairs[i].kind = raw, kind
				continue
			}
			pairs = append(pairs, metaPair{k: k, raw: raw, kind: kind})
			if index == nil && len(pairs) > len(buf) {
				index = make(map[string]int, 2*len(pairs))
				for j, p := range pairs {
					index[p.k] = j
				}
			} else if index != nil {
				index[k] = len(pairs) - 1
			}
		}
	}
	if err := d.Err(); err != nil {
		return nil, invalidf("metadata is not a valid JSON object: %v", err)
	}
	if d.End() != nil {
		return nil, invalidf("metadata has trailing data after the JSON object")
	}
	md := make(map[string]string, len(pairs))
	for _, p := range pairs {
		switch p.kind {
		case jsonscan.String:
			sd := jsonscan.New(p.raw)
			v, _ := sd.String() // validated by Raw
			md[Intern(p.k)] = Intern(v)
		case jsonscan.Object, jsonscan.Array:
			return nil, invalidf("metadata value of %q: must be a string, not an object or array", p.k)
		case jsonscan.Null:
			md[Intern(p.k)] = ""
		default: // number or boolean: keep its literal text
			md[Intern(p.k)] = Intern(p.raw)
		}
	}
	return md, nil
}

// ValidateMetadata enforces the metadata size limits.
func (l Limits) ValidateMetadata(md map[string]string) error {
	if len(md) > l.MaxMetadataKeys {
		return invalidf("metadata has %d keys; the limit is %d", len(md), l.MaxMetadataKeys)
	}
	total := 0
	for k, v := range md {
		if k == "" {
			return invalidf("metadata keys must not be empty")
		}
		total += len(k) + len(v)
	}
	if total > l.MaxMetadataBytes {
		return invalidf("metadata is %d bytes; the limit is %d", total, l.MaxMetadataBytes)
	}
	return nil
}

// ValidateInstance checks every field of a fully built instance. Entry points
// that build instances from other encodings (beat JSON, gRPC payloads) call it
// so that the store never holds anything an HTTP register would refuse.
func (l Limits) ValidateInstance(in *Instance) error {
	ip, err := ValidateIP(in.IP)
	if err != nil {
		return err
	}
	in.IP = ip
	if err := ValidatePort(in.Port); err != nil {
		return err
	}
	if err := ValidateWeight(in.Weight); err != nil {
		return err
	}
	c, err := l.ValidateCluster(in.Cluster)
	if err != nil {
		return err
	}
	in.Cluster = c
	if len(in.InstanceID) > 4*l.MaxNameLen {
		return invalidf("instanceId is too long")
	}
	if err := l.ValidateMetadata(in.Metadata); err != nil {
		return err
	}
	if in.Ephemeral {
		// Nacos 2 refuses these too: a client told to beat less often
		// than the timeout would be expired between its own beats.
		iv := in.HeartBeatIntervalMs()
		if iv > in.HeartBeatTimeoutMs() || iv > in.IPDeleteTimeoutMs() {
			return invalidf("instance 'heart beat interval' (%d ms) must not exceed 'heart beat timeout' (%d ms) and 'ip delete timeout' (%d ms)",
				iv, in.HeartBeatTimeoutMs(), in.IPDeleteTimeoutMs())
		}
	}
	return nil
}

// ParseProtectThreshold parses a protect threshold in 0..1; blank gives 0.
func ParseProtectThreshold(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, invalidf("protectThreshold %q must be a number in 0-1", s)
	}
	return f, nil
}

// ParseSelector decodes a selector JSON ({"type":"none"|"label","expression":...}).
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Selector{Type: "none"}, nil
	}
	var sel Selector
	if err := json.Unmarshal([]byte(s), &sel); err != nil {
		return Selector{}, invalidf("selector is not valid JSON: %v", err)
	}
	switch sel.Type {
	case "", "none":
		return Selector{Type: "none"}, nil
	case "label":
		if len(sel.Expression) > 4096 {
			return Selector{}, invalidf("selector expression is too long")
		}
		return sel, nil
	default:
		return Selector{}, invalidf("selector type %q is not supported (none, label)", sel.Type)
	}
}
