package grpcapi

import (
	"context"

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

// body returns the JSON body in one piece.
func (r *reply) body() []byte {
	if r.info == nil && r.tail == nil {
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
