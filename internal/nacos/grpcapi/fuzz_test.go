package grpcapi

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// FuzzDecodePayload feeds arbitrary protobuf bytes to DecodePayload, and
// arbitrary type names and bodies through the request handlers of a set-up
// connection (bypassing the panic guard, so a panic fails the fuzzer).
// Nothing may panic, and every answer must be a well-formed response.
func FuzzDecodePayload(f *testing.F) {
	seeds := []struct{ typ, body string }{
		{TypeServerCheckRequest, `{"requestId":"","module":"internal"}`},
		{TypeConnectionSetupRequest, `{"requestId":"","module":"internal","clientVersion":"Nacos-Go-Client:v2.3.5","tenant":"","labels":{"module":"naming","source":"sdk"},"clientAbilities":{}}`},
		{TypeHealthCheckRequest, `{"requestId":"","module":"internal"}`},
		{TypeInstanceRequest, registerBody("demo", "10.0.0.1", 8080)},
		{TypeInstanceRequest, `{"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","type":"deregisterInstance","instance":{"ip":"10.0.0.1","port":8080,"weight":0,"enabled":false,"metadata":null}}`},
		{TypeBatchInstanceRequest, `{"serviceName":"demo","type":"batchRegisterInstance","instances":[{"ip":"10.0.0.1","port":1},{"ip":"10.0.0.2","port":2,"metadata":{"a":1,"b":true}}]}`},
		{TypeBatchInstanceRequest, `{"serviceName":"demo","type":"batchDeregisterInstance","instances":[{"ip":"10.0.0.1","port":1}]}`},
		{TypePersistentInstanceRequest, `{"serviceName":"db","type":"registerInstance","instance":{"ip":"10.0.0.1","port":1,"ephemeral":false}}`},
		{TypeServiceQueryRequest, `{"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","cluster":"a,b","healthyOnly":true,"udpPort":0}`},
		{TypeSubscribeServiceRequest, subscribeBody("demo", "", true)},
		{TypeSubscribeServiceRequest, subscribeBody("demo", "x", false)},
		{TypeServiceListRequest, `{"namespace":"","groupName":"","pageNo":1,"pageSize":10,"selector":""}`},
		{TypeNotifySubscriberResponse, `{"resultCode":200,"errorCode":0,"success":true,"message":"","requestId":"1"}`},
		{TypeClientDetectionResponse, `{"resultCode":200,"requestId":"2"}`},
		{TypeConnectResetResponse, `{"resultCode":200,"requestId":"3"}`},
		{"Unknown", `{}`},
	}
	for _, s := range seeds {
		raw, _ := proto.Marshal(EncodePayload(s.typ, []byte(s.body)))
		f.Add(s.typ, []byte(s.body), raw)
	}
	st := store.New("127.0.0.1:8848", hlc.New(nil))
	local := registry.NewLocal(st, health.DefaultConfig(), clock.Real{}, nil)
	s, err := New(Config{Store: st, Writer: local, Conns: local})
	if err != nil {
		f.Fatal(err)
	}
	c := s.openConn(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000})
	c.out = newOutbox(1<<20, func(any) error { return nil })
	c.state.Store(stateRegistered)
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, typ string, body, raw []byte) {
		var p = EncodePayload(typ, body)
		if len(raw) > 0 {
			var q = EncodePayload("", nil)
			if proto.Unmarshal(raw, q) == nil {
				_, _ = DecodePayload(q, 1<<20)
			}
		}
		fr, err := DecodePayload(p, 1<<20)
		if err != nil {
			return
		}
		switch fr.Type {
		case TypeConnectionSetupRequest:
			_ = s.setup(c, fr)
			return
		case TypeNotifySubscriberResponse, TypeClientDetectionResponse, TypeConnectResetResponse:
			_ = s.settle(c, fr)
			c.state.Store(stateRegistered) // a reset answer may close it
			return
		}
		rep, err := s.route(ctx, c, fr)
		rt, rb := rep.typ, rep.body()
		if err != nil {
			code, msg := errorCode(err)
			if code == 0 || msg == "" {
				t.Fatalf("error without code or message: %v", err)
			}
			rt, rb = TypeErrorResponse, errorBody(requestID(fr.Body), code, msg)
		}
		if rt == "" || !json.Valid(rb) {
			t.Fatalf("%s answered %q: %s", fr.Type, rt, rb)
		}
	})
}
