package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/distro-registry/distro/internal/httproute"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/namespace"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Subscriber registers v1 UDP push subscribers; udppush.Pusher implements it.
// who is the authenticated caller ("" with auth off), so that pushes can
// stop when it may no longer read the service.
type Subscriber interface {
	Subscribe(key model.ServiceKey, clusters string, addr netip.AddrPort, agent, who string) error
	SubscriberCount() int
}

// Config holds the API's dependencies and settings.
type Config struct {
	Store  *store.Store
	Writer registry.Writer
	// Push may be nil: list calls then never subscribe.
	Push   Subscriber
	Limits model.Limits
	// CacheMillis is the cacheMillis clients are told.
	CacheMillis int64
	// ClientBeatInterval is the default beat period told to clients (ms).
	ClientBeatInterval int64
	Logger             *slog.Logger
	// Extra lets the server add counters to operator/metrics.
	Extra func() map[string]any
	// Ready, if set, gates naming reads: until it reports true they answer
	// 503, so clients fail over to a node that has loaded its data instead
	// of reading a partial copy (Nacos serves one, #8436). Writes are
	// accepted meanwhile and merged with the loaded data.
	Ready func() (bool, string)
	// HealthChecks describes the server-side health checks of persistent
	// instances for rendering (service detail, switches).
	HealthChecks HealthCheckInfo
	// Identity, if set, names the authenticated caller of a request (the
	// auth middleware's decision) for push subscriptions.
	Identity func(r *http.Request) string
	// Sync, if set, makes a read with linearizable=true wait until this
	// node has applied every persistent write acknowledged before it
	// (a Raft read index); without it reads are served locally, as Nacos
	// does. Ephemeral data is always this node's AP view.
	Sync func(ctx context.Context) error
	// Namespaces serves /v1/console/namespaces (not mounted when nil).
	Namespaces *namespace.Registry
}

// HealthCheckInfo is what the API tells clients about server-side health
// checks.
type HealthCheckInfo struct {
	// Disabled is set when the server runs no health checks.
	Disabled bool
	// DefaultType is the checker of clusters without explicit settings
	// (model.CheckNone when empty).
	DefaultType string
	// CheckTimes is the number of consecutive results that change an
	// instance's health (Nacos switch checkTimes; 3 when 0).
	CheckTimes int
}

// API is the Nacos v1 naming HTTP API.
type API struct {
	cfg Config
	mux *httproute.Mux
	// exact maps a path to its handlers by method, for the patterns that
	// name one method and one path: the common requests skip the mux's
	// pattern matching. Anything else (HEAD, unknown paths, paths that need
	// cleaning, wrong methods) goes through mux.
	exact map[string]*methods
}

// methods are one path's handlers.
type methods struct {
	get, post, put, del, patch http.HandlerFunc
}

func (m *methods) of(method string) *http.HandlerFunc {
	switch method {
	case http.MethodGet:
		return &m.get
	case http.MethodPost:
		return &m.post
	case http.MethodPut:
		return &m.put
	case http.MethodDelete:
		return &m.del
	case http.MethodPatch:
		return &m.patch
	}
	return nil
}

// handle registers h for pattern "METHOD /path" on the mux and in the
// exact table.
func (a *API) handle(pattern string, h http.HandlerFunc) {
	a.mux.HandleFunc(pattern, h)
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || strings.HasSuffix(path, "/") || strings.Contains(path, "{") {
		return
	}
	m := a.exact[path]
	if m == nil {
		m = &methods{}
		a.exact[path] = m
	}
	if f := m.of(method); f != nil {
		*f = h
	}
}

// registrar registers routes on the mux and in the exact table.
type registrar struct{ a *API }

func (r registrar) HandleFunc(pattern string, h http.HandlerFunc) { r.a.handle(pattern, h) }

