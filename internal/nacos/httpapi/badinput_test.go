package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// badRequests is every refused request of the bad-input plan
// (reliability.md §4): each must get the status given, a message a person can
// read, and leave the store exactly as it was.
func badRequests() []struct {
	name, method, target, body string
	status                     int
	text                       string
} {
	long := strings.Repeat("s", 256)
	var keys65 []string
	for i := range 65 {
		keys65 = append(keys65, fmt.Sprintf("k%d=v", i))
	}
	enc := url.QueryEscape
	reg := func(params string) string { return "serviceName=demo&ip=10.0.0.9&port=80&" + params }
	regOver := func(override string) string { // replace one of the identity params
		p := url.Values{"serviceName": {"demo"}, "ip": {"10.0.0.9"}, "port": {"80"}}
		k, v, _ := strings.Cut(override, "=")
		p.Set(k, v)
		return p.Encode()
	}
	return []struct {
		name, method, target, body string
		status                     int
		text                       string
	}{
		{"port 0", "POST", "/nacos/v1/ns/instance", regOver("port=0"), 400, "port 0 is out of range"},
		{"port 65536", "POST", "/nacos/v1/ns/instance", regOver("port=65536"), 400, "out of range"},
		{"port junk", "POST", "/nacos/v1/ns/instance", regOver("port=80x"), 400, "not a number"},
		{"port missing", "POST", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.9", 400, "Param 'port' is required"},
		{"ip missing", "POST", "/nacos/v1/ns/instance", "serviceName=demo&port=80", 400, "Param 'ip' is required"},
		{"ip malformed", "POST", "/nacos/v1/ns/instance", regOver("ip=999.1.1.1"), 400, "neither an IP address nor a host name"},
		{"ip zone", "POST", "/nacos/v1/ns/instance", regOver("ip=fe80::1%eth0"), 400, "zone"},
		{"ip junk", "POST", "/nacos/v1/ns/instance", regOver("ip=a b"), 400, "host name"},
		{"weight NaN", "POST", "/nacos/v1/ns/instance", reg("weight=NaN"), 400, "weight"},
		{"weight Inf", "POST", "/nacos/v1/ns/instance", reg("weight=Inf"), 400, "weight"},
		{"weight negative", "POST", "/nacos/v1/ns/instance", reg("weight=-1"), 400, "out of range 0-10000"},
		{"weight too big", "POST", "/nacos/v1/ns/instance", reg("weight=10000.1"), 400, "out of range"},
		{"weight junk", "POST", "/nacos/v1/ns/instance", reg("weight=heavy"), 400, "not a number"},
		{"service missing", "POST", "/nacos/v1/ns/instance", "ip=10.0.0.9&port=80", 400, "Param 'serviceName' is required"},
		{"service two separators", "POST", "/nacos/v1/ns/instance", regOver("serviceName=a@@b@@c"), 400, "more than one"},
		{"service empty group", "POST", "/nacos/v1/ns/instance", regOver("serviceName=@@x"), 400, "group part"},
		{"service too long", "POST", "/nacos/v1/ns/instance", regOver("serviceName=" + long), 400, "limit is 255"},
		{"service slash", "POST", "/nacos/v1/ns/instance", regOver("serviceName=a/b"), 400, "contains"},
		{"service dotdot", "POST", "/nacos/v1/ns/instance", regOver("serviceName=.."), 400, ".."},
		{"service NUL", "POST", "/nacos/v1/ns/instance", regOver("serviceName=a\x00b"), 400, "contains"},
		{"service control", "POST", "/nacos/v1/ns/instance", regOver("serviceName=a\x1bb"), 400, "contains"},
		{"service hashes", "POST", "/nacos/v1/ns/instance", regOver("serviceName=a##b"), 400, "contains"},
		{"service unicode", "POST", "/nacos/v1/ns/instance", regOver("serviceName=dеmo"), 400, "contains"},
		{"group bad", "POST", "/nacos/v1/ns/instance", reg("groupName=a/b"), 400, "groupName"},
		{"namespace bad", "POST", "/nacos/v1/ns/instance", reg("namespaceId=../x"), 400, "namespaceId"},
		{"cluster bad", "POST", "/nacos/v1/ns/instance", reg("clusterName=a,b"), 400, "clusterName"},
		{"metadata nested", "POST", "/nacos/v1/ns/instance", reg("metadata=" + enc(`{"a":{"b":"c"}}`)), 400, "not an object or array"},
		{"metadata malformed", "POST", "/nacos/v1/ns/instance", reg("metadata=" + enc(`{"a":`)), 400, "not a valid JSON object"},
		{"metadata trailing", "POST", "/nacos/v1/ns/instance", reg("metadata=" + enc(`{"a":"b"}}`)), 400, "trailing"},
		{"metadata deep", "POST", "/nacos/v1/ns/instance", reg("metadata=" + enc(`{"a":`+strings.Repeat("[", 10001)+`}`)), 400, "metadata"},
		{"metadata pairs", "POST", "/nacos/v1/ns/instance", reg("metadata=novalue"), 400, "neither a JSON object nor k=v pairs"},
		{"metadata 65 keys", "POST", "/nacos/v1/ns/instance", reg("metadata=" + enc(strings.Join(keys65, ","))), 400, "65 keys"},
		{"metadata 17 KiB value", "POST", "/nacos/v1/ns/instance", reg("metadata=" + enc(`{"k":"`+strings.Repeat("v", 17<<10)+`"}`)), 400, "bytes; the limit"},
		{"instance id too long", "POST", "/nacos/v1/ns/instance", reg("instanceId=" + strings.Repeat("i", 1100)), 400, "instanceId"},
		{"body too large", "POST", "/nacos/v1/ns/instance", reg("pad=" + strings.Repeat("x", 1<<20)), 413, "exceeds"},

		{"deregister bad port", "DELETE", "/nacos/v1/ns/instance?serviceName=demo&ip=10.0.0.1&port=0", "", 400, "port"},
		{"deregister bad ip", "DELETE", "/nacos/v1/ns/instance?serviceName=demo&ip=1.2.3&port=80", "", 400, "ip"},
		{"update bad weight", "PUT", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.1&port=80&weight=-5", 400, "weight"},
		{"update bad metadata", "PUT", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.1&port=80&metadata={x", 400, "metadata"},
		{"update missing instance", "PUT", "/nacos/v1/ns/instance", "serviceName=demo&ip=10.0.0.9&port=80&weight=3", 400, "instance not found"},
		{"patch missing service", "PATCH", "/nacos/v1/ns/instance", "serviceName=nope&ip=10.0.0.1&port=80&weight=3", 400, "service not found"},

		{"beat malformed JSON", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":`, 400, "beat is not valid JSON"},
		{"beat trailing", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80}}`, 400, "trailing"},
		{"beat port", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":70000}`, 400, "port"},
		{"beat port fraction", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80.5}`, 400, "port"},
		{"beat bad ip", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"999.0.0.1","port":80}`, 400, "ip"},
		{"beat no ip", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"port":80}`, 400, "Param 'ip' is required"},
		{"beat weight", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80,"weight":-1}`, 400, "weight"},
		{"beat weight overflow", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80,"weight":1e999}`, 400, "beat"},
		{"beat metadata nested", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80,"metadata":{"a":[1]}}`, 400, "metadata"},
		{"beat metadata not object", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80,"metadata":"x"}`, 400, "metadata"},
		{"beat cluster", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat={"ip":"10.0.0.9","port":80,"cluster":"a b"}`, 400, "clusterName"},
		{"beat not object", "PUT", "/nacos/v1/ns/instance/beat", `serviceName=demo&beat=[1,2]`, 400, "beat"},
		{"light beat no port", "PUT", "/nacos/v1/ns/instance/beat?serviceName=demo&ip=10.0.0.1", "", 400, "port"},

		{"service create bad threshold", "POST", "/nacos/v1/ns/service", "serviceName=new&protectThreshold=2", 400, "protectThreshold"},
		{"service create bad selector", "POST", "/nacos/v1/ns/service", "serviceName=new&selector=" + enc(`{"type":"cmdb"}`), 400, "selector"},
		{"service create bad metadata", "POST", "/nacos/v1/ns/service", "serviceName=new&metadata=" + enc(`{"a":[]}`), 400, "metadata"},
		{"service create duplicate", "POST", "/nacos/v1/ns/service", "serviceName=svc", 400, "already exists"},
		{"service update no threshold", "PUT", "/nacos/v1/ns/service", "serviceName=svc", 400, "protectThreshold"},
		{"service update missing", "PUT", "/nacos/v1/ns/service", "serviceName=new&protectThreshold=0.1", 400, "not found"},
		{"service delete non-empty", "DELETE", "/nacos/v1/ns/service?serviceName=demo", "", 400, "is not empty"},
		{"service delete missing", "DELETE", "/nacos/v1/ns/service?serviceName=new", "", 400, "not exist"},
		{"service delete bad name", "DELETE", "/nacos/v1/ns/service?serviceName=a@@b@@c", "", 400, "serviceName"},

		{"list bad name", "GET", "/nacos/v1/ns/instance/list?serviceName=a/b", "", 400, "serviceName"},
		{"list clusters too long", "GET", "/nacos/v1/ns/instance/list?serviceName=demo&clusters=" + strings.Repeat("c", 1100), "", 400, "clusters"},
		{"detail bad port", "GET", "/nacos/v1/ns/instance?serviceName=demo&ip=10.0.0.1&port=x", "", 400, "port"},
		{"service list bad page", "GET", "/nacos/v1/ns/service/list?pageNo=-1&pageSize=10", "", 400, "pageNo"},
		{"catalog bad page", "GET", "/nacos/v1/ns/catalog/services?pageSize=abc", "", 400, "pageSize"},
		{"catalog instances bad name", "GET", "/nacos/v1/ns/catalog/instances?serviceName=", "", 400, "serviceName"},
	}
}

