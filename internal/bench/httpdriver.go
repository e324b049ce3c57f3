package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Paths of the Nacos v1 naming API the HTTP driver uses.
const (
	PathInstance = "/nacos/v1/ns/instance"
	PathList     = "/nacos/v1/ns/instance/list"
	PathBeat     = "/nacos/v1/ns/instance/beat"
	// PathServiceList pages through a group's service names.
	PathServiceList = "/nacos/v1/ns/service/list"
)

// GoClientAgent is the User-Agent of the Nacos Go SDK v1.1.6; servers push
// to UDP subscribers only for agents they know.
const GoClientAgent = "Nacos-Go-Client:v1.1.6"

// HTTPOptions tunes the v1 HTTP driver.
type HTTPOptions struct {
	// Conns is the expected number of concurrent requests per target; the
	// transport keeps that many idle keep-alive connections.
	Conns int
	// Timeout bounds every request (default 5 s).
	Timeout time.Duration
	// CaptureDir, when set, receives the first 2xx response body of every
	// method and path (see CaptureFile); the ceiling server replays them.
	CaptureDir string
	// StdTransport uses net/http's http.Transport instead of the lean
	// keep-alive transport (which costs about half the client CPU per
	// request; see leanTransport).
	StdTransport bool
}

// HTTPDriver is the Nacos v1 HTTP Open API driver: form-encoded requests
// over keep-alive connections, shaped like the Go SDK's.
type HTTPDriver struct {
	targets []string
	base    []string
	client  *http.Client
	// rt is the transport requests go through directly (no http.Client:
	// no redirects, cookies or per-request timers).
	rt   http.RoundTripper
	idle interface{ CloseIdleConnections() }
	opts HTTPOptions

	capMu    sync.Mutex
	captured map[string]bool

	udpMu sync.Mutex
	udp   *udpWatcher
}

var _ Watcher = (*HTTPDriver)(nil)

// Shared request headers; the transport only reads them.
var (
	formHeader = http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded;charset=utf-8"},
		"User-Agent":     {GoClientAgent},
		"Client-Version": {GoClientAgent},
		"Request-Module": {"Naming"},
	}
)

// NewHTTPDriver returns a driver for targets (host:port each).
func NewHTTPDriver(targets []string, opts HTTPOptions) *HTTPDriver {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	// Idle connections are cheap; closing surplus ones is not (TIME_WAIT,
	// ephemeral ports), and converge polls on top of its own concurrency.
	conns := max(2*opts.Conns, 256)
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns * len(targets),
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		ResponseHeaderTimeout: opts.Timeout,
		ReadBufferSize:        32 << 10,
		WriteBufferSize:       8 << 10,
	}
	d := &HTTPDriver{targets: targets, opts: opts, captured: map[string]bool{},
		client: &http.Client{Transport: tr, Timeout: opts.Timeout}}
	if opts.StdTransport {
		d.rt, d.idle = d.client.Transport, tr
	} else {
		lt := newLeanTransport(opts.Timeout, conns)
		d.rt, d.idle = lt, lt
	}
	for _, t := range targets {
		d.base = append(d.base, "http://"+t)
	}
	return d
}

// Name implements Driver.
func (d *HTTPDriver) Name() string {
	if d.opts.StdTransport {
		return "http-v1/net-http"
	}
	return "http-v1"
}

// Nodes implements Driver.
func (d *HTTPDriver) Nodes() int { return len(d.targets) }

// Close implements Driver.
func (d *HTTPDriver) Close() error {
	d.idle.CloseIdleConnections()
	d.udpMu.Lock()
	defer d.udpMu.Unlock()
	if d.udp != nil {
		return d.udp.close()
	}
	return nil
}

// form builds an application/x-www-form-urlencoded string from key, value pairs.
func form(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

func (in *Instance) identity(kv ...string) []string {
	eph := "false"
	if in.Ephemeral {
		eph = "true"
	}
	return append([]string{"serviceName", in.Grouped(), "groupName", DefaultGroup, "ip", in.IP,
		"port", strconv.Itoa(in.Port), "clusterName", "DEFAULT", "ephemeral", eph}, kv...)
}

// Register implements Driver: POST /nacos/v1/ns/instance.
func (d *HTTPDriver) Register(ctx context.Context, node int, in *Instance) Outcome {
	md := in.Metadata
	if md == "" {
		md = "{}" // some servers (Polaris) reject a missing metadata
	}
	body := form(in.identity("weight", "1", "enable", "true", "healthy", "true", "metadata", md)...)
	o, _ := d.do(ctx, node, http.MethodPost, PathInstance, "", body, false)
	o.Op = "register"
	return o
}

// Deregister implements Driver: DELETE /nacos/v1/ns/instance.
func (d *HTTPDriver) Deregister(ctx context.Context, node int, in *Instance) Outcome {
	o, _ := d.do(ctx, node, http.MethodDelete, PathInstance, form(in.identity()...), "", false)
	o.Op = "deregister"
	return o
}

// beatJSON is the beat parameter the Go SDK sends.
type beatJSON struct {
	ServiceName string            `json:"serviceName"`
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	Weight      float64           `json:"weight"`
	Cluster     string            `json:"cluster"`
	Metadata    map[string]string `json:"metadata"`
	Scheduled   bool              `json:"scheduled"`
}

// Beat implements Driver: PUT /nacos/v1/ns/instance/beat with the beat JSON.
// A reply with code 20404 (instance unknown) counts as a failure.
func (d *HTTPDriver) Beat(ctx context.Context, node int, in *Instance) Outcome {
	bj, _ := json.Marshal(beatJSON{ServiceName: in.Grouped(), IP: in.IP, Port: in.Port, Weight: 1,
		Cluster: "DEFAULT", Metadata: map[string]string{}, Scheduled: true})
	body := form("serviceName", in.Grouped(), "groupName", DefaultGroup, "ephemeral", "true", "beat", string(bj))
	o, b := d.do(ctx, node, http.MethodPut, PathBeat, "", body, true)
	o.Op = "beat"
	if o.OK() && bytes.Contains(b, []byte("20404")) {
		o.Kind = "beat_not_found"
	}
	return o
}

// Query implements Driver: GET /nacos/v1/ns/instance/list, body discarded.
func (d *HTTPDriver) Query(ctx context.Context, node int, service string) Outcome {
	q := "serviceName=" + url.QueryEscape(DefaultGroup+"@@"+service) + "&clusters=&healthyOnly=false"
	o, _ := d.do(ctx, node, http.MethodGet, PathList, q, "", false)
	o.Op = "query"
	return o
}

// listReply is the part of an instance list the driver decodes.
type listReply struct {
	Name  string `json:"name"`
	Hosts []struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	} `json:"hosts"`
}

