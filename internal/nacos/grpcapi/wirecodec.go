package grpcapi

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	gproto "google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/nacospb"
)

// encodedMsg is a Payload already encoded in protobuf. A push goes to
// every subscriber of a service with the same bytes: it is encoded once,
// and the codec sends the bytes as they are.
type encodedMsg []byte

// encodeMsg encodes p once for many sends.
func encodeMsg(p *nacospb.Payload) (encodedMsg, error) {
	b, err := gproto.Marshal(p)
	return encodedMsg(b), err
}

// wireCodec is grpc-go's protobuf codec, plus encodedMsg sent as is.
type wireCodec struct{ encoding.CodecV2 }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case encodedMsg:
		// A SliceBuffer is not reference counted: the transport's Free of
		// it is a no-op, so the bytes can be shared by every send.
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	case *reply:
		n := m.protoSize()
		if mem.IsBelowBufferPoolingThreshold(n) {
			return mem.BufferSlice{mem.SliceBuffer(m.appendProto(make([]byte, 0, n)))}, nil
		}
		pool := mem.DefaultBufferPool()
		buf := pool.Get(n)
		*buf = m.appendProto((*buf)[:0])
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	}
	return c.CodecV2.Marshal(v)
}

func codecOption() grpc.ServerOption {
	return grpc.ForceServerCodecV2(wireCodec{encoding.GetCodecV2(proto.Name)})
}
