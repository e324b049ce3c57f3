package authapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
)

// BenchmarkListInstance compares a read (GET instance/list) through the
// plain Nacos API with the same read through the auth middleware, with a
// token in the Authorization header (verified once, then from the cache)
// and with npm-style username/password parameters (HMAC-keyed cache after
// the first bcrypt check).
func BenchmarkListInstance(b *testing.B) {
	h := newHarness(b)
	reg := "serviceName=orders&groupName=G&namespaceId=dev&ip=10.0.0.1&port=80&accessToken=" + h.admin
	if w := h.do("POST", "/nacos/v1/ns/instance", reg); w.Code != 200 {
		b.Fatal(w.Body.String())
	}
	target := "/nacos/v1/ns/instance/list?serviceName=orders&groupName=G&namespaceId=dev"
	// The plain API (what auth off costs): the handler the middleware wraps.
	plain := h.h.(*middleware).next
	for _, c := range []struct {
		name   string
		h      http.Handler
		target string
		hdr    string
	}{
		{"auth=off", plain, target, ""},
		{"auth=on/bearer", h.h, target, "Bearer " + h.ro},
		{"auth=on/password", h.h, target + "&username=ro&password=ro-password", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.target, nil)
			if c.hdr != "" {
				req.Header.Set("Authorization", c.hdr)
			}
			b.ReportAllocs()
			for b.Loop() {
				req.Form = nil
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}

// BenchmarkGRPCAuthorize is the per-request cost of the gRPC guard on an
// instance registration with a cached token.
func BenchmarkGRPCAuthorize(b *testing.B) {
	h := newHarness(b)
	g := &GRPC{Auth: h.a, Limits: model.DefaultLimits()}
	body := []byte(`{"requestId":"1","namespace":"dev","groupName":"G","serviceName":"orders","type":"registerInstance",` +
		`"instance":{"ip":"10.0.0.1","port":80,"weight":1,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT"}}`)
	hdr := map[string]string{"accessToken": h.rw}
	b.ReportAllocs()
	for b.Loop() {
		if _, code, msg := g.Authorize(grpcapi.TypeInstanceRequest, body, hdr, "127.0.0.1"); code != 0 {
			b.Fatal(msg)
		}
	}
}
