package model

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestParseServiceKey(t *testing.T) {
	l := DefaultLimits()
	long := strings.Repeat("a", l.MaxNameLen+1)
	max := strings.Repeat("a", l.MaxNameLen)
	tests := []struct {
		name          string
		ns, group, sn string
		want          ServiceKey
		wantErr       string // substring of the message; "" means success
	}{
		{"grouped", "", "", "DEFAULT_GROUP@@demo", ServiceKey{"public", "DEFAULT_GROUP", "demo"}, ""},
		{"grouped overrides groupName", "ns1", "other", "g1@@demo", ServiceKey{"ns1", "g1", "demo"}, ""},
		{"bare with group", "", "g2", "demo", ServiceKey{"public", "g2", "demo"}, ""},
		{"bare default group", "", "", "demo", ServiceKey{"public", "DEFAULT_GROUP", "demo"}, ""},
		{"blank namespace", "   ", "", "demo", ServiceKey{"public", "DEFAULT_GROUP", "demo"}, ""},
		{"blank group", "", "  ", "demo", ServiceKey{"public", "DEFAULT_GROUP", "demo"}, ""},
		{"trimmed service name", "", "", "  g@@demo  ", ServiceKey{"public", "g", "demo"}, ""},
		{"uuid namespace", "6f1c2a7e-3b1d-4c5e-9f00-0123456789ab", "", "demo", ServiceKey{"6f1c2a7e-3b1d-4c5e-9f00-0123456789ab", "DEFAULT_GROUP", "demo"}, ""},
		{"dubbo name", "", "", "providers:com.example.Foo:1.0.0:", ServiceKey{"public", "DEFAULT_GROUP", "providers:com.example.Foo:1.0.0:"}, ""},
		{"max length", "", "", max, ServiceKey{"public", "DEFAULT_GROUP", max}, ""},

		{"missing", "", "", "", ServiceKey{}, "serviceName' is required"},
		{"blank", "", "", "   ", ServiceKey{}, "serviceName' is required"},
		{"two separators", "", "", "a@@b@@c", ServiceKey{}, "more than one"},
		{"empty group part", "", "", "@@x", ServiceKey{}, "group part"},
		{"blank group part", "", "", " @@x", ServiceKey{}, "group part"},
		{"tab group part", "", "", "a\t@@x", ServiceKey{}, "groupName"},
		{"empty name part", "", "", "g@@", ServiceKey{}, "serviceName must not be empty"},
		{"too long name", "", "", long, ServiceKey{}, "limit is 255"},
		{"too long group", "", long, "x", ServiceKey{}, "groupName is 256 bytes"},
		{"too long namespace", long, "", "x", ServiceKey{}, "namespaceId is 256 bytes"},
		{"NUL", "", "", "a\x00b", ServiceKey{}, "contains"},
		{"control char", "", "", "a\x07b", ServiceKey{}, "contains"},
		{"slash", "", "", "a/b", ServiceKey{}, "contains"},
		{"dotdot", "", "", "..", ServiceKey{}, "\"..\""},
		{"dotdot inside", "", "", "a..b", ServiceKey{}, "\"..\""},
		{"dotdot namespace", "..", "", "x", ServiceKey{}, "namespaceId"},
		{"dotdot group", "", "", "..@@x", ServiceKey{}, "groupName"},
		{"hashes", "", "", "a##b", ServiceKey{}, "contains"},
		{"single at", "", "", "a@b", ServiceKey{}, "contains"},
		{"space inside", "", "", "a b", ServiceKey{}, "contains"},
		{"space in group part", "", "", "g @@x", ServiceKey{}, "groupName"},
		{"unicode", "", "", "服务", ServiceKey{}, "contains"},
		{"confusable", "", "", "dеmo", ServiceKey{}, "contains"}, // Cyrillic е
		{"bad namespace", "a/b", "", "x", ServiceKey{}, "namespaceId"},
		{"bad group", "", "a b", "x", ServiceKey{}, "groupName"},
		{"invalid utf8", "", "", "a\xffb", ServiceKey{}, "contains"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.ParseServiceKey(tt.ns, tt.group, tt.sn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseServiceKey(%q, %q, %q): %v", tt.ns, tt.group, tt.sn, err)
				}
				if got != tt.want {
					t.Fatalf("ParseServiceKey(%q, %q, %q) = %+v, want %+v", tt.ns, tt.group, tt.sn, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseServiceKey(%q, %q, %q) = %+v, want error containing %q", tt.ns, tt.group, tt.sn, got, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if got != (ServiceKey{}) {
				t.Errorf("on error the key must be zero, got %+v", got)
			}
		})
	}
}

