package render_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/store"
)

var key = model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

func host(ip string, cluster string, healthy, enabled bool) *model.Instance {
	return &model.Instance{IP: ip, Port: 8080, Weight: 1, Healthy: healthy, Enabled: enabled, Ephemeral: true, Cluster: cluster}
}

func view(meta *model.ServiceMeta, hosts ...*model.Instance) *store.View {
	return &store.View{Key: key, Revision: 7, LastRefTime: 1732550000000, Meta: meta, Instances: hosts}
}

// serviceInfo mirrors what the Go SDKs decode (metadata as map[string]string,
// integers as integers), so a shape error fails the decode.
type serviceInfo struct {
	Name                     string     `json:"name"`
	GroupName                string     `json:"groupName"`
	Clusters                 string     `json:"clusters"`
	CacheMillis              uint64     `json:"cacheMillis"`
	LastRefTime              uint64     `json:"lastRefTime"`
	Checksum                 string     `json:"checksum"`
	AllIPs                   bool       `json:"allIPs"`
	ReachProtectionThreshold bool       `json:"reachProtectionThreshold"`
	Valid                    bool       `json:"valid"`
	Dom                      *string    `json:"dom"`
	Hosts                    []instInfo `json:"hosts"`
}

type instInfo struct {
	InstanceID                string            `json:"instanceId"`
	IP                        string            `json:"ip"`
	Port                      uint64            `json:"port"`
	Weight                    float64           `json:"weight"`
	Healthy                   bool              `json:"healthy"`
	Enabled                   bool              `json:"enabled"`
	Ephemeral                 bool              `json:"ephemeral"`
	ClusterName               string            `json:"clusterName"`
	ServiceName               string            `json:"serviceName"`
	Metadata                  map[string]string `json:"metadata"`
	InstanceHeartBeatInterval int64             `json:"instanceHeartBeatInterval"`
	InstanceHeartBeatTimeOut  int64             `json:"instanceHeartBeatTimeOut"`
	IPDeleteTimeout           int64             `json:"ipDeleteTimeout"`
}

func decode(t *testing.T, b []byte) serviceInfo {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	var si serviceInfo
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&si); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return si
}

func TestServiceInfoV1(t *testing.T) {
	in := host("10.0.0.1", "a", true, true)
	in.Metadata = map[string]string{"version": "1", "zone": "x\"y", model.MetaHeartBeatInterval: "2000", model.MetaHeartBeatTimeout: "6000"}
	in2 := host("10.0.0.2", "b", true, true)
	in2.InstanceID = "custom-id"
	in2.Weight = 0.5
	q := render.Query{Clusters: "a,b", Style: render.V1, CacheMillis: 10000}
	b := render.ServiceInfo(nil, key, view(nil, in, in2, host("10.0.0.3", "c", true, true)), q, 0)
	si := decode(t, b)
	if si.Name != "DEFAULT_GROUP@@demo" || si.GroupName != "DEFAULT_GROUP" || si.Clusters != "a,b" ||
		si.Dom == nil || *si.Dom != "DEFAULT_GROUP@@demo" || si.CacheMillis != 10000 || si.LastRefTime != 1732550000000 ||
		!si.Valid || si.ReachProtectionThreshold {
		t.Fatalf("V1 header: %s", b)
	}
	if len(si.Hosts) != 2 {
		t.Fatalf("cluster filter: %d hosts in %s", len(si.Hosts), b)
	}
	h := si.Hosts[0]
	if h.InstanceID != "10.0.0.1#8080#a#DEFAULT_GROUP@@demo" || h.IP != "10.0.0.1" || h.Port != 8080 || h.Weight != 1 ||
		!h.Healthy || !h.Enabled || !h.Ephemeral || h.ClusterName != "a" || h.ServiceName != "DEFAULT_GROUP@@demo" ||
		h.Metadata["zone"] != "x\"y" || h.Metadata["version"] != "1" ||
		h.InstanceHeartBeatInterval != 2000 || h.InstanceHeartBeatTimeOut != 6000 || h.IPDeleteTimeout != 30000 {
		t.Fatalf("host 0: %+v", h)
	}
	if si.Hosts[1].InstanceID != "custom-id" || si.Hosts[1].Weight != 0.5 {
		t.Fatalf("host 1: %+v", si.Hosts[1])
	}
	// Jackson prints whole doubles as 1.0; some clients compare text.
	if !bytes.Contains(b, []byte(`"weight":1.0,`)) || !bytes.Contains(b, []byte(`"weight":0.5,`)) {
		t.Fatalf("weights not rendered like Jackson: %s", b)
	}
	if !bytes.Contains(b, []byte(`"metadata":{}`)) && in2.Metadata == nil {
		t.Fatalf("nil metadata not rendered as {}: %s", b)
	}
}

