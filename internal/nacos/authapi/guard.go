package authapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/grpcapi"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
)

// ruleKind is what a route needs.
type ruleKind uint8

const (
	open ruleKind = iota + 1
	authenticated
	admin
	// selfOrAdmin: the user named by the username parameter, or an admin.
	selfOrAdmin
	naming
	// metrics: open for onlyStatus (the default), authenticated for the
	// counters.
	metrics
)

// scope is which resource a naming rule checks.
type scope uint8

const (
	service   scope = iota + 1 // namespace:group:naming/service
	group                      // namespace:group:naming/*
	namespace                  // namespace:*:naming/*
)

type rule struct {
	kind  ruleKind
	act   auth.Action
	scope scope
}

// rules maps every route pattern of distrod's HTTP server to what it
// needs. Patterns are those of the server's mux and of the Nacos API's mux
// (the server resolves "/nacos/" to the API's own pattern).
var rules = map[string]rule{
	"GET /healthz": {kind: open},
	"GET /readyz":  {kind: open},

	"POST /nacos/v1/auth/users/login":   {kind: open},
	"POST /nacos/v1/auth/login":         {kind: open},
	"GET /nacos/v1/auth/users":          {kind: admin},
	"GET /nacos/v1/auth/users/search":   {kind: admin},
	"POST /nacos/v1/auth/users":         {kind: admin},
	"DELETE /nacos/v1/auth/users":       {kind: admin},
	"PUT /nacos/v1/auth/users":          {kind: selfOrAdmin},
	"GET /nacos/v1/auth/roles":          {kind: admin},
	"GET /nacos/v1/auth/roles/search":   {kind: admin},
	"POST /nacos/v1/auth/roles":         {kind: admin},
	"DELETE /nacos/v1/auth/roles":       {kind: admin},
	"GET /nacos/v1/auth/permissions":    {kind: admin},
	"POST /nacos/v1/auth/permissions":   {kind: admin},
	"DELETE /nacos/v1/auth/permissions": {kind: admin},

	"POST /nacos/v1/ns/instance":         {kind: naming, act: auth.Write, scope: service},
	"DELETE /nacos/v1/ns/instance":       {kind: naming, act: auth.Write, scope: service},
	"PUT /nacos/v1/ns/instance":          {kind: naming, act: auth.Write, scope: service},
	"PATCH /nacos/v1/ns/instance":        {kind: naming, act: auth.Write, scope: service},
	"GET /nacos/v1/ns/instance":          {kind: naming, act: auth.Read, scope: service},
	"GET /nacos/v1/ns/instance/list":     {kind: naming, act: auth.Read, scope: service},
	"PUT /nacos/v1/ns/instance/beat":     {kind: naming, act: auth.Write, scope: service},
	"POST /nacos/v1/ns/service":          {kind: naming, act: auth.Write, scope: service},
	"PUT /nacos/v1/ns/service":           {kind: naming, act: auth.Write, scope: service},
	"DELETE /nacos/v1/ns/service":        {kind: naming, act: auth.Write, scope: service},
	"GET /nacos/v1/ns/service":           {kind: naming, act: auth.Read, scope: service},
	"GET /nacos/v1/ns/service/list":      {kind: naming, act: auth.Read, scope: group},
	"GET /nacos/v1/ns/catalog/services":  {kind: naming, act: auth.Read, scope: namespace},
	"GET /nacos/v1/ns/catalog/instances": {kind: naming, act: auth.Read, scope: service},
	"GET /nacos/v1/ns/catalog/service":   {kind: naming, act: auth.Read, scope: service},
	"PUT /nacos/v1/ns/cluster":           {kind: naming, act: auth.Write, scope: service},
	"GET /nacos/v1/ns/operator/metrics":  {kind: metrics},
	"GET /nacos/v1/ns/ops/metrics":       {kind: metrics},
	"GET /nacos/v1/ns/operator/switches": {kind: authenticated},
	"GET /nacos/v1/ns/ops/switches":      {kind: authenticated},
	"PUT /nacos/v1/ns/operator/switches": {kind: admin},
	"PUT /nacos/v1/ns/ops/switches":      {kind: admin},
	"GET /nacos/v1/core/cluster/nodes":   {kind: admin},

	// Nacos's NamespaceController: the listing and lookups are for any
	// signed-in user (Nacos 3 tags them ONLY_IDENTITY; Nacos 1/2 left them
	// open), changes need the console resource "console/namespaces" with
	// action w, which only global admins hold.
	"GET /nacos/v1/console/namespaces":    {kind: authenticated},
	"POST /nacos/v1/console/namespaces":   {kind: admin},
	"PUT /nacos/v1/console/namespaces":    {kind: admin},
	"DELETE /nacos/v1/console/namespaces": {kind: admin},

	"GET /distro/admin/connections":        {kind: admin},
	"POST /distro/admin/connections/reset": {kind: admin},
	"GET /distro/admin/auth":               {kind: admin},
}

