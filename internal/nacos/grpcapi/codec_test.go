package grpcapi

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/distro-registry/distro/api/nacospb"
)

func TestDecodePayload(t *testing.T) {
	md := func(typ string) *nacospb.Metadata { return &nacospb.Metadata{Type: typ} }
	for _, tc := range []struct {
		name string
		p    *nacospb.Payload
		want error
		body string
	}{
		{"nil payload", nil, errNoType, ""},
		{"no metadata", &nacospb.Payload{Body: &anypb.Any{Value: []byte(`{}`)}}, errNoType, ""},
		{"type with space", &nacospb.Payload{Metadata: md("Instance Request")}, errBadType, ""},
		{"type too long", &nacospb.Payload{Metadata: md(strings.Repeat("A", maxTypeLen+1))}, errBadType, ""},
		{"type_url set", &nacospb.Payload{Metadata: md("X"), Body: &anypb.Any{TypeUrl: "type.googleapis.com/x", Value: []byte(`{}`)}}, errTypeURL, ""},
		{"array body", &nacospb.Payload{Metadata: md("X"), Body: &anypb.Any{Value: []byte(`[1]`)}}, errNotJSON, ""},
		{"broken body", &nacospb.Payload{Metadata: md("X"), Body: &anypb.Any{Value: []byte(`{"a":`)}}, errNotJSON, ""},
		{"trailing body", &nacospb.Payload{Metadata: md("X"), Body: &anypb.Any{Value: []byte(`{} {}`)}}, errNotJSON, ""},
		{"too large", &nacospb.Payload{Metadata: md("X"), Body: &anypb.Any{Value: []byte(`{"a":"` + strings.Repeat("x", 100) + `"}`)}}, errTooLarge, ""},
		{"no body", &nacospb.Payload{Metadata: md("HealthCheckRequest")}, nil, "{}"},
		{"body", &nacospb.Payload{Metadata: md("InstanceRequest"), Body: &anypb.Any{Value: []byte(" {\"a\":1}\n")}}, nil, `{"a":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodePayload(tc.p, 64)
			if err != tc.want {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if err == nil && string(f.Body) != tc.body {
				t.Fatalf("body = %q; want %q", f.Body, tc.body)
			}
		})
	}
}

// TestResponseBodies checks the hand-encoded bodies against the field names
// and types the Go SDK decodes.
func TestResponseBodies(t *testing.T) {
	decode := func(b []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	e := decode(errorBody("r\"1", 400, "bad \"x\"\n"))
	if e["resultCode"] != 500.0 || e["errorCode"] != 400.0 || e["success"] != false || e["message"] != "bad \"x\"\n" || e["requestId"] != "r\"1" {
		t.Fatalf("errorBody = %v", e)
	}
	sc := decode(serverCheckBody("", "1_127.0.0.1_5"))
	if sc["connectionId"] != "1_127.0.0.1_5" || sc["success"] != true || sc["resultCode"] != 200.0 || sc["errorCode"] != 0.0 {
		t.Fatalf("serverCheckBody = %v", sc)
	}
	if l := decode(serviceListBody("", 0, nil)); l["count"] != 0.0 || l["serviceNames"] == nil {
		t.Fatalf("empty serviceListBody = %v (serviceNames must be [], not null)", l)
	}
	n := decode(notifyBody("7", "public", "G", "s", []byte(`{"name":"s","hosts":[]}`)))
	if n["requestId"] != "7" || n["module"] != "naming" || n["serviceInfo"].(map[string]any)["name"] != "s" {
		t.Fatalf("notifyBody = %v", n)
	}
	r := decode(connectResetBody("9", "10.0.0.1", "8848"))
	if r["serverIp"] != "10.0.0.1" || r["serverPort"] != "8848" || r["requestId"] != "9" {
		t.Fatalf("connectResetBody = %v", r)
	}
	if it := decode(okTypeBody("", "registerInstance")); it["type"] != "registerInstance" || it["success"] != true {
		t.Fatalf("okTypeBody = %v", it)
	}
}

func TestEchoClusters(t *testing.T) {
	info := []byte(`{"name":"a\",\"clusters\":\"\"","groupName":"G","clusters":"","cacheMillis":1}`)
	got := echoClusters(info, `c1,"c2`)
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if m["clusters"] != `c1,"c2` || m["name"] != `a","clusters":""` {
		t.Fatalf("echoClusters = %s", got)
	}
	if string(echoClusters(info, "")) != string(info) {
		t.Fatal("empty filter changed the rendering")
	}
}

// TestInvalidRequests: every malformed request is answered with an
// ErrorResponse and a message, and changes nothing.
func TestInvalidRequests(t *testing.T) {
	ts := newTestServer(t)
	c := connect(t, ts.addr)
	inst := func(fields string) string {
		return `{"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":"registerInstance","instance":{` + fields + `}}`
	}
	for _, tc := range []struct {
		name, typ, body string
		code            int
	}{
		{"not json", TypeInstanceRequest, `{"instance":`, CodeInvalidParam},
		{"wrong field type", TypeInstanceRequest, `{"serviceName":5}`, CodeInvalidParam},
		{"no service", TypeInstanceRequest, `{"type":"registerInstance","instance":{"ip":"10.0.0.1","port":80}}`, CodeInvalidParam},
		{"grouped with empty group", TypeInstanceRequest, `{"serviceName":"@@demo","type":"registerInstance","instance":{"ip":"10.0.0.1","port":80}}`, CodeInvalidParam},
		{"bad service chars", TypeInstanceRequest, `{"serviceName":"de mo","type":"registerInstance","instance":{"ip":"10.0.0.1","port":80}}`, CodeInvalidParam},
		{"bad op type", TypeInstanceRequest, `{"serviceName":"demo","type":"updateInstance","instance":{"ip":"10.0.0.1","port":80}}`, CodeInvalidParam},
		{"no ip", TypeInstanceRequest, inst(`"port":80`), CodeInvalidParam},
		{"bad ip", TypeInstanceRequest, inst(`"ip":"10.0.0.300","port":80`), CodeInvalidParam},
		{"port 0", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":0`), CodeInvalidParam},
		{"port huge", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":1e20`), CodeInvalidParam},
		{"port fraction", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":80.5`), CodeInvalidParam},
		{"negative weight", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":80,"weight":-1`), CodeInvalidParam},
		{"bad cluster", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":80,"clusterName":"a/b"`), CodeInvalidParam},
		{"nested metadata", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":80,"metadata":{"a":{"b":1}}`), CodeInvalidParam},
		{"metadata array", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":80,"metadata":["a"]`), CodeInvalidParam},
		{"persistent via InstanceRequest", TypeInstanceRequest, inst(`"ip":"10.0.0.1","port":80,"ephemeral":false`), CodeInvalidParam},
		{"beat interval above timeout", TypeInstanceRequest,
			inst(`"ip":"10.0.0.1","port":80,"metadata":{"preserved.heart.beat.interval":"20000"}`), CodeInvalidParam},
		{"batch persistent", TypeBatchInstanceRequest,
			`{"serviceName":"demo","type":"batchRegisterInstance","instances":[{"ip":"10.0.0.1","port":80,"ephemeral":false}]}`, CodeInvalidParam},
		{"batch bad op", TypeBatchInstanceRequest, `{"serviceName":"demo","type":"x","instances":[]}`, CodeInvalidParam},
		{"query bad namespace", TypeServiceQueryRequest, `{"namespace":"a b","serviceName":"demo"}`, CodeInvalidParam},
		{"subscribe huge clusters", TypeSubscribeServiceRequest,
			`{"serviceName":"demo","subscribe":true,"clusters":"` + strings.Repeat("a", maxClustersLen+1) + `"}`, CodeInvalidParam},
		{"list bad group", TypeServiceListRequest, `{"groupName":"a@b","pageNo":1,"pageSize":10}`, CodeInvalidParam},
		{"unknown type", "ConfigQueryRequest", `{}`, CodeNoHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			services, instances := ts.st.Counts()
			subs := ts.subscriptionCount()
			c.mustFail(tc.typ, tc.body, tc.code)
			if s, i := ts.st.Counts(); s != services || i != instances || ts.subscriptionCount() != subs {
				t.Fatal("a refused request changed the registry")
			}
		})
	}
	// The connection still works after all that.
	c.mustOK(TypeInstanceRequest, TypeInstanceResponse, registerBody("demo", "10.0.0.1", 80))
	// A stream message with a broken body is ignored, not fatal.
	c.send(TypeNotifySubscriberResponse, `{"requestId":`)
	c.mustOK(TypeHealthCheckRequest, TypeHealthCheckResponse, `{}`)
	if c.streamEnded() {
		t.Fatal("a bad stream message ended the stream")
	}
}
