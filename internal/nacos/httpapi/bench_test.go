package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkRegister is one Go-SDK register (form body) through the handler,
// re-registering 1000 instances with changing metadata so every call writes.
func BenchmarkRegister(b *testing.B) {
	h := newHarness(b)
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = "serviceName=DEFAULT_GROUP%40%40demo" + strconv.Itoa(i%50) + "&ip=10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250) +
			"&port=8080&weight=1&enable=true&healthy=true&ephemeral=true&clusterName=&namespaceId=&metadata=%7B%22version%22%3A%22"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("POST", "/nacos/v1/ns/instance", strings.NewReader(bodies[i%len(bodies)]+strconv.Itoa(i)+"%22%7D"))
		req.Header.Set("Content-Type", formCT)
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body.String())
		}
		i++
	}
}

// BenchmarkList is instance/list of a 10-instance service whose revision
// does not change, so every call after the first is a render-cache hit.
func BenchmarkList(b *testing.B) {
	h := newHarness(b)
	for i := range 10 {
		h.register(b, "DEFAULT_GROUP%40%40demo", "10.0.0."+strconv.Itoa(i+1), 8080, "metadata=%7B%22version%22%3A%221.0%22%7D")
	}
	req := httptest.NewRequest("GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@demo&clusters=&healthyOnly=false&udpPort=0&namespaceId=", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body.String())
		}
	}
}

// BenchmarkBeat is the Go SDK's unencoded PUT beat for a known instance.
func BenchmarkBeat(b *testing.B) {
	h := newHarness(b)
	const n = 1000
	bodies := make([]string, n)
	for i := range bodies {
		ip := "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)
		h.register(b, "DEFAULT_GROUP%40%40demo", ip, 8080, "")
		bodies[i] = `serviceName=DEFAULT_GROUP@@demo&beat={"cluster":"DEFAULT","ip":"` + ip +
			`","metadata":{},"port":8080,"scheduled":false,"serviceName":"DEFAULT_GROUP@@demo","weight":1}`
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("PUT", "/nacos/v1/ns/instance/beat", strings.NewReader(bodies[i%n]))
		req.Header.Set("Content-Type", formCT)
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body.String())
		}
		i++
	}
}