func TestServiceInfoV2(t *testing.T) {
	q := render.Query{Clusters: "a", Style: render.V2, CacheMillis: 3000}
	b := render.ServiceInfo(nil, key, view(nil, host("10.0.0.1", "a", true, true), host("10.0.0.2", "b", true, true)), q, 0)
	si := decode(t, b)
	if si.Name != "demo" || si.GroupName != "DEFAULT_GROUP" || si.Clusters != "" || si.Dom != nil || si.CacheMillis != 3000 {
		t.Fatalf("V2 header: %s", b)
	}
	// The cluster filter still applies; only the echo is blank.
	if len(si.Hosts) != 1 || si.Hosts[0].ServiceName != "DEFAULT_GROUP@@demo" {
		t.Fatalf("V2 hosts: %s", b)
	}
}

func TestServiceInfoUnknownService(t *testing.T) {
	q := render.Query{Clusters: "x", Style: render.V1, CacheMillis: 10000}
	b := render.ServiceInfo(nil, key, nil, q, 42)
	si := decode(t, b)
	if si.LastRefTime != 42 || si.Hosts == nil || len(si.Hosts) != 0 || si.Clusters != "x" {
		t.Fatalf("unknown service: %s", b)
	}
	if !bytes.Contains(b, []byte(`"hosts":[]`)) {
		t.Fatalf("hosts must be [] not null: %s", b)
	}
}

func TestSelect(t *testing.T) {
	mk := func(names ...string) []string { return names }
	ips := func(hs []*model.Instance) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.IP)
		}
		return out
	}
	healthyA := host("1.0.0.1", "a", true, true)
	sickA := host("1.0.0.2", "a", false, true)
	sickB := host("1.0.0.3", "b", false, true)
	disabledA := host("1.0.0.4", "a", true, false)
	disabledSick := host("1.0.0.5", "b", false, false)
	all := []*model.Instance{healthyA, sickA, sickB, disabledA, disabledSick}
	pt := func(f float64) *model.ServiceMeta { return &model.ServiceMeta{ProtectThreshold: f} }
	tests := []struct {
		name        string
		meta        *model.ServiceMeta
		clusters    string
		healthyOnly bool
		want        []string
		protect     bool
	}{
		{"all enabled", nil, "", false, mk("1.0.0.1", "1.0.0.2", "1.0.0.3"), false},
		{"healthy only", nil, "", true, mk("1.0.0.1"), false},
		{"cluster a", nil, "a", false, mk("1.0.0.1", "1.0.0.2"), false},
		{"clusters with spaces", nil, " b , a ,", false, mk("1.0.0.1", "1.0.0.2", "1.0.0.3"), false},
		{"unknown cluster", nil, "zzz", false, nil, false},
		{"threshold reached", pt(0.5), "", false, mk("1.0.0.1", "1.0.0.2", "1.0.0.3"), true},
		{"threshold reached overrides healthyOnly", pt(0.5), "", true, mk("1.0.0.1", "1.0.0.2", "1.0.0.3"), true},
		{"threshold not reached", pt(0.3), "", true, mk("1.0.0.1"), false},
		{"threshold zero", pt(0), "", true, mk("1.0.0.1"), false},
		{"threshold per cluster filter", pt(0.4), "a", true, mk("1.0.0.1"), false},
		{"threshold at equality", pt(0.5), "a", true, mk("1.0.0.1", "1.0.0.2"), true},
		{"threshold on cluster b", pt(0.5), "b", false, mk("1.0.0.3"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hosts, protect := render.Select(view(tt.meta, all...), tt.clusters, tt.healthyOnly)
			if strings.Join(ips(hosts), ",") != strings.Join(tt.want, ",") || protect != tt.protect {
				t.Fatalf("Select = %v protect=%v, want %v protect=%v", ips(hosts), protect, tt.want, tt.protect)
			}
		})
	}
	if hosts, protect := render.Select(nil, "", false); hosts != nil || protect {
		t.Fatal("Select(nil)")
	}
	// Select must not modify the view it filters.
	v := view(nil, all...)
	render.Select(v, "", true)
	if strings.Join(ips(v.Instances), ",") != "1.0.0.1,1.0.0.2,1.0.0.3,1.0.0.4,1.0.0.5" {
		t.Fatalf("Select modified the view: %v", ips(v.Instances))
	}
}

