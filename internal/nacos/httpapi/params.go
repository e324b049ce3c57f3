package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unsafe"
)

// errTooLarge marks a body over the configured limit (HTTP 413).
var errTooLarge = errors.New("request body too large")

// ReadParams reads a request's parameters as every handler of the API does;
// the auth middleware uses it and hands the result on in r.Form. Its error
// is ErrTooLarge (HTTP 413) or a malformed body (400).
func ReadParams(r *http.Request, maxBody int64) (url.Values, error) {
	p, err := readParams(r, maxBody)
	if err != nil {
		return nil, err
	}
	v := make(url.Values, len(p.kv))
	for _, kv := range p.kv {
		v[kv.k] = append(v[kv.k], kv.v)
	}
	p.release()
	return v, nil
}

// ErrTooLarge is ReadParams's error for a body over the limit.
var ErrTooLarge = errTooLarge

// paramsOf makes a parameter list of values read by ReadParams (each
// name's values keep their order, so Get answers the same).
func paramsOf(v url.Values) *params {
	p := getParams()
	for k, vs := range v {
		for _, x := range vs {
			p.kv = append(p.kv, pair{k, x})
		}
	}
	return p
}

// params are a request's parameters: the pairs of the query string, then
// those of a form body, in order. Get returns the first value of a name,
// as url.Values.Get does on the merged values, so query values win as
// with a servlet's getParameter. A request has a dozen parameters, so a
// list scan beats a map and allocates nothing.
//
// Values are slices of the URL and of the body: a handler that keeps one
// beyond the request must copy it (the store interns what it keeps).
type params struct {
	kv []pair
}

type pair struct{ k, v string }

var paramsPool = sync.Pool{New: func() any { return &params{kv: make([]pair, 0, 16)} }}

func getParams() *params { return paramsPool.Get().(*params) }

func (p *params) release() {
	clear(p.kv)
	p.kv = p.kv[:0]
	paramsPool.Put(p)
}

// Get returns the first value of name, or "".
func (p *params) Get(name string) string {
	for i := range p.kv {
		if p.kv[i].k == name {
			return p.kv[i].v
		}
	}
	return ""
}

// Has reports whether name is present, as url.Values.Has does.
func (p *params) Has(name string) bool {
	for i := range p.kv {
		if p.kv[i].k == name {
			return true
		}
	}
	return false
}

// All returns every value of name in order.
func (p *params) All(name string) []string {
	var out []string
	for i := range p.kv {
		if p.kv[i].k == name {
			out = append(out, p.kv[i].v)
		}
	}
	return out
}

// Len returns the number of pairs.
func (p *params) Len() int { return len(p.kv) }

// readParams merges the query string and a form body the way a servlet's
// getParameter does: query values first, then body values. Bodies are parsed
// leniently because clients send them unencoded (the Go SDK sends PUT bodies
// like `beat={"ip":...}` raw); a pair that does not unescape keeps its raw text.
// The caller releases the result.
func readParams(r *http.Request, maxBody int64) (*params, error) {
	p := getParams()
	p.parseLenient(r.URL.RawQuery)
	if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return p, nil
	}
	if r.ContentLength > maxBody {
		p.release()
		return nil, errTooLarge
	}
	// The header map's key is canonical already: skip Header.Get's work.
	if ct := headerValue(r.Header, "Content-Type"); ct != "" && !formType(ct) {
		mt, _, err := mime.ParseMediaType(ct)
		if err == nil && mt != "application/x-www-form-urlencoded" && mt != "text/plain" {
			// Nacos reads parameters only; other bodies carry nothing for us,
			// but they are bounded all the same.
			n, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxBody+1))
			if n > maxBody || err != nil {
				p.release()
				if err == nil {
					err = errTooLarge
				}
				return nil, err
			}
			return p, nil
		}
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		p.release()
		return nil, err
	}
	if len(body) > 0 {
		// The buffer is never written again: its string form can share it.
		p.parseLenient(unsafe.String(&body[0], len(body)))
	}
	return p, nil
}

// headerValue is Header.Get for a key in canonical form.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// formType reports the common form content types without parsing them.
func formType(ct string) bool {
	const form = "application/x-www-form-urlencoded"
	if strings.HasPrefix(ct, form) {
		rest := ct[len(form):]
		return rest == "" || rest[0] == ';'
	}
	return false
}

// readBody reads at most maxBody bytes of the body, into a buffer of the
// announced size when there is one.
func readBody(r *http.Request, maxBody int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= maxBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		// net/http stops a body at its Content-Length; anything else
		// (tests' readers) must not carry more than announced.
		var one [1]byte
		if m, _ := r.Body.Read(one[:]); m > 0 {
			rest, err := io.ReadAll(io.LimitReader(r.Body, maxBody-n))
			if err != nil {
				return nil, err
			}
			body = append(append(body, one[0]), rest...)
			if int64(len(body)) > maxBody {
				return nil, errTooLarge
			}
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > maxBody {
		return nil, errTooLarge
	}
	return body, nil
}

// parseLenient adds the pairs of an application/x-www-form-urlencoded
// string, keeping the raw text of any part that fails to unescape.
func (p *params) parseLenient(s string) {
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if k = unescape(k); k != "" {
			p.kv = append(p.kv, pair{k, unescape(v)})
		}
	}
}

// unescape is url.QueryUnescape, keeping s when it is malformed. Plain
// text (no '%' or '+') is returned as is, without a copy; escaped text is
// decoded in one pass into one allocation (url.QueryUnescape, which also
// validates host syntax that does not apply here, costs several times
// more on the long escaped JSON values clients send).
func unescape(s string) string {
	i := 0
	for i < len(s) && s[i] != '%' && s[i] != '+' {
		i++
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, len(s))
	j := copy(b, s[:i])
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b[j] = ' '
		case '%':
			if i+2 >= len(s) {
				return s // malformed: keep the raw text
			}
			h, l := hexVal[s[i+1]], hexVal[s[i+2]]
			if h|l > 0xf {
				return s
			}
			b[j] = h<<4 | l
			i += 2
		default:
			b[j] = c
		}
		j++
	}
	return unsafe.String(&b[0], j)
}

// hexVal maps a hex digit to its value, anything else to 0xff.
var hexVal = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c - 'A' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// first returns the first non-blank value among the given parameter names.
func first(p Getter, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(p.Get(n)); v != "" {
			return v
		}
	}
	return ""
}
