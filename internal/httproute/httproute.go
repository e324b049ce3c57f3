// Package httproute is an http.ServeMux that remembers the patterns
// registered on it. net/http offers no way to list a mux's routes, and the
// auth middleware must have a rule for every route the server serves: with
// the list, the server checks that at start (and a test checks it for every
// feature), instead of someone keeping a list of files to grep.
package httproute

import (
	"net/http"
	"slices"
	"sync"
)

// Registrar is what route-mounting code needs of a mux. *http.ServeMux and
// *Mux implement it.
type Registrar interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Mux is an http.ServeMux that records its patterns.
type Mux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

var _ Registrar = (*Mux)(nil)

// New returns an empty Mux.
func New() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern (see http.ServeMux.Handle).
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.record(pattern)
}

// HandleFunc registers h for pattern (see http.ServeMux.HandleFunc).
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.ServeMux.HandleFunc(pattern, h)
	m.record(pattern)
}

func (m *Mux) record(pattern string) {
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
}

// Patterns returns the registered patterns in registration order.
func (m *Mux) Patterns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.patterns)
}
