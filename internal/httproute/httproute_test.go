package httproute

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestMuxRecordsAndServes(t *testing.T) {
	m := New()
	m.HandleFunc("GET /a", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("a")) })
	m.Handle("POST /b/{id}", http.NotFoundHandler())
	var r Registrar = m
	r.HandleFunc("/c/", func(http.ResponseWriter, *http.Request) {})
	if got := m.Patterns(); !slices.Equal(got, []string{"GET /a", "POST /b/{id}", "/c/"}) {
		t.Fatalf("patterns %v", got)
	}
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/a", nil))
	if w.Body.String() != "a" {
		t.Fatalf("GET /a = %d %q", w.Code, w.Body.String())
	}
	if _, p := m.Handler(httptest.NewRequest(http.MethodPost, "/b/7", nil)); p != "POST /b/{id}" {
		t.Fatalf("resolved %q", p)
	}
}
