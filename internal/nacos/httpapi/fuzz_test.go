package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/model"
)

func FuzzReadParams(f *testing.F) {
	for _, s := range [][4]string{
		{"GET", "serviceName=DEFAULT_GROUP@@demo&clusters=a,b", "", ""},
		{"PUT", "", `serviceName=DEFAULT_GROUP@@demo&beat={"ip":"10.0.0.1","metadata":{"x":"50%"}}`, formCT},
		{"POST", "a=%zz&b=%41&&=x&c", "d=1&d=2&%=%&e=%2", ""},
		{"POST", "", `{"json":true}`, "application/json"},
		{"DELETE", "x=1;y=2", "z=%", "text/plain; charset=utf-8"},
		{"POST", "", "k=v", "multipart/form-data; boundary=x"},
		{"POST", "", "k=v", "bad/;;type"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	const max = 1 << 10
	f.Fuzz(func(t *testing.T, method, query, body, ct string) {
		switch method {
		case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD":
		default:
			method = "POST"
		}
		req := &http.Request{Method: method, URL: &url.URL{Path: "/", RawQuery: query}, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		vals, err := readParams(req, max)
		if err != nil {
			if len(body) <= max && !errors.Is(err, errTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(body) > max && method != "GET" && method != "HEAD" && isForm(ct) {
			t.Fatalf("a %d-byte body was accepted", len(body))
		}
		for _, kv := range vals.kv {
			if kv.k == "" {
				t.Fatal("empty parameter name")
			}
		}
		// Query parameters are always kept first, whatever the body.
		q := getParams()
		q.parseLenient(query)
		for i, kv := range q.kv {
			if vals.kv[i] != kv {
				t.Fatalf("query parameter %d = %q, want %q first", i, vals.kv[i], kv)
			}
			if vals.Get(kv.k) != q.Get(kv.k) {
				t.Fatalf("Get(%q) = %q, want the query's %q", kv.k, vals.Get(kv.k), q.Get(kv.k))
			}
		}
		// Every pair matches what net/url makes of it, unless net/url
		// refuses it (then the raw text is kept).
		for _, part := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(part, "=")
			uk, kerr := url.QueryUnescape(k)
			uv, verr := url.QueryUnescape(v)
			if part == "" || kerr != nil || verr != nil || uk == "" {
				continue
			}
			if !slices.Contains(vals.All(uk), uv) {
				t.Fatalf("pair %q: %q=%q missing from %v", part, uk, uv, vals.kv)
			}
		}
		vals.release()
		q.release()
	})
}

func isForm(ct string) bool {
	return ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "text/plain")
}

func FuzzDecodeBeat(f *testing.F) {
	for _, s := range []string{
		`{"cluster":"DEFAULT","ip":"10.0.0.1","metadata":{},"port":8080,"scheduled":false,"serviceName":"DEFAULT_GROUP@@demo","weight":1}`,
		`{"ip":"10.0.0.1","port":"80","metadata":{"a":1,"b":null,"c":true}}`,
		`{"ip":"x","port":-1}`, `{"port":1e3}`, `{"port":70000}`, `{"weight":1e999}`, `{"metadata":"k=v"}`,
		`{"metadata":{"a":{}}}`, `{}}`, `{} {}`, `null`, `[]`, `{"ephemeral":false}`, "{\"ip\":\"\xff\"}",
	} {
		f.Add(s)
	}
	l := model.Limits{MaxNameLen: 255, MaxMetadataKeys: 8, MaxMetadataBytes: 512, MaxBodyBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeBeat(s, l)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if b.Port < 0 || b.Port > 65535 {
			t.Fatalf("accepted port %d", b.Port)
		}
		if err := l.ValidateMetadata(b.Metadata); err != nil {
			t.Fatalf("accepted metadata does not validate: %v", err)
		}
		// An accepted beat with a usable address builds an instance that
		// passes the same validation as a register.
		if b.Port == 0 || b.IP == "" {
			return
		}
		in := &model.Instance{IP: b.IP, Port: b.Port, Weight: 1, Cluster: b.Cluster, Metadata: b.Metadata}
		if b.Weight != nil {
			in.Weight = *b.Weight
		}
		_ = l.ValidateInstance(in) // may refuse (bad ip, weight); must not panic
	})
}

// FuzzRegister feeds arbitrary parameter values to the register handler:
// the answer is 200 or a 4xx, never a 5xx or a panic, and a refused request
// leaves the store unchanged.
func FuzzRegister(f *testing.F) {
	f.Add("DEFAULT_GROUP@@demo", "", "", "10.0.0.1", "8080", "1", `{"a":"b"}`, "", "true", "true", "", true)
	f.Add("demo", "ns", "g", "::1", "1", "0", "k=v,k2=v2", "c1", "false", "TRUE", "id-1", false)
	f.Add("a@@b@@c", "", "", "999.1.1.1", "0", "NaN", `{"a":{}}`, "a b", "", "", "", true)
	f.Add("..", "\x00", "g/h", "host-name", "65536", "-1", "=", "", "x", "x", "", false)
	f.Add("demo", "", "", "10.0.0.1", "80", "1e400", `{"a":"b"}}`, "DEFAULT", "true", "true", "", true)
	f.Add("demo%", "%zz", "", "10.0.0.1", "80", "", "", "", "", "", "", true)
	h := newHarness(f)
	h.register(f, "demo", "10.0.0.1", 80, "")
	f.Fuzz(func(t *testing.T, service, ns, group, ip, port, weight, metadata, cluster, healthy, enabled, id string, query bool) {
		form := url.Values{
			"serviceName": {service}, "namespaceId": {ns}, "groupName": {group}, "ip": {ip}, "port": {port},
			"weight": {weight}, "metadata": {metadata}, "clusterName": {cluster}, "healthy": {healthy},
			"enable": {enabled}, "instanceId": {id},
		}
		var req *http.Request
		if query { // Node style
			req = httptest.NewRequest("POST", "/nacos/v1/ns/instance?"+form.Encode(), nil)
		} else {
			req = httptest.NewRequest("POST", "/nacos/v1/ns/instance", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", formCT)
		}
		before := h.state()
		w := h.serve(req)
		switch {
		case w.Code == http.StatusOK:
			if w.Body.String() != "ok" {
				t.Fatalf("200 with body %q", w.Body.String())
			}
		case w.Code >= 400 && w.Code < 500:
			if after := h.state(); after != before {
				t.Fatalf("refused request (%d %q) changed the store", w.Code, w.Body.String())
			}
			if w.Body.Len() == 0 {
				t.Fatalf("%d without a message", w.Code)
			}
		default:
			t.Fatalf("status %d: %q", w.Code, w.Body.String())
		}
	})
}

// FuzzUnescape: unescape decodes as url.QueryUnescape does, and keeps the
// raw text where that refuses it.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"", "plain", "a+b", "%7B%22ip%22%3A1%7D", "%", "%4", "%zz", "50%", "%41%42+%43", "%e2%82%ac", "%ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := url.QueryUnescape(s)
		if err != nil {
			want = s
		}
		if got := unescape(s); got != want {
			t.Fatalf("unescape(%q) = %q, want %q", s, got, want)
		}
	})
}