func seeded(t testing.TB) *harness {
	h := newHarness(t)
	h.register(t, "demo", "10.0.0.1", 80, "metadata=a%3Db")
	h.mustDo(t, "POST", "/nacos/v1/ns/service", "serviceName=svc&protectThreshold=0.1")
	return h
}

func TestBadInput(t *testing.T) {
	h := seeded(t)
	for _, tt := range badRequests() {
		t.Run(tt.name, func(t *testing.T) {
			before := h.state()
			w := h.do(t, tt.method, tt.target, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %q", w.Code, tt.status, w.Body.String())
			}
			msg := w.Body.String()
			if !strings.Contains(msg, tt.text) {
				t.Fatalf("message %q does not contain %q", msg, tt.text)
			}
			if len(msg) > 2000 || strings.Contains(msg, "goroutine") {
				t.Fatalf("message is not meant for a person: %.200q", msg)
			}
			if after := h.state(); after != before {
				t.Fatalf("store changed by a refused request\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestBodyLimit checks the 1 MiB limit exactly, with and without a
// Content-Length, on every write route and for non-form bodies too.
func TestBodyLimit(t *testing.T) {
	h := seeded(t)
	limit := int(h.api.cfg.Limits.MaxBodyBytes)
	prefix := "serviceName=demo&ip=10.0.0.7&port=80&pad="
	atLimit := prefix + strings.Repeat("x", limit-len(prefix))
	over := atLimit + "x"
	for _, route := range []struct{ method, path string }{
		{"POST", "/nacos/v1/ns/instance"}, {"PUT", "/nacos/v1/ns/instance"}, {"DELETE", "/nacos/v1/ns/instance"},
		{"PUT", "/nacos/v1/ns/instance/beat"}, {"POST", "/nacos/v1/ns/service"}, {"POST", "/nacos/v1/auth/login"},
	} {
		for _, chunked := range []bool{false, true} {
			for _, ct := range []string{formCT, "application/json", ""} {
				name := fmt.Sprintf("%s %s chunked=%v ct=%q", route.method, route.path, chunked, ct)
				before := h.state()
				req := httptest.NewRequest(route.method, route.path, strings.NewReader(over))
				if ct != "" {
					req.Header.Set("Content-Type", ct)
				}
				if chunked {
					req.ContentLength = -1
					req.Body = io.NopCloser(strings.NewReader(over))
				}
				w := h.serve(req)
				if w.Code != http.StatusRequestEntityTooLarge {
					t.Errorf("%s: %d bytes got %d %q, want 413", name, len(over), w.Code, w.Body.String())
				}
				if h.state() != before {
					t.Errorf("%s: store changed", name)
				}
			}
		}
	}
	// Exactly at the limit is accepted.
	w := h.do(t, "POST", "/nacos/v1/ns/instance", atLimit)
	if w.Code != http.StatusOK {
		t.Fatalf("body of exactly %d bytes: %d %s", len(atLimit), w.Code, w.Body.String())
	}
}
