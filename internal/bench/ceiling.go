package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Ceiling is the practical upper bound a server can reach on a scenario:
// a trivial net/http handler that answers every request with fixed bytes
// (captured from a real response), doing no work of its own. Run on the
// same core as the server, with the same load, it shows how much of the
// cost is HTTP itself.
type Ceiling struct {
	def    reply
	routes map[string]reply
}

type reply struct {
	body []byte
	ct   string
	cl   string
}

func newReply(b []byte) reply {
	ct := "text/plain;charset=UTF-8"
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		ct = "application/json;charset=UTF-8"
	}
	return reply{body: b, ct: ct, cl: strconv.Itoa(len(b))}
}

// NewCeiling answers def to every request whose "METHOD /path" is not in
// routes.
func NewCeiling(def []byte, routes map[string][]byte) *Ceiling {
	c := &Ceiling{def: newReply(def), routes: map[string]reply{}}
	for k, b := range routes {
		c.routes[k] = newReply(b)
	}
	return c
}

// ServeHTTP implements http.Handler.
func (c *Ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep, ok := c.routes[r.Method+" "+r.URL.Path]
	if !ok {
		rep = c.def
	}
	h := w.Header()
	h["Content-Type"] = []string{rep.ct}
	h["Content-Length"] = []string{rep.cl}
	_, _ = w.Write(rep.body)
}

// Routes returns the configured "METHOD /path" keys.
func (c *Ceiling) Routes() []string {
	var ks []string
	for k := range c.routes {
		ks = append(ks, k)
	}
	return ks
}

// LoadRoutes reads the bodies a run captured (--capture-dir) into routes
// keyed "METHOD /path".
func LoadRoutes(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	routes := map[string][]byte{}
	for _, e := range ents {
		m, p, ok := ParseCaptureFile(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		routes[m+" "+p] = b
	}
	return routes, nil
}

// CaptureURL fetches url once and returns its body, for a ceiling that
// replays a live server's answer.
func CaptureURL(url string) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("capture %s: status %d", url, resp.StatusCode)
	}
	return b, nil
}