func (l *listReply) endpoints() []Endpoint {
	out := make([]Endpoint, 0, len(l.Hosts))
	for _, h := range l.Hosts {
		out = append(out, Endpoint{IP: h.IP, Port: h.Port})
	}
	return out
}

// Lookup implements Driver: GET /nacos/v1/ns/instance/list, decoded.
func (d *HTTPDriver) Lookup(ctx context.Context, node int, service string) (Outcome, []Endpoint) {
	q := "serviceName=" + url.QueryEscape(DefaultGroup+"@@"+service) + "&clusters=&healthyOnly=false"
	return d.lookup(ctx, node, q)
}

func (d *HTTPDriver) lookup(ctx context.Context, node int, q string) (Outcome, []Endpoint) {
	o, b := d.do(ctx, node, http.MethodGet, PathList, q, "", true)
	o.Op = "lookup"
	if !o.OK() {
		return o, nil
	}
	var lr listReply
	if err := json.Unmarshal(b, &lr); err != nil {
		return o.Failed("bad_json"), nil
	}
	return o, lr.endpoints()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends one request and classifies the answer. With keep the body is
// returned (a fresh copy); otherwise it is counted and discarded.
func (d *HTTPDriver) do(ctx context.Context, node int, method, path, query, body string, keep bool) (Outcome, []byte) {
	u := d.base[node] + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return Outcome{Kind: "bad_request"}, nil
	}
	req.Header = formHeader
	var resp *http.Response
	if d.opts.StdTransport {
		resp, err = d.client.Do(req)
	} else {
		resp, err = d.rt.RoundTrip(req)
	}
	if err != nil {
		return Outcome{Kind: TransportKind(err)}, nil
	}
	defer resp.Body.Close()
	o := Outcome{Status: resp.StatusCode}
	capture := d.opts.CaptureDir != "" && resp.StatusCode/100 == 2 && d.wantCapture(method, path)
	var out []byte
	if keep || capture {
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		n, err := buf.ReadFrom(resp.Body)
		o.Bytes = n
		if err == nil {
			out = bytes.Clone(buf.Bytes())
		}
		bufPool.Put(buf)
		if err != nil {
			return o.Failed(TransportKind(err)), nil
		}
		if capture {
			d.capture(method, path, out)
		}
	} else {
		n, err := io.Copy(io.Discard, resp.Body)
		o.Bytes = n
		if err != nil {
			return o.Failed(TransportKind(err)), nil
		}
	}
	if resp.StatusCode/100 != 2 {
		o.Kind = statusKind(resp.StatusCode)
	}
	return o, out
}

func (d *HTTPDriver) wantCapture(method, path string) bool {
	d.capMu.Lock()
	defer d.capMu.Unlock()
	return !d.captured[method+" "+path]
}

func (d *HTTPDriver) capture(method, path string, body []byte) {
	d.capMu.Lock()
	defer d.capMu.Unlock()
	key := method + " " + path
	if d.captured[key] {
		return
	}
	d.captured[key] = true
	_ = os.MkdirAll(d.opts.CaptureDir, 0o755)
	_ = os.WriteFile(filepath.Join(d.opts.CaptureDir, CaptureFile(method, path)), body, 0o644)
}

// CaptureFile is the file name a captured response body of method and path
// is stored under; ParseCaptureFile inverts it.
func CaptureFile(method, path string) string {
	return url.QueryEscape(method+" "+path) + ".body"
}

// ParseCaptureFile returns the method and path of a CaptureFile name.
func ParseCaptureFile(name string) (method, path string, ok bool) {
	s, found := strings.CutSuffix(name, ".body")
	if !found {
		return "", "", false
	}
	s, err := url.QueryUnescape(s)
	if err != nil {
		return "", "", false
	}
	method, path, ok = strings.Cut(s, " ")
	return method, path, ok && strings.HasPrefix(path, "/")
}

// TransportKind names a transport-level failure.
func TransportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn_reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_local_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "transport"
}
