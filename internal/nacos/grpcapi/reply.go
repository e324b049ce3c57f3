package grpcapi

import (
	"context"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/distro-registry/distro/api/nacospb"
)

// reply is an answer to a unary request: a Payload of type typ whose JSON
// body is head, then info, then tail. A ServiceInfo is rendered once per
// service revision and shared by every answer that carries it; as a part
// of its own it is copied only into the transport's buffer (wireCodec
// encodes a *reply straight to protobuf), not into a body built for each
// answer.
type reply struct {
	typ              string
	head, info, tail []byte
}

// simpleReply is a reply with a body of one piece.
func simpleReply(typ string, body []byte) reply { return reply{typ: typ, head: body} }

// infoReply is a QueryServiceResponse or SubscribeServiceResponse: a success
// body around rendered ServiceInfo JSON.
func infoReply(typ, requestID string, info []byte) reply {
	head := appendOK(make([]byte, 0, 96+len(requestID)), requestID)
	head = append(head, `,"serviceInfo":`...)
	return reply{typ: typ, head: head, info: info, tail: closeBrace}
}

var closeBrace = []byte("}")

// okHead starts every success body, up to the requestId's opening quote.
var okHead = []byte(`{"resultCode":200,"errorCode":0,"success":true,"message":"","requestId":"`)

// Tails of the success bodies of okReply, after the requestId: its closing
// quote and the rest of the body.
var (
	tailOK    = []byte(`"}`)
	typeTails = map[string][]byte{}
)

func init() {
	for _, t := range []string{opRegisterInstance, opDeregisterInstance, opBatchRegisterInstance, opBatchDeregisterInstance} {
		typeTails[t] = []byte(`","type":"` + t + `"}`)
	}
}

// okReply is a success answer: the body of okBody (typ == "") or of
// okTypeBody, built without copying when the requestId needs no escaping
// (the usual case: it is the client's counter).
func okReply(respType, requestID, typ string) reply {
	tail := tailOK
	if typ != "" {
		if tail = typeTails[typ]; tail == nil {
			return simpleReply(respType, okTypeBody(requestID, typ))
		}
	}
	if !plainJSON(requestID) {
		if typ == "" {
			return simpleReply(respType, okBody(requestID))
		}
		return simpleReply(respType, okTypeBody(requestID, typ))
	}
	// The id's bytes are only read (they belong to the request body).
	return reply{typ: respType, head: okHead, info: unsafe.Slice(unsafe.StringData(requestID), len(requestID)), tail: tail}
}

// plainJSON reports whether s can stand between quotes in JSON as is.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// body returns the JSON body in one piece.
func (r *reply) body() []byte {
	if len(r.info) == 0 && len(r.tail) == 0 {
		return r.head
	}
	b := make([]byte, 0, len(r.head)+len(r.info)+len(r.tail))
	return append(append(append(b, r.head...), r.info...), r.tail...)
}

// payload returns the reply as a Payload.
func (r *reply) payload() *nacospb.Payload { return EncodePayload(r.typ, r.body()) }

// Protobuf field numbers of Payload, Metadata and Any (api/nacospb).
const (
	fieldPayloadMetadata = 2
	fieldPayloadBody     = 3
	fieldMetadataType    = 3
	fieldAnyValue        = 2
)

func (r *reply) bodyLen() int { return len(r.head) + len(r.info) + len(r.tail) }

// sizes returns the encoded sizes of the Metadata and Any messages.
func (r *reply) sizes() (md, anyMsg int) {
	if r.typ != "" {
		md = protowire.SizeTag(fieldMetadataType) + protowire.SizeBytes(len(r.typ))
	}
	if n := r.bodyLen(); n > 0 {
		anyMsg = protowire.SizeTag(fieldAnyValue) + protowire.SizeBytes(n)
	}
	return md, anyMsg
}

// protoSize is the size of the reply's Payload encoding.
func (r *reply) protoSize() int {
	md, anyMsg := r.sizes()
	return protowire.SizeTag(fieldPayloadMetadata) + protowire.SizeBytes(md) +
		protowire.SizeTag(fieldPayloadBody) + protowire.SizeBytes(anyMsg)
}

// appendProto appends the Payload encoding, as proto.Marshal of payload()
// produces it (TestReplyEncoding checks).
func (r *reply) appendProto(b []byte) []byte {
	md, anyMsg := r.sizes()
	b = protowire.AppendTag(b, fieldPayloadMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(md))
	if r.typ != "" {
		b = protowire.AppendTag(b, fieldMetadataType, protowire.BytesType)
		b = protowire.AppendString(b, r.typ)
	}
	b = protowire.AppendTag(b, fieldPayloadBody, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyMsg))
	if n := r.bodyLen(); n > 0 {
		b = protowire.AppendTag(b, fieldAnyValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = append(append(append(b, r.head...), r.info...), r.tail...)
	}
	return b
}

// requestServiceDesc is nacospb's Request service with a handler that
// answers with a *reply instead of a *nacospb.Payload (the method name, the
// request message and the wire format are the same).
var requestServiceDesc = grpc.ServiceDesc{
	ServiceName: "Request",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "request", Handler: requestHandler}},
	Streams:     []grpc.StreamDesc{},
	Metadata:    "nacos_grpc_service.proto",
}

func requestHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Server)
	in := new(nacospb.Payload)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return s.answer(ctx, in), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: nacospb.Request_Request_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.answer(ctx, req.(*nacospb.Payload)), nil
	})
}