// Front returns a handler for a server whose mux hands this API its paths:
// the API's exact routes are served directly, skipping the mux's pattern
// matching, and everything else goes through mux. A route for which mux
// would pick another handler is left to mux, so Front answers exactly as
// mux does. Call it once every route is registered on mux.
func (a *API) Front(mux *http.ServeMux) http.Handler {
	f := &front{mux: mux, exact: map[string]*methods{}}
	for path, m := range a.exact {
		fm := &methods{}
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			h := m.of(method)
			if *h == nil {
				continue
			}
			probe := &http.Request{Method: method, URL: &url.URL{Path: path}, Host: "localhost"}
			if got, _ := mux.Handler(probe); got == a.mux {
				*fm.of(method) = *h
			}
		}
		f.exact[path] = fm
	}
	return f
}

type front struct {
	mux   *http.ServeMux
	exact map[string]*methods
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := f.exact[r.URL.Path]; m != nil && r.URL.RawPath == "" {
		if h := m.of(r.Method); h != nil && *h != nil {
			(*h)(w, r)
			return
		}
	}
	f.mux.ServeHTTP(w, r)
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := a.exact[r.URL.Path]; m != nil && r.URL.RawPath == "" {
		if f := m.of(r.Method); f != nil && *f != nil {
			(*f)(w, r)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// New builds the API. Mount Handler under "/nacos/".
func New(cfg Config) *API {
	if cfg.CacheMillis == 0 {
		cfg.CacheMillis = render.DefaultCacheMillis
	}
	if cfg.ClientBeatInterval == 0 {
		cfg.ClientBeatInterval = model.DefaultHeartBeatIntervalMs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HealthChecks.DefaultType == "" {
		cfg.HealthChecks.DefaultType = model.CheckNone
	}
	if cfg.HealthChecks.CheckTimes == 0 {
		cfg.HealthChecks.CheckTimes = 3
	}
	a := &API{cfg: cfg, mux: httproute.New(), exact: map[string]*methods{}}
	m := registrar{a}
	m.HandleFunc("POST /nacos/v1/ns/instance", a.write(a.registerOp))
	m.HandleFunc("DELETE /nacos/v1/ns/instance", a.write(a.deregisterOp))
	m.HandleFunc("PUT /nacos/v1/ns/instance", a.write(a.updateOp(registry.OpUpdate)))
	m.HandleFunc("PATCH /nacos/v1/ns/instance", a.write(a.updateOp(registry.OpPatch)))
	m.HandleFunc("GET /nacos/v1/ns/instance", a.read(a.gated(a.instanceDetail)))
	m.HandleFunc("GET /nacos/v1/ns/instance/list", a.read(a.gated(a.instanceList)))
	m.HandleFunc("PUT /nacos/v1/ns/instance/beat", a.read(a.beat))
	m.HandleFunc("POST /nacos/v1/ns/service", a.write(a.serviceOp(registry.OpCreateService)))
	m.HandleFunc("PUT /nacos/v1/ns/service", a.write(a.serviceOp(registry.OpUpdateService)))
	m.HandleFunc("DELETE /nacos/v1/ns/service", a.write(a.serviceOp(registry.OpDeleteService)))
	m.HandleFunc("GET /nacos/v1/ns/service", a.read(a.gated(a.serviceDetail)))
	m.HandleFunc("GET /nacos/v1/ns/service/list", a.read(a.gated(a.serviceList)))
	m.HandleFunc("PUT /nacos/v1/ns/cluster", a.write(a.clusterOp))
	m.HandleFunc("GET /nacos/v1/ns/catalog/services", a.read(a.gated(a.catalogServices)))
	m.HandleFunc("GET /nacos/v1/ns/catalog/instances", a.read(a.gated(a.catalogInstances)))
	m.HandleFunc("GET /nacos/v1/ns/catalog/service", a.read(a.gated(a.serviceDetail)))
	for _, p := range []string{"operator", "ops"} {
		m.HandleFunc("GET /nacos/v1/ns/"+p+"/metrics", a.read(a.metrics))
		m.HandleFunc("GET /nacos/v1/ns/"+p+"/switches", a.read(a.switches))
		m.HandleFunc("PUT /nacos/v1/ns/"+p+"/switches", a.read(a.putSwitch))
	}
	m.HandleFunc("POST /nacos/v1/auth/users/login", a.read(a.login))
	m.HandleFunc("POST /nacos/v1/auth/login", a.read(a.login))
	a.mountConsole()
	return a
}

// Handler returns the HTTP handler for the /nacos/ tree: the API's
// http.ServeMux (the auth middleware resolves patterns with it). The API
// itself (ServeHTTP) answers the same, the exact routes without the mux's
// pattern matching.
func (a *API) Handler() http.Handler { return a.mux.ServeMux }

// Patterns returns the route patterns of Handler (for the auth rule check).
func (a *API) Patterns() []string { return a.mux.Patterns() }

// reply is what a handler answers: a status and a body (JSON bytes or text).
type reply struct {
	status int
	body   []byte
	json   bool
}

var okBody = []byte("ok")

func okText() reply         { return reply{status: http.StatusOK, body: okBody} }
func okJSON(b []byte) reply { return reply{status: http.StatusOK, body: b, json: true} }
func errReply(err error) reply {
	return reply{status: registry.StatusOf(err), body: []byte(err.Error())}
}
func badRequest(msg string) reply { return reply{status: http.StatusBadRequest, body: []byte(msg)} }

func marshal(v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return errReply(err)
	}
	return okJSON(b)
}

type handlerFunc func(r *http.Request, p *params) reply

// gated answers 503 while the node is not ready (see Config.Ready).
func (a *API) gated(h handlerFunc) handlerFunc {
	h = a.linearizable(h)
	if a.cfg.Ready == nil {
		return h
	}
	return func(r *http.Request, p *params) reply {
		if ok, why := a.cfg.Ready(); !ok {
			return reply{status: http.StatusServiceUnavailable, body: []byte("server is starting and has not loaded its data yet (" + why + "); try another server")}
		}
		return h(r, p)
	}
}

// linearizable serves a read with linearizable=true after a read barrier.
func (a *API) linearizable(h handlerFunc) handlerFunc {
	return func(r *http.Request, p *params) reply {
		if a.cfg.Sync != nil && model.ParseBool(p.Get("linearizable"), false) {
			if err := a.cfg.Sync(r.Context()); err != nil {
				return reply{status: http.StatusServiceUnavailable, body: []byte("linearizable read failed: " + err.Error())}
			}
		}
		return h(r, p)
	}
}

// read wraps a handler with parameter parsing and error rendering.
func (a *API) read(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// With auth on, the middleware parsed the parameters already (with
		// ReadParams) and left them in r.Form.
		var p *params
		var err error
		if r.Form != nil {
			p = paramsOf(r.Form)
		} else {
			p, err = readParams(r, a.cfg.Limits.MaxBodyBytes)
		}
		if err != nil {
			if errors.Is(err, errTooLarge) {
				a.send(w, reply{status: http.StatusRequestEntityTooLarge,
					body: []byte(fmt.Sprintf("request body exceeds %d bytes", a.cfg.Limits.MaxBodyBytes))})
				return
			}
			a.send(w, badRequest("cannot read request: "+err.Error()))
			return
		}
		rep := h(r, p)
		p.release()
		a.send(w, rep)
	}
}

// write wraps an op builder: parse, build, apply, answer "ok".
func (a *API) write(build func(r *http.Request, p *params) (*registry.Op, error)) http.HandlerFunc {
	return a.read(func(r *http.Request, p *params) reply {
		op, err := build(r, p)
		if op != nil {
			defer releaseOp(op)
		}
		if err != nil {
			return errReply(err)
		}
		if _, err := a.cfg.Writer.Apply(r.Context(), op); err != nil {
			return errReply(err)
		}
		return okText()
	})
}

// opPool recycles write operations: a Writer does not keep an Op once
// Apply returned (registry.Writer), and an Op is 400 bytes per write.
var opPool = sync.Pool{New: func() any { return new(registry.Op) }}

func newOp(kind registry.OpKind, key model.ServiceKey) *registry.Op {
	op := opPool.Get().(*registry.Op)
	op.Kind, op.Key = kind, key
	return op
}

func releaseOp(op *registry.Op) {
	*op = registry.Op{}
	opPool.Put(op)
}

// Header values shared by every response (net/http only reads them).
var (
	ctJSON = []string{"application/json;charset=UTF-8"}
	ctText = []string{"text/plain;charset=UTF-8"}
	clOK   = []string{"2"}
)

func (a *API) send(w http.ResponseWriter, rep reply) {
	h := w.Header()
	// Canonical keys set directly: Header.Set would canonicalise them again.
	if rep.json {
		h["Content-Type"] = ctJSON
	} else {
		h["Content-Type"] = ctText
	}
	if len(rep.body) == 2 {
		h["Content-Length"] = clOK
	} else {
		h["Content-Length"] = []string{strconv.Itoa(len(rep.body))}
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// serviceKey reads namespaceId, groupName and serviceName.
func (a *API) serviceKey(p *params) (model.ServiceKey, error) {
	return ParamServiceKey(a.cfg.Limits, p)
}

// Getter is what parameter readers need of a request's parameters: url.Values
// (the auth middleware's) and the API's own parameter lists both have it.
type Getter interface{ Get(name string) string }

// ParamServiceKey reads the service key of a request's parameters exactly
// as the handlers do (the auth middleware authorizes the same key).
func ParamServiceKey(l model.Limits, p Getter) (model.ServiceKey, error) {
	return l.ParseServiceKey(first(p, "namespaceId", "tenant"), p.Get("groupName"), p.Get("serviceName"))
}

// ParamNamespaceGroup reads the namespace and group of a listing (the
// defaults when absent), as serviceList does.
func ParamNamespaceGroup(p Getter) (namespace, group string) {
	namespace, group = first(p, "namespaceId", "tenant"), first(p, "groupName")
	if namespace == "" {
		namespace = model.DefaultNamespace
	}
	if group == "" {
		group = model.DefaultGroup
	}
	return namespace, group
}

// instanceIdentity reads ip, port and the cluster (clusterName, then cluster).
func (a *API) instanceIdentity(p *params, in *model.Instance) error {
	ip, err := model.ValidateIP(p.Get("ip"))
	if err != nil {
		return err
	}
	port, err := model.ParsePort(p.Get("port"))
	if err != nil {
		return err
	}
	c, err := a.cfg.Limits.ValidateCluster(first(p, "clusterName", "cluster"))
	if err != nil {
		return err
	}
	in.IP, in.Port, in.Cluster = ip, port, c
	return nil
}

func (a *API) registerOp(_ *http.Request, p *params) (*registry.Op, error) {
	key, err := a.serviceKey(p)
	if err != nil {
		return nil, err
	}
	op := newOp(registry.OpRegister, key)
	in := &op.Instance
	if err := a.instanceIdentity(p, in); err != nil {
		return nil, err
	}
	if in.Weight, err = model.ParseWeight(p.Get("weight"), 1); err != nil {
		return nil, err
	}
	in.Healthy = model.ParseBool(p.Get("healthy"), true)
	in.Enabled = model.ParseBool(first(p, "enabled", "enable"), true)
	in.Ephemeral = model.ParseBool(p.Get("ephemeral"), true)
	if in.Metadata, err = a.cfg.Limits.ParseMetadata(p.Get("metadata")); err != nil {
		return nil, err
	}
	in.InstanceID = strings.TrimSpace(p.Get("instanceId"))
	return op, a.cfg.Limits.ValidateInstance(in)
}

func (a *API) deregisterOp(_ *http.Request, p *params) (*registry.Op, error) {
	key, err := a.serviceKey(p)
	if err != nil {
		return nil, err
	}
	op := newOp(registry.OpDeregister, key)
	op.Instance.Ephemeral = model.ParseBool(p.Get("ephemeral"), true)
	return op, a.instanceIdentity(p, &op.Instance)
}

func (a *API) updateOp(kind registry.OpKind) func(*http.Request, *params) (*registry.Op, error) {
	return func(_ *http.Request, p *params) (*registry.Op, error) {
		key, err := a.serviceKey(p)
		if err != nil {
			return nil, err
		}
		op := &registry.Op{Kind: kind, Key: key}
		in := &op.Instance
		if err := a.instanceIdentity(p, in); err != nil {
			return nil, err
		}
		// Routing: ephemeral=false goes to the CP side; without it the
		// identity decides (internal/consistency).
		in.Ephemeral = model.ParseBool(p.Get("ephemeral"), true)
		if s := p.Get("weight"); s != "" {
			if in.Weight, err = model.ParseWeight(s, 1); err != nil {
				return nil, err
			}
			op.Fields = append(op.Fields, registry.FieldWeight)
		}
		if s := first(p, "enabled", "enable"); s != "" {
			in.Enabled = model.ParseBool(s, true)
			op.Fields = append(op.Fields, registry.FieldEnabled)
		}
		if s := p.Get("healthy"); s != "" && kind == registry.OpPatch {
			in.Healthy = model.ParseBool(s, true)
			op.Fields = append(op.Fields, registry.FieldHealthy)
		}
		if s := p.Get("metadata"); s != "" {
			if in.Metadata, err = a.cfg.Limits.ParseMetadata(s); err != nil {
				return nil, err
			}
			op.Fields = append(op.Fields, registry.FieldMetadata)
		}
		return op, nil
	}
}

func (a *API) serviceOp(kind registry.OpKind) func(*http.Request, *params) (*registry.Op, error) {
	return func(_ *http.Request, p *params) (*registry.Op, error) {
		key, err := a.serviceKey(p)
		if err != nil {
			return nil, err
		}
		op := &registry.Op{Kind: kind, Key: key}
		if kind == registry.OpDeleteService {
			return op, nil
		}
		if kind == registry.OpUpdateService && strings.TrimSpace(p.Get("protectThreshold")) == "" {
			return nil, registry.Errorf(http.StatusBadRequest, "Param 'protectThreshold' is required.")
		}
		if op.Service.ProtectThreshold, err = model.ParseProtectThreshold(p.Get("protectThreshold")); err != nil {
			return nil, err
		}
		if op.Service.Metadata, err = a.cfg.Limits.ParseMetadata(p.Get("metadata")); err != nil {
			return nil, err
		}
		if op.Service.Selector, err = model.ParseSelector(p.Get("selector")); err != nil {
			return nil, err
		}
		return op, nil
	}
}

func (a *API) instanceDetail(_ *http.Request, p *params) reply {
	key, err := a.serviceKey(p)
	if err != nil {
		return errReply(err)
	}
	var want model.Instance
	if err := a.instanceIdentity(p, &want); err != nil {
		return errReply(err)
	}
	v := a.cfg.Store.View(key)
	if v == nil {
		return reply{status: http.StatusNotFound, body: []byte("no ips found for cluster " + want.Cluster + " in service " + key.Grouped())}
	}
	for _, in := range v.Instances {
		if in.Key() == want.Key() {
			id := in.InstanceID
			if id == "" {
				id = model.DefaultInstanceID(in, key)
			}
			md := in.Metadata
			if md == nil {
				md = map[string]string{}
			}
			return marshal(map[string]any{
				"service": key.Grouped(), "ip": in.IP, "port": in.Port, "clusterName": in.Cluster,
				"weight": in.Weight, "healthy": in.Healthy, "instanceId": id, "metadata": md,
			})
		}
	}
	return reply{status: http.StatusNotFound, body: []byte("no matched ip found!")}
}

func (a *API) instanceList(r *http.Request, p *params) reply {
	key, err := a.serviceKey(p)
	if err != nil {
		return errReply(err)
	}
	clusters := p.Get("clusters")
	if len(clusters) > 4*a.cfg.Limits.MaxNameLen {
		return badRequest("clusters is too long")
	}
	q := render.Query{Clusters: clusters, HealthyOnly: model.ParseBool(p.Get("healthyOnly"), false),
		Style: render.V1, CacheMillis: a.cfg.CacheMillis}
	if a.cfg.Push != nil {
		a.subscribe(r, p, key, clusters)
	}
	v := a.cfg.Store.ListView(key)
	if v == nil {
		// lastRefTime 0: below every real revision, so the client takes
		// the first list of the service when it appears.
		return okJSON(render.ServiceInfo(nil, key, nil, q, 0))
	}
	return okJSON(v.Rendered(q.CacheKey(), func() []byte {
		return render.ServiceInfo(make([]byte, 0, 256+200*len(v.Instances)), key, v, q, 0)
	}))
}

// subscribe registers a UDP push subscriber for push-capable clients. The
// address is clientIP:udpPort, except that a request arriving over loopback
// is answered over loopback (the client reports its interface address).
func (a *API) subscribe(r *http.Request, p *params, key model.ServiceKey, clusters string) {
	port, err := strconv.Atoi(strings.TrimSpace(p.Get("udpPort")))
	if err != nil || port <= 0 || port > 65535 {
		return
	}
	ua := r.Header.Get("User-Agent")
	if ua == "" {
		ua = r.Header.Get("Client-Version")
	}
	var remote netip.Addr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		remote, _ = netip.ParseAddr(host)
	}
	addr := remote
	if c, err := netip.ParseAddr(strings.TrimSpace(p.Get("clientIP"))); err == nil && !remote.IsLoopback() {
		addr = c
	}
	if !addr.IsValid() {
		return
	}
	who := ""
	if a.cfg.Identity != nil {
		who = a.cfg.Identity(r)
	}
	// The subscriber is kept: its strings must not share the request's memory.
	if err := a.cfg.Push.Subscribe(key.Interned(), model.Intern(clusters), netip.AddrPortFrom(addr.Unmap(), uint16(port)), ua, who); err != nil {
		a.cfg.Logger.Debug("push subscribe refused", "service", key.String(), "error", err)
	}
}

func (a *API) beat(r *http.Request, p *params) reply {
	op, err := a.beatOp(p)
	if op != nil {
		defer releaseOp(op)
	}
	if err != nil {
		return errReply(err)
	}
	res, err := a.cfg.Writer.Apply(r.Context(), op)
	if err != nil {
		return errReply(err)
	}
	interval := res.ClientBeatInterval
	if interval <= 0 {
		interval = a.cfg.ClientBeatInterval
	}
	return okJSON(beatBody(interval, res.BeatCode))
}

// beatReplies are the answers to beats with the default interval.
var beatReplies = [2][]byte{appendBeatBody(nil, model.DefaultHeartBeatIntervalMs, registry.BeatOK),
	appendBeatBody(nil, model.DefaultHeartBeatIntervalMs, registry.BeatNotFound)}

// beatBody is the answer to a beat.
func beatBody(interval int64, code int) []byte {
	if interval == model.DefaultHeartBeatIntervalMs {
		switch code {
		case registry.BeatOK:
			return beatReplies[0]
		case registry.BeatNotFound:
			return beatReplies[1]
		}
	}
	return appendBeatBody(make([]byte, 0, 96), interval, code)
}

func appendBeatBody(b []byte, interval int64, code int) []byte {
	b = append(b, `{"clientBeatInterval":`...)
	b = strconv.AppendInt(b, interval, 10)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, `,"lightBeatEnabled":true}`...)
}

// beatOp builds a beat from the parameters and the optional beat JSON.
func (a *API) beatOp(p *params) (*registry.Op, error) {
	key, err := a.serviceKey(p)
	if err != nil {
		return nil, err
	}
	op := newOp(registry.OpBeat, key)
	in := &op.Instance
	in.Healthy, in.Enabled, in.Weight = true, true, 1
	in.Ephemeral = model.ParseBool(p.Get("ephemeral"), true)
	raw := strings.TrimSpace(p.Get("beat"))
	if raw == "" {
		op.LightBeat = true
		return op, a.instanceIdentity(p, in)
	}
	b, err := DecodeBeat(raw, a.cfg.Limits)
	if err != nil {
		return nil, err
	}
	ipS, portS := b.IP, ""
	if b.Port != 0 {
		portS = strconv.Itoa(b.Port)
	}
	if ipS == "" {
		ipS = p.Get("ip")
	}
	if portS == "" {
		portS = p.Get("port")
	}
	if in.IP, err = model.ValidateIP(ipS); err != nil {
		return nil, err
	}
	if in.Port, err = model.ParsePort(portS); err != nil {
		return nil, err
	}
	cluster := b.Cluster
	if cluster == "" {
		cluster = first(p, "clusterName", "cluster")
	}
	if in.Cluster, err = a.cfg.Limits.ValidateCluster(cluster); err != nil {
		return nil, err
	}
	if b.Weight != nil {
		in.Weight = *b.Weight
	}
	if b.Ephemeral != nil {
		in.Ephemeral = *b.Ephemeral
	}
	in.Metadata = b.Metadata
	return op, a.cfg.Limits.ValidateInstance(in)
}

func (a *API) serviceDetail(_ *http.Request, p *params) reply {
	key, err := a.serviceKey(p)
	if err != nil {
		return errReply(err)
	}
	v := a.cfg.Store.View(key)
	if v == nil {
		return badRequest("service " + key.Grouped() + " is not found!")
	}
	meta := model.ServiceMeta{Selector: model.Selector{Type: "none"}}
	if v.Meta != nil {
		meta = *v.Meta
	}
	md := meta.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return marshal(map[string]any{
		"namespaceId": key.Namespace, "groupName": key.Group, "name": key.Name,
		"protectThreshold": meta.ProtectThreshold, "metadata": md, "selector": meta.Selector, "clusters": a.clusters(v),
	})
}

// page parses 1-based pageNo/pageSize; required reports a missing one as 400.
func page(p *params, required bool) (no, size int, err error) {
	no, size = 1, 100
	for _, f := range []struct {
		name string
		dst  *int
	}{{"pageNo", &no}, {"pageSize", &size}} {
		s := strings.TrimSpace(p.Get(f.name))
		if s == "" {
			if required {
				return 0, 0, registry.Errorf(http.StatusBadRequest, "Param '%s' is required.", f.name)
			}
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, registry.Errorf(http.StatusBadRequest, "Param '%s' must be a non-negative integer", f.name)
		}
		*f.dst = n
	}
	if no < 1 {
		no = 1
	}
	if size > 10000 {
		size = 10000
	}
	return no, size, nil
}

func slice[T any](all []T, no, size int) []T {
	// Compare before multiplying: (no-1)*size overflows for a huge pageNo.
	if size <= 0 || no-1 >= (len(all)+size-1)/size {
		return []T{}
	}
	start := (no - 1) * size
	return all[start:min(start+size, len(all))]
}

func (a *API) namespace(p *params) (string, error) {
	ns := first(p, "namespaceId", "tenant")
	if ns == "" {
		return model.DefaultNamespace, nil
	}
	return ns, a.cfg.Limits.ValidateName("namespaceId", ns)
}

func (a *API) serviceList(_ *http.Request, p *params) reply {
	no, size, err := page(p, true)
	if err != nil {
		return errReply(err)
	}
	ns, err := a.namespace(p)
	if err != nil {
		return errReply(err)
	}
	group := first(p, "groupName")
	if group == "" {
		group = model.DefaultGroup
	}
	var names []string
	for _, k := range a.cfg.Store.ServiceKeys(ns) {
		if k.Group == group {
			names = append(names, k.Name)
		}
	}
	return marshal(map[string]any{"count": len(names), "doms": slice(names, no, size)})
}

func (a *API) catalogServices(_ *http.Request, p *params) reply {
	no, size, err := page(p, false)
	if err != nil {
		return errReply(err)
	}
	ns, err := a.namespace(p)
	if err != nil {
		return errReply(err)
	}
	nameQ, groupQ := p.Get("serviceNameParam"), p.Get("groupNameParam")
	var keys []model.ServiceKey
	for _, k := range a.cfg.Store.ServiceKeys(ns) {
		if strings.Contains(k.Name, nameQ) && strings.Contains(k.Group, groupQ) {
			keys = append(keys, k)
		}
	}
	count := len(keys)
	keys = slice(keys, no, size)
	if model.ParseBool(p.Get("withInstances"), false) {
		out := make([]map[string]any, 0, len(keys))
		for _, k := range keys {
			v := a.cfg.Store.View(k)
			clusterMap := map[string]any{}
			if v != nil {
				byCluster := map[string][]json.RawMessage{}
				for _, in := range v.Instances {
					byCluster[in.Cluster] = append(byCluster[in.Cluster], render.AppendInstance(nil, in, k, in.Healthy))
				}
				for c, hosts := range byCluster {
					clusterMap[c] = map[string]any{"hosts": hosts}
				}
			}
			out = append(out, map[string]any{"serviceName": k.Name, "groupName": k.Group, "clusterMap": clusterMap})
		}
		return marshal(out)
	}
	list := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		v := a.cfg.Store.View(k)
		ips, healthy, clusters := 0, 0, map[string]bool{}
		if v != nil {
			for _, in := range v.Instances {
				ips++
				if in.Healthy {
					healthy++
				}
				clusters[in.Cluster] = true
			}
		}
		list = append(list, map[string]any{"name": k.Name, "groupName": k.Group, "clusterCount": len(clusters),
			"ipCount": ips, "healthyInstanceCount": healthy, "triggerFlag": "false"})
	}
	return marshal(map[string]any{"count": count, "serviceList": list})
}

func (a *API) catalogInstances(_ *http.Request, p *params) reply {
	key, err := a.serviceKey(p)
	if err != nil {
		return errReply(err)
	}
	no, size, err := page(p, false)
	if err != nil {
		return errReply(err)
	}
	cluster := p.Get("clusterName")
	var list []json.RawMessage
	if v := a.cfg.Store.View(key); v != nil {
		for _, in := range v.Instances {
			if cluster == "" || in.Cluster == cluster {
				list = append(list, render.AppendInstance(nil, in, key, in.Healthy))
			}
		}
	}
	return marshal(map[string]any{"count": len(list), "list": slice(list, no, size)})
}

func (a *API) metrics(_ *http.Request, p *params) reply {
	if model.ParseBool(p.Get("onlyStatus"), true) {
		return okJSON([]byte(`{"status":"UP"}`))
	}
	services, instances := a.cfg.Store.Counts()
	subs := 0
	if a.cfg.Push != nil {
		subs = a.cfg.Push.SubscriberCount()
	}
	out := map[string]any{"status": "UP", "serviceCount": services, "instanceCount": instances,
		"subscribeCount": subs, "clientCount": instances}
	if a.cfg.Extra != nil {
		for k, v := range a.cfg.Extra() {
			out[k] = v
		}
	}
	return marshal(out)
}

func (a *API) switches(_ *http.Request, _ *params) reply {
	return marshal(map[string]any{
		"name": "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00", "masters": nil, "adWeightMap": map[string]any{},
		"defaultPushCacheMillis": a.cfg.CacheMillis, "clientBeatInterval": a.cfg.ClientBeatInterval,
		"defaultCacheMillis": 3000, "distroThreshold": 0.7, "healthCheckEnabled": !a.cfg.HealthChecks.Disabled, "autoChangeHealthCheckEnabled": true,
		"distroEnabled": true, "enableStandalone": true, "pushEnabled": a.cfg.Push != nil, "checkTimes": a.cfg.HealthChecks.CheckTimes,
		"httpHealthParams":  map[string]any{"max": 5000, "min": 500, "factor": 0.85},
		"tcpHealthParams":   map[string]any{"max": 5000, "min": 1000, "factor": 0.75},
		"mysqlHealthParams": map[string]any{"max": 3000, "min": 2000, "factor": 0.65},
		"incrementalList":   []string{}, "serverStatusSynchronizationPeriodMillis": 2000,
		"serviceStatusSynchronizationPeriodMillis": 5000, "disableAddIP": false, "sendBeatOnly": false,
		"lightBeatEnabled": true, "limitedUrlMap": map[string]any{}, "distroServerExpiredMillis": 10000,
		"pushGoVersion": "0.1.0", "pushJavaVersion": "0.1.0", "pushPythonVersion": "0.4.3", "pushCVersion": "1.0.12",
		"pushCSharpVersion": "0.9.0", "enableAuthentication": false, "overriddenServerStatus": nil,
		"defaultInstanceEphemeral": true, "healthCheckWhiteList": []string{}, "checksum": nil,
	})
}

func (a *API) putSwitch(_ *http.Request, p *params) reply {
	return badRequest("switch " + strconv.Quote(p.Get("entry")) + " cannot be changed at runtime; set it in the distrod configuration")
}

func (a *API) login(_ *http.Request, p *params) reply {
	// Authentication is not enabled: answer like a Nacos server with auth
	// off, so clients configured with credentials still start.
	return marshal(map[string]any{"accessToken": "", "tokenTtl": 18000, "globalAdmin": false, "username": p.Get("username")})
}
