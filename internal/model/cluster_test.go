package model

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseHealthChecker(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want HealthChecker
		err  string
	}{
		{in: `{"type":"TCP"}`, want: HealthChecker{Type: CheckTCP}},
		{in: `{"type":"tcp"}`, want: HealthChecker{Type: CheckTCP}},
		{in: `{"type":"none"}`, want: HealthChecker{Type: CheckNone}},
		{in: `{"type":"NONE","path":"/x","headers":"a:b"}`, want: HealthChecker{Type: CheckNone}}, // ignored, canonical
		{in: `{"type":"HTTP"}`, want: HealthChecker{Type: CheckHTTP, Path: "/", ExpectedCode: 200}},
		{in: `{"type":"HTTP","path":"/health?deep=1","headers":"X-A:1|Accept: text/plain","expectedResponseCode":204}`,
			want: HealthChecker{Type: CheckHTTP, Path: "/health?deep=1", Headers: "X-A:1|Accept: text/plain", ExpectedCode: 204}},
		{in: `{"type":"HTTP","expectedResponseCode":"503"}`, want: HealthChecker{Type: CheckHTTP, Path: "/", ExpectedCode: 503}},
		{in: `{"type":"TCP","intervalMillis":1000,"timeoutMillis":"250","unknown":{"x":1}}`,
			want: HealthChecker{Type: CheckTCP, IntervalMs: 1000, TimeoutMs: 250}},
		{in: ``, err: "not a valid JSON object"},
		{in: `[]`, err: "not a valid JSON object"},
		{in: `{"type":"TCP"} {}`, err: "trailing data"},
		{in: `{}`, err: "needs a type"},
		{in: `{"type":"MYSQL"}`, err: "MYSQL is not supported"},
		{in: `{"type":"UDP"}`, err: `"UDP" is not supported`},
		{in: `{"type":"HTTP","path":"health"}`, err: "absolute path"},
		{in: `{"type":"HTTP","path":"//evil.example/x"}`, err: "absolute path"},
		{in: `{"type":"HTTP","path":"http://evil.example/x"}`, err: "absolute path"},
		{in: `{"type":"HTTP","path":"/a b"}`, err: "contains"},
		{in: `{"type":"HTTP","path":"/a#frag"}`, err: "contains"},
		{in: `{"type":"HTTP","path":"/a\\b"}`, err: "contains"},
		{in: `{"type":"HTTP","path":"/` + strings.Repeat("a", 1024) + `"}`, err: "limit is 1024"},
		{in: `{"type":"HTTP","headers":"novalue"}`, err: "not Name:value"},
		{in: `{"type":"HTTP","headers":"Bad Name:v"}`, err: "header name"},
		{in: `{"type":"HTTP","headers":"A:b\r\nX-Injected: 1"}`, err: "control character"},
		{in: `{"type":"HTTP","headers":"` + strings.Repeat("A:b|", 33) + `"}`, err: "more than 32 headers"},
		{in: `{"type":"HTTP","expectedResponseCode":99}`, err: "100-599"},
		{in: `{"type":"HTTP","expectedResponseCode":600}`, err: "100-599"},
		{in: `{"type":"HTTP","expectedResponseCode":"x"}`, err: "not an integer"},
		{in: `{"type":"HTTP","expectedResponseCode":{}}`, err: "expectedResponseCode"},
		{in: `{"type":"TCP","intervalMillis":50}`, err: "intervalMillis 50"},
		{in: `{"type":"TCP","timeoutMillis":600000}`, err: "timeoutMillis 600000"},
	} {
		got, err := ParseHealthChecker(tt.in)
		if tt.err != "" {
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestHealthCheckerJSONRoundTrip(t *testing.T) {
	for _, h := range []HealthChecker{
		{Type: CheckTCP}, {Type: CheckNone},
		{Type: CheckHTTP, Path: "/h?a=\"1\"", Headers: "A:b|C:d", ExpectedCode: 200},
		{Type: CheckHTTP, Path: "/", ExpectedCode: 302, IntervalMs: 500, TimeoutMs: 100},
	} {
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("%+v renders invalid JSON %s", h, b)
		}
		back, err := ParseHealthChecker(string(b))
		if err != nil || back != h {
			t.Fatalf("%+v → %s → %+v, %v", h, b, back, err)
		}
	}
	b, _ := json.Marshal(HealthChecker{Type: CheckTCP})
	if string(b) != `{"type":"TCP"}` {
		t.Fatalf("TCP renders %s, want Nacos's {\"type\":\"TCP\"}", b)
	}
	b, _ = json.Marshal(HealthChecker{Type: CheckHTTP, Path: "/", ExpectedCode: 200})
	if string(b) != `{"type":"HTTP","path":"/","headers":"","expectedResponseCode":200}` {
		t.Fatalf("HTTP renders %s", b)
	}
}

func TestParsedHeaders(t *testing.T) {
	h := HealthChecker{Headers: " A : 1 ||B:x:y| "}
	got := h.ParsedHeaders()
	if len(got) != 2 || got[0] != (Header{"A", "1"}) || got[1] != (Header{"B", "x:y"}) {
		t.Fatalf("headers %+v", got)
	}
	if (&HealthChecker{}).ParsedHeaders() != nil {
		t.Fatal("no headers should give nil")
	}
}

func TestValidateClusterMeta(t *testing.T) {
	l := DefaultLimits()
	ok := DefaultClusterMeta(CheckTCP)
	if err := l.ValidateClusterMeta(&ok); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		c    ClusterMeta
	}{
		{"port 0 without instance port", ClusterMeta{HealthChecker: HealthChecker{Type: CheckTCP}, CheckPort: 0}},
		{"port too big", ClusterMeta{HealthChecker: HealthChecker{Type: CheckTCP}, CheckPort: 70000, UseInstancePort: true}},
		{"negative port", ClusterMeta{HealthChecker: HealthChecker{Type: CheckTCP}, CheckPort: -1, UseInstancePort: true}},
		{"no type", ClusterMeta{CheckPort: 80}},
		{"HTTP without path", ClusterMeta{HealthChecker: HealthChecker{Type: CheckHTTP, ExpectedCode: 200}, CheckPort: 80}},
		{"TCP with a path", ClusterMeta{HealthChecker: HealthChecker{Type: CheckTCP, Path: "/"}, CheckPort: 80}},
		{"metadata key empty", ClusterMeta{HealthChecker: HealthChecker{Type: CheckTCP}, CheckPort: 80, Metadata: map[string]string{"": "x"}}},
	} {
		if err := l.ValidateClusterMeta(&tt.c); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want an invalid-parameter error", tt.name, err)
		}
	}
	many := map[string]ClusterMeta{}
	for i := 0; i <= MaxClusterSettings; i++ {
		many["c"+strings.Repeat("x", i)] = ok
	}
	if err := l.ValidateClusters(many); err == nil {
		t.Fatal("too many clusters accepted")
	}
	if err := l.ValidateClusters(map[string]ClusterMeta{"bad/name": ok}); err == nil {
		t.Fatal("bad cluster name accepted")
	}
	if c := (*ServiceMeta)(nil).Cluster("x", CheckNone); c.HealthChecker.Type != CheckNone || c.CheckPort != 80 || !c.UseInstancePort {
		t.Fatalf("defaults %+v", c)
	}
	m := &ServiceMeta{Clusters: map[string]ClusterMeta{"x": {HealthChecker: HealthChecker{Type: CheckTCP}, CheckPort: 9}}}
	if c := m.Cluster("x", CheckNone); c.CheckPortFor(1) != 9 {
		t.Fatalf("explicit settings %+v", c)
	}
	if c := m.Cluster("y", CheckTCP); c.CheckPortFor(1) != 1 || c.HealthChecker.Type != CheckTCP {
		t.Fatalf("defaults with TCP %+v", c)
	}
}

func FuzzParseHealthChecker(f *testing.F) {
	for _, s := range []string{
		`{"type":"TCP"}`, `{"type":"HTTP","path":"/h","headers":"A:b","expectedResponseCode":200}`, `{"type":"none"}`,
		`{"type":"HTTP","path":"//x"}`, `{"type":"HTTP","headers":"a\r\nb:c"}`, `{}`, `{"type":"TCP","intervalMillis":"1e3"}`,
		`{"type":"HTTP","path":"/%zz"}`, "{\"type\":\"HTTP\",\"path\":\"/\xff\"}", `{"type":"HTTP","expectedResponseCode":2e2}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHealthChecker(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := ValidateHealthChecker(&h); err != nil {
			t.Fatalf("accepted %+v does not validate: %v", h, err)
		}
		// What is accepted renders to JSON that parses back to itself.
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseHealthChecker(string(b))
		if err != nil || back != h {
			t.Fatalf("%q → %+v → %s → %+v, %v", s, h, b, back, err)
		}
		if h.Type == CheckHTTP && (!strings.HasPrefix(h.Path, "/") || strings.HasPrefix(h.Path, "//")) {
			t.Fatalf("accepted a path that is not a plain absolute path: %q", h.Path)
		}
	})
}
