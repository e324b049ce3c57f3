package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// errTooLarge marks a body over the configured limit (HTTP 413).
var errTooLarge = errors.New("request body too large")

// ReadParams reads a request's parameters as every handler of the API does;
// the auth middleware uses it and hands the result on in r.Form. Its error
// is ErrTooLarge (HTTP 413) or a malformed body (400).
func ReadParams(r *http.Request, maxBody int64) (url.Values, error) { return readParams(r, maxBody) }

// ErrTooLarge is ReadParams's error for a body over the limit.
var ErrTooLarge = errTooLarge

// readParams merges the query string and a form body the way a servlet's
// getParameter does: query values first, then body values. Bodies are parsed
// leniently because clients send them unencoded (the Go SDK sends PUT bodies
// like `beat={"ip":...}` raw); a pair that does not unescape keeps its raw text.
func readParams(r *http.Request, maxBody int64) (url.Values, error) {
	vals := make(url.Values)
	parseLenient(r.URL.RawQuery, vals)
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return vals, nil
	}
	if r.ContentLength > maxBody {
		return nil, errTooLarge
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err == nil && mt != "application/x-www-form-urlencoded" && mt != "text/plain" {
			// Nacos reads parameters only; other bodies carry nothing for us,
			// but they are bounded all the same.
			n, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxBody+1))
			if n > maxBody {
				return nil, errTooLarge
			}
			if err != nil {
				return nil, err
			}
			return vals, nil
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > maxBody {
		return nil, errTooLarge
	}
	parseLenient(string(body), vals)
	return vals, nil
}

// parseLenient adds the pairs of an application/x-www-form-urlencoded string
// to vals, keeping the raw text of any part that fails to unescape.
func parseLenient(s string, vals url.Values) {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		if k != "" {
			vals[k] = append(vals[k], v)
		}
	}
}

// first returns the first non-blank value among the given parameter names.
func first(vals url.Values, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(vals.Get(n)); v != "" {
			return v
		}
	}
	return ""
}
