package model

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Health check types (Nacos HealthCheckType). MYSQL, which Nacos also
// knows, is refused: distro checks persistent instances with TCP connects
// and HTTP GETs only.
const (
	CheckTCP  = "TCP"
	CheckHTTP = "HTTP"
	CheckNone = "NONE"
)

// Bounds of cluster settings.
const (
	// MaxClusterSettings bounds the clusters of one service that carry
	// explicit settings.
	MaxClusterSettings = 128
	maxCheckPathLen    = 1024
	maxCheckHeadersLen = 4096
	maxCheckHeaders    = 32
	// DefaultCheckPort is Nacos's default healthyCheckPort.
	DefaultCheckPort = 80
	// Bounds of the per-cluster interval and timeout (distro extensions).
	MinCheckIntervalMs = 100
	MaxCheckIntervalMs = 3_600_000
	MinCheckTimeoutMs  = 10
	MaxCheckTimeoutMs  = 60_000
)

// HealthChecker is how the server checks the persistent instances of one
// cluster (Nacos AbstractHealthChecker and its Tcp, Http and None kinds).
type HealthChecker struct {
	// Type is CheckTCP, CheckHTTP or CheckNone.
	Type string
	// Path, Headers and ExpectedCode are used by HTTP checks. Path is an
	// absolute path with an optional query; Headers is Nacos's
	// "Name:value|Name:value" form; ExpectedCode is the one status that
	// counts as healthy.
	Path         string
	Headers      string
	ExpectedCode int
	// IntervalMs and TimeoutMs override the server's check period and
	// timeout for this cluster; 0 keeps the server's. (Distro extensions:
	// Nacos adapts both on its own.)
	IntervalMs int64
	TimeoutMs  int64
}

// ClusterMeta holds the settings of one cluster of a service (Nacos
// ClusterMetadata).
type ClusterMeta struct {
	HealthChecker HealthChecker
	// CheckPort is the port checked when UseInstancePort is false
	// (Nacos healthyCheckPort / checkPort).
	CheckPort int
	// UseInstancePort checks each instance's own port (Nacos
	// useInstancePortForCheck / useInstancePort4Check).
	UseInstancePort bool
	Metadata        map[string]string
}

// DefaultClusterMeta returns the settings of a cluster nobody configured:
// Nacos's port defaults, with checkType as the checker (the server's
// --health-check-default).
func DefaultClusterMeta(checkType string) ClusterMeta {
	return ClusterMeta{HealthChecker: HealthChecker{Type: checkType}, CheckPort: DefaultCheckPort, UseInstancePort: true}
}

// CheckPortFor returns the port a check of an instance on instancePort targets.
func (c *ClusterMeta) CheckPortFor(instancePort int) int {
	if c.UseInstancePort {
		return instancePort
	}
	return c.CheckPort
}

