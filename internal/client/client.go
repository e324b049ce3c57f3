package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds one attempt on one server unless WithTimeout says
// otherwise. It matches the Nacos SDKs' default request timeout.
const DefaultTimeout = 5 * time.Second

// DefaultUserAgent is sent when WithUserAgent is not given. distroctl
// replaces it with "distroctl/<version>" so that server logs show who called.
const DefaultUserAgent = "distroctl/dev"

// contextPath is the Nacos HTTP context path every API path lives under.
const contextPath = "/nacos"

// maxBody caps how much of an answer is read, so a broken or hostile server
// cannot make the client allocate without bound.
const maxBody = 64 << 20

// maxMessage caps the server message kept in an APIError: errors are
// printed on one line.
const maxMessage = 512

// Client talks to a set of distro (or Nacos) servers. Create it with New.
type Client struct {
	servers   []string
	hc        *http.Client
	timeout   time.Duration
	namespace string
	userAgent string

	randMu sync.Mutex // guards rnd; *rand.Rand is not safe for concurrent use
	rnd    *rand.Rand // nil: use the auto-seeded global source

	// Credentials (WithCredentials) and the access token they got.
	username, password string
	tokMu              sync.Mutex
	tok                string
	tokUntil           time.Time
}

// Option configures a Client in New.
type Option func(*Client)

// WithTimeout bounds each attempt on one server (not the whole call, so that
// failover still has time after a server hangs). Zero or negative disables
// the per-attempt bound; the call's context still applies.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithHTTPClient replaces the HTTP client, for custom transports, proxies or
// TLS-terminating front ends. Its own Timeout, if set, applies on top of
// WithTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithNamespace sets the namespaceId sent with every naming call. Empty
// (the default) sends none, which the server reads as "public".
func WithNamespace(ns string) Option {
	return func(c *Client) { c.namespace = ns }
}

// WithRand sets the random source that picks the server order. Tests seed it
// to make server choice reproducible; by default an auto-seeded source is
// used. The Client serialises its use of r.
func WithRand(r *rand.Rand) Option {
	return func(c *Client) { c.rnd = r }
}

// WithUserAgent sets the User-Agent header. Avoid Nacos SDK agents
// ("Nacos-Go-Client:...") unless you want the server to treat this client as
// a push subscriber.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// New returns a Client for servers, each "host:port" of a server's HTTP
// port. The list must not be empty; blank entries are an error rather than
// silently skipped, so that a typo in a server list is noticed.
func New(servers []string, opts ...Option) (*Client, error) {
	if len(servers) == 0 {
		return nil, errors.New("client: no servers given")
	}
	c := &Client{
		servers:   make([]string, 0, len(servers)),
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,
	}
	for _, s := range servers {
		s = strings.TrimSpace(s)
		if err := checkServer(s); err != nil {
			return nil, err
		}
		c.servers = append(c.servers, s)
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

// checkServer rejects anything that is not host:port with a numeric port.
func checkServer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("client: server %q: want host:port: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("client: server %q: empty host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("client: server %q: bad port %q", s, port)
	}
	return nil
}

// Servers returns a copy of the configured server list, in the given order.
func (c *Client) Servers() []string {
	return append([]string(nil), c.servers...)
}

// order returns a fresh random permutation of the servers.
func (c *Client) order() []string {
	var perm []int
	if c.rnd != nil {
		c.randMu.Lock()
		perm = c.rnd.Perm(len(c.servers))
		c.randMu.Unlock()
	} else {
		perm = rand.Perm(len(c.servers))
	}
	out := make([]string, len(perm))
	for i, p := range perm {
		out[i] = c.servers[p]
	}
	return out
}

// naming returns params with the namespace filled in, for /v1/ns calls.
func (c *Client) naming() url.Values {
	v := url.Values{}
	if c.namespace != "" {
		v.Set("namespaceId", c.namespace)
	}
	return v
}

// call sends one request with failover and returns the answer body and the
// server that gave it. path is relative to the server root. With
// credentials, a token is sent; a 403 on a token that was cached gets one
// new login and one retry (the token may have expired or been revoked).
func (c *Client) call(ctx context.Context, method, path string, params url.Values) ([]byte, string, error) {
	var failed []error
	for _, srv := range c.order() {
		body, err := c.authed(ctx, srv, method, path, params)
		if err == nil {
			return body, srv, nil
		}
		if !retryable(err) {
			return nil, srv, err
		}
		failed = append(failed, err)
		if ctx.Err() != nil {
			break // the caller gave up: trying more servers cannot help
		}
	}
	return nil, "", &failoverError{errs: failed, total: len(c.servers)}
}

// once sends one request to one server, without failover. token, if not
// empty, goes in the Authorization header (not the URL, which servers log).
func (c *Client) once(ctx context.Context, server, method, path string, params url.Values, token ...string) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	u := "http://" + server + path
	var body io.Reader
	encoded := params.Encode()
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		body = strings.NewReader(encoded)
	default:
		if encoded != "" {
			u += "?" + encoded
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, &transportError{server: server, err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	}
	if len(token) > 0 && token[0] != "" {
		req.Header.Set("Authorization", "Bearer "+token[0])
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json, text/plain;q=0.9")

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &transportError{server: server, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, &transportError{server: server, err: err}
	}
	if len(data) > maxBody {
		return nil, &transportError{server: server, err: fmt.Errorf("answer larger than %d bytes", maxBody)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &APIError{Status: resp.StatusCode, Message: message(data, resp.StatusCode), Server: server}
	}
	return data, nil
}

// message turns an error body into one short line. Nacos answers errors as
// plain text; newer APIs wrap them as {"code":..,"message":..}.
func message(body []byte, status int) string {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "{") {
		var v struct {
			Message string `json:"message"`
		}
		if decodeJSON([]byte(s), &v) == nil && v.Message != "" {
			s = v.Message
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		s = http.StatusText(status)
	}
	if len(s) > maxMessage {
		s = s[:maxMessage] + "..."
	}
	return s
}

// decodeJSON decodes body into v, keeping numbers in map[string]any values
// as json.Number so that large integers (millisecond times) stay exact.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return dec.Decode(v)
}