func TestServiceKeyForms(t *testing.T) {
	k := ServiceKey{Namespace: "public", Group: "g", Name: "s"}
	if got := k.Grouped(); got != "g@@s" {
		t.Errorf("Grouped = %q", got)
	}
	if got := k.String(); got != "public##g@@s" {
		t.Errorf("String = %q", got)
	}
	keys := []ServiceKey{{"a", "a", "a"}, {"a", "a", "b"}, {"a", "b", "a"}, {"b", "a", "a"}}
	for i := range keys {
		for j := range keys {
			if got, want := keys[i].Less(keys[j]), i < j; got != want {
				t.Errorf("%v.Less(%v) = %v, want %v", keys[i], keys[j], got, want)
			}
		}
	}
	iks := []InstanceKey{{"10.0.0.1", 80, "A"}, {"10.0.0.1", 80, "B"}, {"10.0.0.1", 81, "A"}, {"10.0.0.2", 1, "A"}}
	for i := range iks {
		for j := range iks {
			if got, want := iks[i].Less(iks[j]), i < j; got != want {
				t.Errorf("%v.Less(%v) = %v, want %v", iks[i], iks[j], got, want)
			}
		}
	}
	if got := iks[0].String(); got != "10.0.0.1#80#A" {
		t.Errorf("InstanceKey.String = %q", got)
	}
	in := &Instance{IP: "10.0.0.1", Port: 8080, Cluster: "DEFAULT"}
	if got := DefaultInstanceID(in, ServiceKey{"public", "DEFAULT_GROUP", "demo"}); got != "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@demo" {
		t.Errorf("DefaultInstanceID = %q", got)
	}
}

