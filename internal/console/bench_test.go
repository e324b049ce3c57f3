package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/model"
)

// BenchmarkServicePage renders a service with 1000 instances (a full page,
// then a poll that finds nothing changed and answers 204).
func BenchmarkServicePage(b *testing.B) {
	e := newEnv(b, nil)
	svc := key("big")
	for i := range 1000 {
		e.register(svc, model.Instance{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250), Port: 8080, Metadata: map[string]string{"zone": "a", "version": "1.2.3"}})
	}
	page := e.get("/ui/service?name=big")
	poll := strings.ReplaceAll(regexp.MustCompile(`hx-get="([^"]+)"`).FindStringSubmatch(page.body)[1], "&amp;", "&")
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/service?name=big", nil))
		}
	})
	b.Run("poll-unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, poll, nil)
			req.Header.Set("HX-Request", "true")
			e.mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				b.Fatalf("poll = %d", rec.Code)
			}
		}
	})
}

// BenchmarkServiceList filters and pages 10000 services.
func BenchmarkServiceList(b *testing.B) {
	e := newEnv(b, nil)
	for i := range 10000 {
		e.register(key(fmt.Sprintf("svc-%05d", i)), model.Instance{IP: "10.0.0.1", Port: 80})
	}
	for _, q := range []string{"", "?q=svc-09&hideEmpty=on"} {
		b.Run("query="+q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/services"+q, nil))
			}
		})
	}
}

// BenchmarkOverview renders the overview over 10000 services.
func BenchmarkOverview(b *testing.B) {
	e := newEnv(b, nil)
	for i := range 10000 {
		e.register(key(fmt.Sprintf("svc-%05d", i)), model.Instance{IP: "10.0.0.1", Port: 80})
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil))
	}
}
