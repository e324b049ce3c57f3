package nacospb

import "testing"

// TestWireNames guards the wire contract: Nacos clients call these exact
// method names, which only a package-less proto produces.
func TestWireNames(t *testing.T) {
	if got := Request_Request_FullMethodName; got != "/Request/request" {
		t.Errorf("unary method = %q", got)
	}
	if got := BiRequestStream_RequestBiStream_FullMethodName; got != "/BiRequestStream/requestBiStream" {
		t.Errorf("stream method = %q", got)
	}
	if pkg := File_nacos_grpc_service_proto.Package(); pkg != "" {
		t.Errorf("proto package = %q; must be empty", pkg)
	}
	md := (&Payload{}).ProtoReflect().Descriptor()
	if md.Fields().ByName("metadata").Number() != 2 || md.Fields().ByName("body").Number() != 3 {
		t.Error("Payload field numbers changed")
	}
	m := (&Metadata{}).ProtoReflect().Descriptor().Fields()
	if m.ByName("type").Number() != 3 || m.ByName("headers").Number() != 7 || m.ByName("clientIp").Number() != 8 {
		t.Error("Metadata field numbers changed")
	}
}