// Unruled returns the patterns among patterns that have no rule (the
// middleware refuses requests to them). The server checks every route it
// registered with it at start, so a new route without a rule fails every
// test that starts a node with auth on, not a user's request.
func Unruled(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		if _, ok := rules[p]; !ok && p != "GET /metrics" {
			out = append(out, p)
		}
	}
	return out
}

// MiddlewareConfig configures the HTTP middleware.
type MiddlewareConfig struct {
	Auth   *auth.Authority
	Limits model.Limits
	// Resolve returns the pattern of the route that will serve r ("" when
	// none will: the mux answers 404 or 405).
	Resolve func(r *http.Request) string
	// ProtectMetrics makes GET /metrics need a global admin (else it is
	// open, for scrapers).
	ProtectMetrics bool
	// SelfAuthenticated reports routes whose handlers authenticate and
	// authorize requests themselves (the web console: login page, session
	// cookie, per-service checks); the middleware passes them through.
	SelfAuthenticated func(pattern string) bool
	Logger            *slog.Logger
}

// Middleware authenticates and authorizes requests before next serves them.
func Middleware(cfg MiddlewareConfig, next http.Handler) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &middleware{cfg: cfg, next: next}
}

type middleware struct {
	cfg  MiddlewareConfig
	next http.Handler
}

type identityKey struct{}

// IdentityOf returns the user the middleware identified for r ("" if none).
func IdentityOf(r *http.Request) string {
	who, _ := r.Context().Value(identityKey{}).(string)
	return who
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pattern := m.cfg.Resolve(r)
	if pattern == "" {
		m.next.ServeHTTP(w, r) // 404 or 405: nothing to protect
		return
	}
	if m.cfg.SelfAuthenticated != nil && m.cfg.SelfAuthenticated(pattern) {
		m.next.ServeHTTP(w, r)
		return
	}
	ru, ok := rules[pattern]
	if pattern == "GET /metrics" {
		ru, ok = rule{kind: open}, true
		if m.cfg.ProtectMetrics {
			ru.kind = admin
		}
	}
	if !ok {
		m.cfg.Logger.Error("route without an authorization rule refused", "pattern", pattern)
		deny(w, r, &auth.Error{Status: http.StatusForbidden, Msg: "no authorization rule for " + pattern})
		return
	}
	if ru.kind == open {
		m.next.ServeHTTP(w, r)
		return
	}
	p, err := httpapi.ReadParams(r, m.cfg.Limits.MaxBodyBytes)
	if err != nil {
		if errors.Is(err, httpapi.ErrTooLarge) {
			http.Error(w, "request body exceeds "+strconv.FormatInt(m.cfg.Limits.MaxBodyBytes, 10)+" bytes", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Form = p
	if ru.kind == metrics {
		if model.ParseBool(p.Get("onlyStatus"), true) {
			m.next.ServeHTTP(w, r)
			return
		}
		ru.kind = authenticated
	}
	who, err := m.cfg.Auth.Authenticate(httpCredentials(r, p), remoteIP(r.RemoteAddr))
	if err != nil {
		deny(w, r, err)
		return
	}
	if err := m.authorize(ru, who, p); err != nil {
		if errors.Is(err, model.ErrInvalid) {
			// No resource to decide on: answered here, as the handler
			// would, so that no request the guard did not decide on
			// reaches a handler.
			w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(err.Error()))
			return
		}
		deny(w, r, err)
		return
	}
	m.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, who)))
}

func (m *middleware) authorize(ru rule, who string, p url.Values) error {
	a := m.cfg.Auth
	switch ru.kind {
	case authenticated:
		return nil
	case admin:
		if a.IsAdmin(who) {
			return nil
		}
		return auth.ErrForbidden
	case selfOrAdmin:
		if strings.TrimSpace(p.Get("username")) == who || a.IsAdmin(who) {
			return nil
		}
		return auth.ErrForbidden
	case naming:
		var res auth.Resource
		switch ru.scope {
		case service:
			key, err := httpapi.ParamServiceKey(m.cfg.Limits, p)
			if err != nil {
				return err // model.ErrInvalid: 400
			}
			res = auth.NamingResource(key)
		case group:
			res = auth.GroupResource(httpapi.ParamNamespaceGroup(p))
		case namespace:
			ns, _ := httpapi.ParamNamespaceGroup(p)
			res = auth.NamespaceResource(ns)
		}
		return a.Authorize(who, res, ru.act)
	}
	return auth.ErrForbidden
}