// Equal reports whether two cluster settings are the same.
func (c *ClusterMeta) Equal(o *ClusterMeta) bool {
	if c.HealthChecker != o.HealthChecker || c.CheckPort != o.CheckPort || c.UseInstancePort != o.UseInstancePort || len(c.Metadata) != len(o.Metadata) {
		return false
	}
	for k, v := range c.Metadata {
		if ov, ok := o.Metadata[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// Header is one parsed HTTP check header.
type Header struct{ Name, Value string }

// ParsedHeaders splits Headers into name/value pairs. Headers must have
// been validated (ValidateHealthChecker).
func (h *HealthChecker) ParsedHeaders() []Header {
	if strings.TrimSpace(h.Headers) == "" {
		return nil
	}
	var out []Header
	for _, part := range strings.Split(h.Headers, "|") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, value, _ := strings.Cut(part, ":")
		out = append(out, Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return out
}

// MarshalJSON renders the checker as Nacos does ({"type":"TCP"}, or the
// HTTP fields), adding the distro extensions only when they are set.
func (h HealthChecker) MarshalJSON() ([]byte, error) {
	b := []byte(`{"type":`)
	b = appendJSONString(b, h.Type)
	if h.Type == CheckHTTP {
		b = append(b, `,"path":`...)
		b = appendJSONString(b, h.Path)
		b = append(b, `,"headers":`...)
		b = appendJSONString(b, h.Headers)
		b = append(b, `,"expectedResponseCode":`...)
		b = strconv.AppendInt(b, int64(h.ExpectedCode), 10)
	}
	if h.IntervalMs != 0 {
		b = append(b, `,"intervalMillis":`...)
		b = strconv.AppendInt(b, h.IntervalMs, 10)
	}
	if h.TimeoutMs != 0 {
		b = append(b, `,"timeoutMillis":`...)
		b = strconv.AppendInt(b, h.TimeoutMs, 10)
	}
	return append(b, '}'), nil
}

func appendJSONString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// ParseHealthChecker decodes and validates the healthChecker JSON of the
// Nacos cluster API: {"type":"TCP"}, {"type":"NONE"} or {"type":"HTTP",
// "path":"/health","headers":"A:b|C:d","expectedResponseCode":200}, plus
// the distro extensions "intervalMillis" and "timeoutMillis". Unknown
// fields are ignored, as Nacos does; the type is case-insensitive.
func ParseHealthChecker(s string) (HealthChecker, error) {
	var raw struct {
		Type           string          `json:"type"`
		Path           string          `json:"path"`
		Headers        string          `json:"headers"`
		ExpectedCode   json.RawMessage `json:"expectedResponseCode"`
		IntervalMillis json.RawMessage `json:"intervalMillis"`
		TimeoutMillis  json.RawMessage `json:"timeoutMillis"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&raw); err != nil {
		return HealthChecker{}, invalidf("healthChecker is not a valid JSON object: %v", err)
	}
	if !AtEOF(dec) {
		return HealthChecker{}, invalidf("healthChecker has trailing data after the JSON object")
	}
	h := HealthChecker{Type: strings.ToUpper(strings.TrimSpace(raw.Type)), Path: raw.Path, Headers: raw.Headers}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int64
	}{{"expectedResponseCode", raw.ExpectedCode, nil}, {"intervalMillis", raw.IntervalMillis, &h.IntervalMs}, {"timeoutMillis", raw.TimeoutMillis, &h.TimeoutMs}} {
		if len(f.raw) == 0 {
			continue
		}
		str, err := jsonScalarString(f.raw)
		if err != nil {
			return HealthChecker{}, invalidf("healthChecker %s: %v", f.name, err)
		}
		if str == "" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
		if err != nil {
			return HealthChecker{}, invalidf("healthChecker %s %q is not an integer", f.name, str)
		}
		if f.dst == nil {
			if n < 100 || n > 599 {
				return HealthChecker{}, invalidf("healthChecker expectedResponseCode %d is not an HTTP status (100-599)", n)
			}
			h.ExpectedCode = int(n)
		} else {
			*f.dst = n
		}
	}
	if h.Type != CheckHTTP {
		// Only HTTP checks use these; keep stored settings canonical.
		h.Path, h.Headers, h.ExpectedCode = "", "", 0
	} else {
		if h.ExpectedCode == 0 {
			h.ExpectedCode = 200
		}
		if strings.TrimSpace(h.Path) == "" {
			h.Path = "/"
		}
	}
	return h, ValidateHealthChecker(&h)
}

// ValidateHealthChecker checks a health checker from any source (client or
// peer). The HTTP path can only name a resource on the instance itself: it
// is an absolute path, never a URL or a network-path reference.
func ValidateHealthChecker(h *HealthChecker) error {
	switch h.Type {
	case CheckTCP, CheckNone:
		if h.Path != "" || h.Headers != "" || h.ExpectedCode != 0 {
			return invalidf("healthChecker %s takes no path, headers or expected code", h.Type)
		}
	case CheckHTTP:
		if err := validateCheckPath(h.Path); err != nil {
			return err
		}
		if err := validateCheckHeaders(h.Headers); err != nil {
			return err
		}
		if h.ExpectedCode < 100 || h.ExpectedCode > 599 {
			return invalidf("healthChecker expectedResponseCode %d is not an HTTP status (100-599)", h.ExpectedCode)
		}
	case "MYSQL":
		return invalidf("healthChecker type MYSQL is not supported (TCP, HTTP, NONE)")
	case "":
		return invalidf("healthChecker needs a type (TCP, HTTP or NONE)")
	default:
		return invalidf("healthChecker type %q is not supported (TCP, HTTP, NONE)", h.Type)
	}
	if h.IntervalMs != 0 && (h.IntervalMs < MinCheckIntervalMs || h.IntervalMs > MaxCheckIntervalMs) {
		return invalidf("healthChecker intervalMillis %d is outside %d-%d", h.IntervalMs, MinCheckIntervalMs, MaxCheckIntervalMs)
	}
	if h.TimeoutMs != 0 && (h.TimeoutMs < MinCheckTimeoutMs || h.TimeoutMs > MaxCheckTimeoutMs) {
		return invalidf("healthChecker timeoutMillis %d is outside %d-%d", h.TimeoutMs, MinCheckTimeoutMs, MaxCheckTimeoutMs)
	}
	return nil
}

func validateCheckPath(p string) error {
	if len(p) > maxCheckPathLen {
		return invalidf("healthChecker path is %d bytes long; the limit is %d", len(p), maxCheckPathLen)
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return invalidf("healthChecker path %q must be an absolute path starting with a single '/'", p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '#' || c == '\\' {
			return invalidf("healthChecker path %q contains %q", p, rune(c))
		}
	}
	u, err := url.ParseRequestURI(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return invalidf("healthChecker path %q is not a plain path", p)
	}
	return nil
}

func validateCheckHeaders(s string) error {
	if len(s) > maxCheckHeadersLen {
		return invalidf("healthChecker headers are %d bytes long; the limit is %d", len(s), maxCheckHeadersLen)
	}
	n := 0
	for _, part := range strings.Split(s, "|") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if n++; n > maxCheckHeaders {
			return invalidf("healthChecker has more than %d headers", maxCheckHeaders)
		}
		name, value, ok := strings.Cut(part, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return invalidf("healthChecker header %q is not Name:value", part)
		}
		for i := 0; i < len(name); i++ {
			if !tokenChar(name[i]) {
				return invalidf("healthChecker header name %q contains %q", name, rune(name[i]))
			}
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return invalidf("healthChecker header %q has a control character in its value", name)
			}
		}
	}
	return nil
}

// tokenChar reports whether c may appear in an HTTP header name (RFC 9110 tchar).
func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ValidateClusterMeta checks cluster settings from any source.
func (l Limits) ValidateClusterMeta(c *ClusterMeta) error {
	if err := ValidateHealthChecker(&c.HealthChecker); err != nil {
		return err
	}
	if c.CheckPort < 0 || c.CheckPort > 65535 || (!c.UseInstancePort && c.CheckPort == 0) {
		return invalidf("checkPort %d must be in 1-65535 (0 is allowed only with useInstancePort4Check=true)", c.CheckPort)
	}
	return l.ValidateMetadata(c.Metadata)
}

// ValidateClusters checks the cluster settings of a service.
func (l Limits) ValidateClusters(cs map[string]ClusterMeta) error {
	if len(cs) > MaxClusterSettings {
		return invalidf("service has settings for %d clusters; the limit is %d", len(cs), MaxClusterSettings)
	}
	for name, c := range cs {
		if err := l.ValidateName("clusterName", name); err != nil {
			return err
		}
		if err := l.ValidateClusterMeta(&c); err != nil {
			return fmt.Errorf("cluster %s: %w", name, err)
		}
	}
	return nil
}