func TestServiceInfoProtectThreshold(t *testing.T) {
	v := view(&model.ServiceMeta{ProtectThreshold: 0.9}, host("1.0.0.1", "a", true, true), host("1.0.0.2", "a", false, true),
		host("1.0.0.3", "a", false, false))
	si := decode(t, render.ServiceInfo(nil, key, v, render.Query{Style: render.V1, HealthyOnly: true}, 0))
	if !si.ReachProtectionThreshold || len(si.Hosts) != 2 {
		t.Fatalf("protect: %+v", si)
	}
	for _, h := range si.Hosts {
		if !h.Healthy || !h.Enabled {
			t.Fatalf("under protection every returned host is healthy and enabled: %+v", h)
		}
	}
	// Without protection an unhealthy host is shown unhealthy.
	si = decode(t, render.ServiceInfo(nil, key, view(nil, host("1.0.0.2", "a", false, true)), render.Query{Style: render.V1}, 0))
	if si.ReachProtectionThreshold || len(si.Hosts) != 1 || si.Hosts[0].Healthy {
		t.Fatalf("no protect: %+v", si)
	}
}

func TestCacheKey(t *testing.T) {
	qs := []render.Query{
		{}, {Clusters: "a"}, {Clusters: "a,b"}, {HealthyOnly: true}, {Style: render.V2},
		{CacheMillis: 1}, {CacheMillis: 11}, {Clusters: "1|", CacheMillis: 1}, {Clusters: "|", CacheMillis: 11},
	}
	seen := map[string]int{}
	for i, q := range qs {
		k := q.CacheKey()
		if j, ok := seen[k]; ok {
			t.Errorf("queries %d and %d share cache key %q", j, i, k)
		}
		seen[k] = i
	}
}

func TestAppendFloat(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{
		{1, "1.0"}, {0, "0.0"}, {0.5, "0.5"}, {10000, "10000.0"}, {2.25, "2.25"}, {1e21, "1e+21"},
		{1e-7, "1e-07"}, {math.NaN(), "0.0"}, {math.Inf(1), "0.0"},
	} {
		got := string(render.AppendFloat([]byte("x"), tt.f))
		if got != "x"+tt.want {
			t.Errorf("AppendFloat(%v) = %q, want %q", tt.f, got, tt.want)
		}
		if !json.Valid([]byte(tt.want)) {
			t.Errorf("%q is not a JSON number", tt.want)
		}
	}
}

func TestAppendMap(t *testing.T) {
	got := string(render.AppendMap(nil, map[string]string{"b": "2", "a": "1", "c\n": "\x00"}))
	if got != `{"a":"1","b":"2","c\n":"\u0000"}` {
		t.Fatalf("AppendMap = %s", got)
	}
	if got := string(render.AppendMap(nil, nil)); got != "{}" {
		t.Fatalf("AppendMap(nil) = %s", got)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		in      string
		literal string // expected encoding, "" to skip the literal check
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"uote`, `"q\"uote"`},
		{`back\slash`, `"back\\slash"`},
		{"nl\ncr\rtab\t", `"nl\ncr\rtab\t"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"<a>&", `"<a>&"`},
		{"é中文🙂", `"é中文🙂"`},
		{"line\u2028sep\u2029", `"line\u2028sep\u2029"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"\xc3", `"\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // a UTF-16 surrogate encoded in UTF-8 is invalid
		{"trail\xe2\x82", ""},
	}
	for _, tt := range tests {
		out := render.AppendString([]byte("prefix:"), tt.in)
		if !bytes.HasPrefix(out, []byte("prefix:")) {
			t.Fatalf("AppendString dropped dst")
		}
		out = out[len("prefix:"):]
		if tt.literal != "" && string(out) != tt.literal {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, out, tt.literal)
		}
		checkAgainstJSON(t, tt.in, out)
	}
}

// checkAgainstJSON asserts that out is valid JSON that decodes to what
// encoding/json would produce for s (s itself when s is valid UTF-8).
func checkAgainstJSON(t testing.TB, s string, out []byte) {
	t.Helper()
	var got string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("AppendString(%q) = %s: not a JSON string: %v", s, out, err)
	}
	ref, _ := json.Marshal(s)
	var want string
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("AppendString(%q) decodes to %q, encoding/json gives %q", s, got, want)
	}
	if utf8.ValidString(s) && got != s {
		t.Fatalf("AppendString(%q) decodes to %q", s, got)
	}
	if bytes.ContainsAny(out, "\u2028\u2029") {
		t.Fatalf("AppendString(%q) left a raw line separator: %s", s, out)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f", "\u2028\u2029", "\xff", "é🙂", "\xed\xa0\x80", "a\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAgainstJSON(t, s, render.AppendString(nil, s))
	})
}