func TestValidateCluster(t *testing.T) {
	l := DefaultLimits()
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"", "DEFAULT", true},
		{"  ", "DEFAULT", true},
		{"c1", "c1", true},
		{" c1 ", "c1", true},
		{"a,b", "", false},
		{"a b", "", false},
		{strings.Repeat("c", 256), "", false},
	} {
		got, err := l.ValidateCluster(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ValidateCluster(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestValidateIP(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"10.0.0.1", "10.0.0.1", true},
		{" 10.0.0.1 ", "10.0.0.1", true},
		{"::1", "::1", true},
		{"2001:DB8::1", "2001:db8::1", true}, // canonical form, so the key is unique
		{"2001:0db8:0000::0001", "2001:db8::1", true},
		{"::ffff:10.0.0.1", "::ffff:10.0.0.1", true},
		{"localhost", "localhost", true},
		{"svc-1.example.com", "svc-1.example.com", true},
		{"a1", "a1", true},
		{"", "", false},
		{"   ", "", false},
		{"999.1.1.1", "", false},
		{"1.2.3", "", false},
		{"10.0.0.01", "", false},
		{"1.2.3.4.5", "", false},
		{"fe80::1%eth0", "", false},
		{"-host", "", false},
		{"host-", "", false},
		{"a..b", "", false},
		{"host.", "", false},
		{"under_score", "", false},
		{"a b", "", false},
		{"a/b", "", false},
		{"a\x00b", "", false},
		{"10.0.0.1:80", "", false},
		{"[::1]", "", false},
		{strings.Repeat("a", 64), "", false},
		{strings.Repeat("a.", 127) + "a", "", false}, // 255 bytes
		{"ホスト", "", false},
	}
	for _, tt := range tests {
		got, err := ValidateIP(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ValidateIP(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateIP(%q) = %q, want error", tt.in, got)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateIP(%q) error %v does not wrap ErrInvalid", tt.in, err)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1", 1, true},
		{"80", 80, true},
		{" 8080 ", 8080, true},
		{"65535", 65535, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"65536", 0, false},
		{"", 0, false},
		{"80a", 0, false},
		{"8.0", 0, false},
		{"0x50", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ParsePort(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		} else if err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePort(%q) = %d, %v; want an ErrInvalid", tt.in, got, err)
		}
	}
}

func TestParseWeight(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"", 1, true},
		{"  ", 1, true},
		{"0", 0, true},
		{"0.5", 0.5, true},
		{"10000", 10000, true},
		{" 2 ", 2, true},
		{"NaN", 0, false},
		{"nan", 0, false},
		{"Inf", 0, false},
		{"+Inf", 0, false},
		{"-Inf", 0, false},
		{"-1", 0, false},
		{"-0.0001", 0, false},
		{"10000.1", 0, false},
		{"1e400", 0, false},
		{"abc", 0, false},
		{"1,5", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseWeight(tt.in, 1)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ParseWeight(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		} else if err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseWeight(%q) = %v, %v; want an ErrInvalid", tt.in, got, err)
		}
	}
	for _, w := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 10000.0001} {
		if ValidateWeight(w) == nil {
			t.Errorf("ValidateWeight(%v) accepted", w)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, tt := range []struct {
		in       string
		def, out bool
	}{
		{"", true, true}, {"", false, false}, {"true", false, true}, {"TRUE", false, true},
		{" True ", false, true}, {"false", true, false}, {"yes", true, false}, {"1", true, false},
	} {
		if got := ParseBool(tt.in, tt.def); got != tt.out {
			t.Errorf("ParseBool(%q, %v) = %v", tt.in, tt.def, got)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	l := DefaultLimits()
	manyKeys := make([]string, 0, 65)
	for i := range 65 {
		manyKeys = append(manyKeys, fmt.Sprintf("k%d=v", i))
	}
	big := strings.Repeat("x", l.MaxMetadataBytes)
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"blank", "", nil, ""},
		{"spaces", "   ", nil, ""},
		{"empty object", "{}", map[string]string{}, ""},
		{"strings", `{"a":"1","b":"x y"}`, map[string]string{"a": "1", "b": "x y"}, ""},
		{"scalars", `{"n":42,"f":-1.5e3,"t":true,"f2":false,"z":null}`,
			map[string]string{"n": "42", "f": "-1.5e3", "t": "true", "f2": "false", "z": ""}, ""},
		{"escapes", `{"u":"\u00e9\n\"q\""}`, map[string]string{"u": "é\n\"q\""}, ""},
		{"whitespace", " \n{ \"a\" : \"b\" } \n", map[string]string{"a": "b"}, ""},
		{"pairs", "k=v,k2=v2", map[string]string{"k": "v", "k2": "v2"}, ""},
		{"pairs empty value", "k=,k2=v2", map[string]string{"k": "", "k2": "v2"}, ""},
		{"pairs with equals in value", "k=a=b", map[string]string{"k": "a=b"}, ""},
		{"pairs trailing comma", "k=v,", map[string]string{"k": "v"}, ""},
		{"max keys", strings.Join(manyKeys[:64], ","), nil, ""},

		{"nested object", `{"a":{"b":"c"}}`, nil, "not an object or array"},
		{"nested array", `{"a":["b"]}`, nil, "not an object or array"},
		{"truncated", `{"a":"b"`, nil, "not a valid JSON object"},
		{"not an object", `{"a"}`, nil, "not a valid JSON object"},
		{"trailing object", `{"a":"b"}{"c":"d"}`, nil, "trailing"},
		{"trailing garbage", `{"a":"b"} x`, nil, "trailing"},
		{"trailing brace", `{"a":"b"}}`, nil, "trailing"},
		{"trailing bracket", `{"a":"b"}]`, nil, "trailing"},
		{"pair without equals", "k", nil, "neither"},
		{"pair empty key", "=v", nil, "neither"},
		{"json array", `["a"]`, nil, "neither"},
		{"empty key json", `{"":"v"}`, nil, "must not be empty"},
		{"too many keys", strings.Join(manyKeys, ","), nil, "65 keys"},
		{"too many bytes", `{"k":"` + big + `"}`, nil, "bytes; the limit"},
		{"deeply nested", `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, nil, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.ParseMetadata(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseMetadata(%.80q) = %v, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMetadata(%.80q) error %q, want ErrInvalid containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMetadata(%.80q): %v", tt.in, err)
			}
			if tt.want == nil && tt.name != "max keys" {
				if got != nil {
					t.Fatalf("ParseMetadata(%q) = %v, want nil", tt.in, got)
				}
				return
			}
			if tt.name == "max keys" {
				if len(got) != 64 {
					t.Fatalf("got %d keys, want 64", len(got))
				}
				return
			}
			if !mapsEqual(got, tt.want) {
				t.Fatalf("ParseMetadata(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateMetadataLimits(t *testing.T) {
	l := Limits{MaxNameLen: 10, MaxMetadataKeys: 2, MaxMetadataBytes: 6}
	for _, tt := range []struct {
		md map[string]string
		ok bool
	}{
		{nil, true},
		{map[string]string{"ab": "cd"}, true},
		{map[string]string{"a": "b", "c": "d"}, true},
		{map[string]string{"a": "b", "c": "d", "e": "f"}, false},
		{map[string]string{"abc": "defg"}, false},
		{map[string]string{"": "x"}, false},
	} {
		if err := l.ValidateMetadata(tt.md); (err == nil) != tt.ok {
			t.Errorf("ValidateMetadata(%v) = %v, want ok=%v", tt.md, err, tt.ok)
		}
	}
}

func TestValidateInstance(t *testing.T) {
	l := DefaultLimits()
	good := func() *Instance {
		return &Instance{IP: " 2001:DB8::1 ", Port: 80, Weight: 1, Cluster: "", Metadata: map[string]string{"a": "b"}}
	}
	in := good()
	if err := l.ValidateInstance(in); err != nil {
		t.Fatal(err)
	}
	if in.IP != "2001:db8::1" || in.Cluster != "DEFAULT" {
		t.Errorf("ValidateInstance did not canonicalise: %+v", in)
	}
	for name, mut := range map[string]func(*Instance){
		"ip":       func(in *Instance) { in.IP = "999.1.1.1" },
		"port":     func(in *Instance) { in.Port = 0 },
		"port hi":  func(in *Instance) { in.Port = 65536 },
		"weight":   func(in *Instance) { in.Weight = math.NaN() },
		"cluster":  func(in *Instance) { in.Cluster = "a/b" },
		"id":       func(in *Instance) { in.InstanceID = strings.Repeat("i", 4*l.MaxNameLen+1) },
		"metadata": func(in *Instance) { in.Metadata = map[string]string{"": "x"} },
	} {
		in := good()
		mut(in)
		if err := l.ValidateInstance(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ValidateInstance = %v, want ErrInvalid", name, err)
		}
	}
}

func TestParseSelector(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Selector
		ok   bool
	}{
		{"", Selector{Type: "none"}, true},
		{`{"type":"none"}`, Selector{Type: "none"}, true},
		{`{}`, Selector{Type: "none"}, true},
		{`{"type":"none","expression":"ignored"}`, Selector{Type: "none"}, true},
		{`{"type":"label","expression":"CONSUMER.label.a = PROVIDER.label.a"}`, Selector{Type: "label", Expression: "CONSUMER.label.a = PROVIDER.label.a"}, true},
		{`{"type":"label","expression":"` + strings.Repeat("x", 4097) + `"}`, Selector{}, false},
		{`{"type":"cmdb"}`, Selector{}, false},
		{`{"type":`, Selector{}, false},
		{`{"type":"none"} x`, Selector{}, false},
		{`none`, Selector{}, false},
		{`{"type":1}`, Selector{}, false},
	} {
		got, err := ParseSelector(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseSelector(%.60q) = %+v, %v; want %+v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSelector(%.60q) error %v does not wrap ErrInvalid", tt.in, err)
		}
	}
}

func TestParseProtectThreshold(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"0.5", 0.5, true}, {" 1 ", 1, true},
		{"-0.1", 0, false}, {"1.01", 0, false}, {"NaN", 0, false}, {"Inf", 0, false},
		{"-Inf", 0, false}, {"abc", 0, false},
	} {
		got, err := ParseProtectThreshold(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseProtectThreshold(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestInstanceTimeouts(t *testing.T) {
	for _, tt := range []struct {
		md                map[string]string
		interval, hb, del int64
	}{
		{nil, 5000, 15000, 30000},
		{map[string]string{MetaHeartBeatInterval: "1000", MetaHeartBeatTimeout: "3000", MetaIPDeleteTimeout: " 6000 "}, 1000, 3000, 6000},
		{map[string]string{MetaHeartBeatInterval: "0", MetaHeartBeatTimeout: "-5", MetaIPDeleteTimeout: "x"}, 5000, 15000, 30000},
		{map[string]string{MetaHeartBeatTimeout: "99999999999999999999"}, 5000, 15000, 30000},
	} {
		in := &Instance{Metadata: tt.md}
		if a, b, c := in.HeartBeatIntervalMs(), in.HeartBeatTimeoutMs(), in.IPDeleteTimeoutMs(); a != tt.interval || b != tt.hb || c != tt.del {
			t.Errorf("timeouts(%v) = %d %d %d, want %d %d %d", tt.md, a, b, c, tt.interval, tt.hb, tt.del)
		}
	}
}

func TestInstanceEqual(t *testing.T) {
	base := Instance{InstanceID: "i", IP: "1.1.1.1", Port: 1, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Cluster: "C", Metadata: map[string]string{"a": "b"}}
	same := base
	same.Metadata = map[string]string{"a": "b"}
	if !base.Equal(&same) {
		t.Fatal("equal instances compare unequal")
	}
	for name, mut := range map[string]func(*Instance){
		"id": func(in *Instance) { in.InstanceID = "j" }, "ip": func(in *Instance) { in.IP = "1.1.1.2" },
		"port": func(in *Instance) { in.Port = 2 }, "weight": func(in *Instance) { in.Weight = 2 },
		"healthy": func(in *Instance) { in.Healthy = false }, "enabled": func(in *Instance) { in.Enabled = false },
		"ephemeral": func(in *Instance) { in.Ephemeral = false }, "cluster": func(in *Instance) { in.Cluster = "D" },
		"md value": func(in *Instance) { in.Metadata = map[string]string{"a": "c"} },
		"md key":   func(in *Instance) { in.Metadata = map[string]string{"b": "b"} },
		"md nil":   func(in *Instance) { in.Metadata = nil },
	} {
		o := base
		mut(&o)
		if base.Equal(&o) || o.Equal(&base) {
			t.Errorf("%s: differing instances compare equal", name)
		}
	}
}

func TestSortedKeys(t *testing.T) {
	got := SortedKeys(map[string]string{"b": "", "a": "", "c": ""})
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("SortedKeys = %v", got)
	}
	if len(SortedKeys(nil)) != 0 {
		t.Error("SortedKeys(nil) not empty")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestValidateInstanceBeatIntervalWithinTimeouts(t *testing.T) {
	l := DefaultLimits()
	for _, tc := range []struct {
		md        map[string]string
		ephemeral bool
		ok        bool
	}{
		{nil, true, true},
		{map[string]string{MetaHeartBeatTimeout: "2000", MetaIPDeleteTimeout: "4000", MetaHeartBeatInterval: "1000"}, true, true},
		{map[string]string{MetaHeartBeatTimeout: "2000", MetaIPDeleteTimeout: "4000"}, true, false}, // default 5 s interval > 2 s
		{map[string]string{MetaHeartBeatTimeout: "2000", MetaIPDeleteTimeout: "4000"}, false, true}, // persistent: not beat-driven
		{map[string]string{MetaIPDeleteTimeout: "3000"}, true, false},
	} {
		in := &Instance{IP: "10.0.0.1", Port: 80, Weight: 1, Cluster: "DEFAULT", Ephemeral: tc.ephemeral, Metadata: tc.md}
		if err := l.ValidateInstance(in); (err == nil) != tc.ok {
			t.Errorf("%v ephemeral=%v: err = %v, want ok=%v", tc.md, tc.ephemeral, err, tc.ok)
		}
	}
}
