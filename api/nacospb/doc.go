// Package nacospb holds the wire types and gRPC services of the Nacos 2
// client protocol, generated from nacos_grpc_service.proto: Payload and
// Metadata, the unary service Request (/Request/request) and the
// bidirectional BiRequestStream (/BiRequestStream/requestBiStream).
//
// The proto has no package because unmodified Nacos clients call exactly
// those method names. As a consequence its message and service names
// ("Payload", "Request", ...) are registered unqualified in the global
// protobuf registry, just as the official SDKs register theirs. A binary
// that links this package together with a Nacos SDK's generated package
// (for example github.com/nacos-group/nacos-sdk-go/v2/api/grpc) panics at
// init with a registration conflict unless it runs with
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT=warn (or is built with
// -ldflags "-X google.golang.org/protobuf/reflect/protoregistry.conflictPolicy=warn").
// Tests that drive the server with a real SDK should therefore run the
// server as a separate process, or set that variable.
//
// Only the envelope is protobuf: the body of every Payload is an Any with an
// empty type_url whose value is the JSON of a Nacos request or response, and
// Metadata.type names its Java class. Package internal/nacos/grpcapi encodes
// and decodes those bodies.
//
// Regenerate with `go generate ./api/nacospb` (protoc 3.21, protoc-gen-go
// v1.36.12, protoc-gen-go-grpc v1.5.1).
package nacospb
