package grpcapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/nacospb"
)

var decodeSamples = []string{
	`{"requestId":"7","module":"naming","namespace":"public","serviceName":"svc","groupName":"DEFAULT_GROUP","type":"registerInstance",` +
		`"instance":{"ip":"10.0.0.1","port":8848,"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT",` +
		`"serviceName":"svc","metadata":{"k":"v"},"instanceHeartBeatInterval":5000}}`,
	`{"instances":[{"ip":"a","port":1},{"ip":"b","port":2,"weight":null}],"type":"batchRegisterInstance"}`,
	`{"instances":[{"ip":"a","port":1}],"instances":[{"port":2}]}`, `{"instances":[{"ip":"a"},{"ip":"b"}],"instances":[],"instances":[{"port":3}]}`,
	`{"instances":null}`, `{"instances":[null]}`, `{"instances":{}}`, `{"cluster":"c1","healthyOnly":true,"udpPort":0}`,
	`{"subscribe":true,"clusters":"a,b"}`, `{"subscribe":"true"}`, `{"resultCode":200,"errorCode":0,"requestId":"12","message":null}`,
	`{"resultCode":2e2}`, `{"resultCode":200.0}`, `{"resultCode":-0}`, `{"RESULTCODE":500}`, `{"requestId":5}`, `null`, `[]`, `"x"`,
	`{"instance":null}`, `{"instance":"x"}`, `{"instance":{"port":"80"}}`, `{"instance":{"port":99999999999999999999}}`,
	`{"instance":{"weight":1e999}}`, `{"instance":{"healthy":true,"healthy":null}}`, `{"instance":{"metadata":null}}`,
	`{"instance":{"metadata":[1, {"a":2}]}}`, `{"ſerviceName":"x","Namespace":"n"}`, `{"a":1}{}`, `{"a":1`, `{}`,
	"{\"requestId\":\"\xff\\ud800\"}",
}

// FuzzRequestDecodersMatchEncodingJSON: every hand-written request decoder
// accepts exactly what json.Unmarshal accepts into its struct, and decodes
// the same values.
func FuzzRequestDecodersMatchEncodingJSON(f *testing.F) {
	for _, s := range decodeSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fr := Frame{Type: "Test", Body: []byte(body)}
		check := func(name string, got any, err error, want any) {
			werr := json.Unmarshal([]byte(body), want)
			if (err == nil) != (werr == nil) {
				t.Fatalf("%s %q: error %v, encoding/json %v", name, body, err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %q:\n got  %+v\n want %+v", name, body, got, want)
			}
		}
		var b baseRequest
		check("base", &b, decodeBase(fr, &b), &baseRequest{})
		var ir instanceRequest
		check("instance", &ir, decodeInstanceRequest(fr, &ir), &instanceRequest{})
		var br batchInstanceRequest
		check("batch", &br, decodeBatchRequest(fr, &br), &batchInstanceRequest{})
		var q serviceQueryRequest
		check("query", &q, decodeQueryRequest(fr, &q), &serviceQueryRequest{})
		var sr subscribeServiceRequest
		check("subscribe", &sr, decodeSubscribeRequest(fr, &sr), &subscribeServiceRequest{})
		var wr wireResponse
		check("response", &wr, decodeWireResponse(fr, &wr), &wireResponse{})
	})
}

func TestDecodeInstanceRequestAllocations(t *testing.T) {
	fr := Frame{Type: TypeInstanceRequest, Body: []byte(decodeSamples[0])}
	allocs := testing.AllocsPerRun(100, func() {
		var r instanceRequest
		if err := decodeInstanceRequest(fr, &r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations decoding an InstanceRequest", allocs)
	}
}

// TestReplyEncoding: a reply encodes to the bytes proto.Marshal gives for
// its Payload, and decodes back to its type and body.
func TestReplyEncoding(t *testing.T) {
	big := []byte(strings.Repeat(`{"x":"y"}`, 1000))
	for _, r := range []reply{
		simpleReply(TypeHealthCheckResponse, okBody("1")), simpleReply("", nil), simpleReply(TypeErrorResponse, nil),
		infoReply(TypeQueryServiceResponse, "42", []byte(`{"name":"s","hosts":[]}`)), infoReply(TypeSubscribeServiceResponse, "", big),
	} {
		want, err := proto.Marshal(r.payload())
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendProto(nil); !bytes.Equal(got, want) || r.protoSize() != len(want) {
			t.Fatalf("%s: encoding %x (size %d), proto.Marshal %x", r.typ, got, r.protoSize(), want)
		}
		m, err := wireCodec{encoding.GetCodecV2(gproto.Name)}.Marshal(&r)
		if err != nil || !bytes.Equal(m.Materialize(), want) {
			t.Fatalf("%s: codec %v", r.typ, err)
		}
		var back nacospb.Payload
		if err := proto.Unmarshal(want, &back); err != nil || back.GetMetadata().GetType() != r.typ || !bytes.Equal(back.GetBody().GetValue(), r.body()) {
			t.Fatalf("%s: decodes to %v (%v)", r.typ, &back, err)
		}
	}
}

// TestOkReply: the reply built without copying has the bytes of the body
// built by okBody and okTypeBody, whatever the request id holds.
func TestOkReply(t *testing.T) {
	for _, id := range []string{"", "12", "a\"b", "x\\y", "\n", "é", "\u2028", "\x7f", "id-with-dashes"} {
		for _, typ := range []string{"", opRegisterInstance, opDeregisterInstance, opBatchRegisterInstance, "other"} {
			r := okReply(TypeInstanceResponse, id, typ)
			want := okBody(id)
			if typ != "" {
				want = okTypeBody(id, typ)
			}
			if got := r.body(); !bytes.Equal(got, want) {
				t.Errorf("id %q type %q: %s, want %s", id, typ, got, want)
			}
		}
	}
}

// FuzzOkReply: the success reply that references the request id without
// escaping it (plainJSON) has exactly the bytes of the escaping encoder's
// body, and that body is valid JSON carrying the id, for any id.
func FuzzOkReply(f *testing.F) {
	for _, id := range []string{"", "12", "a\"b", "x\\y", "\n", "é", "\u2028", "\x7f", "<tag>&", "\xff", "id-1"} {
		f.Add(id, uint8(0))
	}
	types := []string{"", opRegisterInstance, opDeregisterInstance, opBatchRegisterInstance, "other"}
	f.Fuzz(func(t *testing.T, id string, ti uint8) {
		typ := types[int(ti)%len(types)]
		want := okBody(id)
		if typ != "" {
			want = okTypeBody(id, typ)
		}
		r := okReply(TypeInstanceResponse, id, typ)
		got := r.body()
		if !bytes.Equal(got, want) {
			t.Fatalf("id %q type %q: %s, want %s", id, typ, got, want)
		}
		var back struct {
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("id %q: %s is not JSON: %v", id, got, err)
		}
		if utf8.ValidString(id) && back.RequestID != id {
			t.Fatalf("id %q decodes as %q", id, back.RequestID)
		}
	})
}