// httpCredentials reads what a request presents, in Nacos's order.
func httpCredentials(r *http.Request, p url.Values) auth.Credentials {
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok && tok != "" {
			return auth.Credentials{Token: strings.TrimSpace(tok)}
		}
		if u, pw, ok := r.BasicAuth(); ok {
			return auth.Credentials{Username: u, Password: pw}
		}
	}
	if tok := strings.TrimSpace(p.Get("accessToken")); tok != "" {
		return auth.Credentials{Token: tok}
	}
	return auth.Credentials{Username: strings.TrimSpace(p.Get("username")), Password: p.Get("password")}
}

// remoteIP is the transport peer's address (not a client-supplied header:
// those can be forged).
func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// deny answers a refusal: Spring's error JSON with Nacos's message, as a
// Nacos server's auth filter does (sendError).
func deny(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusForbidden, err.Error()
	var ae *auth.Error
	if errors.As(err, &ae) {
		status = ae.Status
	}
	body, _ := json.Marshal(map[string]any{
		"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000+00:00"),
		"status":    status, "error": http.StatusText(status), "message": msg, "path": r.URL.Path,
	})
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int(auth.DefaultUserRefill/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// GRPC authorizes Nacos 2 requests; it implements grpcapi.Guard.
type GRPC struct {
	Auth   *auth.Authority
	Limits model.Limits
}

// grpcNaming is the part of a naming request the decision needs; the
// handlers decode the same fields with the same rules (encoding/json).
type grpcNaming struct {
	Namespace   string `json:"namespace"`
	ServiceName string `json:"serviceName"`
	GroupName   string `json:"groupName"`
}

// Authorize implements grpcapi.Guard.
func (g *GRPC) Authorize(typ string, body []byte, headers map[string]string, remote string) (string, int, string) {
	var act auth.Action
	list := false
	switch typ {
	case grpcapi.TypeInstanceRequest, grpcapi.TypePersistentInstanceRequest, grpcapi.TypeBatchInstanceRequest:
		act = auth.Write
	case grpcapi.TypeServiceQueryRequest, grpcapi.TypeSubscribeServiceRequest:
		act = auth.Read
	case grpcapi.TypeServiceListRequest:
		act, list = auth.Read, true
	default:
		return "", 0, "" // not a naming request (health checks, or answered 302)
	}
	who, err := g.Auth.Authenticate(grpcCredentials(headers), remote)
	if err != nil {
		return "", grpcapi.CodeNoRight, err.Error()
	}
	var n grpcNaming
	if err := json.Unmarshal(body, &n); err != nil {
		return "", grpcapi.CodeInvalidParam, "cannot decode " + typ + ": " + err.Error()
	}
	var res auth.Resource
	if list {
		ns, grp := strings.TrimSpace(n.Namespace), strings.TrimSpace(n.GroupName)
		if ns == "" {
			ns = model.DefaultNamespace
		}
		if grp == "" {
			grp = model.DefaultGroup
		}
		res = auth.GroupResource(ns, grp)
	} else {
		key, err := g.Limits.ParseServiceKey(n.Namespace, n.GroupName, n.ServiceName)
		if err != nil {
			return "", grpcapi.CodeInvalidParam, err.Error()
		}
		res = auth.NamingResource(key)
	}
	if err := g.Auth.Authorize(who, res, act); err != nil {
		return "", grpcapi.CodeNoRight, err.Error()
	}
	return who, 0, ""
}

// Epoch implements grpcapi.Guard.
func (g *GRPC) Epoch() uint64 { return g.Auth.Epoch() }

// MayRead implements grpcapi.Guard.
func (g *GRPC) MayRead(who string, key model.ServiceKey) bool { return g.Auth.MayRead(who, key) }

// grpcCredentials reads the identity headers Nacos clients send.
func grpcCredentials(h map[string]string) auth.Credentials {
	if v, ok := strings.CutPrefix(h["Authorization"], "Bearer "); ok && v != "" {
		return auth.Credentials{Token: strings.TrimSpace(v)}
	}
	if tok := strings.TrimSpace(h["accessToken"]); tok != "" {
		return auth.Credentials{Token: tok}
	}
	return auth.Credentials{Username: strings.TrimSpace(h["username"]), Password: h["password"]}
}
