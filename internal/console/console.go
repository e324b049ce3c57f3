package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/httproute"
	"github.com/distro-registry/distro/internal/member"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Bases are the paths the console is served under: its own, and the one a
// Nacos user opens (http://host:8848/nacos/).
var Bases = []string{"/ui/", "/nacos/"}

// TokenCookie holds the session token when authentication is on.
const TokenCookie = "distro_console_token"

// Cluster is the console's view of the Distro cluster.
type Cluster interface {
	// Members returns every configured member as this node's probes see it.
	Members() []member.MemberStatus
	// Peers returns the replication state towards every peer.
	Peers() []distro.PeerStatus
	// Owner returns the member responsible for k in this node's view.
	Owner(k model.ServiceKey) string
	// ViewID identifies the member list owners are computed over: while
	// it stays the same, so does every Owner answer.
	ViewID() string
}

// Subscriber is one client subscribed to a service on this node.
type Subscriber struct {
	// Protocol is "UDP push (v1)" or "gRPC (v2)".
	Protocol string
	// Client is the client's address (push address for UDP, remote address
	// of the connection for gRPC).
	Client   string
	Clusters string
	// Version is the client's SDK version, when it told one.
	Version string
	// Conn is the gRPC connection id.
	Conn string
	// LastSeen is the UDP subscriber's last list call.
	LastSeen time.Time
	// Pending reports a push awaiting the client's ack.
	Pending bool
}

// Counters are the node's cumulative write and expiry counts (the figures
// behind the client_writes_total and instances_* metrics).
type Counters struct {
	Registrations, Deregistrations, Beats uint64
	Expired, MarkedUnhealthy              uint64
}

// Config wires a Console to the node.
type Config struct {
	Store *store.Store
	// Writer is the write path every change goes through (the Distro
	// engine in a cluster, so changes go to the owner).
	Writer registry.Writer
	Limits model.Limits
	// Auth decides who may log in, see and change what; nil means Open{}
	// (read-only, no login).
	Auth Authenticator
	// Cluster is nil on a standalone node.
	Cluster Cluster
	// Ready reports whether the node finished loading, and why not.
	Ready func() (bool, string)
	// LastBeat returns an instance's last heartbeat on this node, and
	// whether this node tracks the instance (only the owner does).
	LastBeat func(model.ServiceKey, model.InstanceKey) (time.Time, bool)
	// Subscribers lists the clients subscribed to a service on this node.
	Subscribers func(model.ServiceKey) []Subscriber
	// DefaultCheck is the health checker of clusters without explicit
	// settings ("NONE" when server-side health checks are off).
	DefaultCheck string
	// Counters feeds the rate charts; nil leaves them empty.
	Counters func() Counters
	// CheckHost makes the console answer only requests whose Host is an IP
	// address, localhost or one of AllowedHosts. The server sets it while
	// anyone may change the registry from the console (auth off,
	// --console-edit): a DNS rebinding attack (a page of another site
	// whose name is re-pointed at this node) is same-origin with the
	// console and would pass the cross-origin check; its Host header
	// still names the other site.
	CheckHost    bool
	AllowedHosts []string
	// Version is shown in the footer.
	Version string
	Clock   clock.Clock
	Logger  *slog.Logger
}

// Console serves the web console. Create it with New, Mount it, and Run it
// for the charts.
type Console struct {
	cfg     Config
	auth    Authenticator
	pages   map[string]*template.Template
	static  http.Handler
	csrf    *http.CrossOriginProtection
	sampler *sampler
	self    string
	// assets versions the static URLs (a hash of their content), so that
	// browsers may cache them for a day and still see a new release.
	assets string

	// keys caches the sorted service keys per store revision: listing
	// pages poll every second, and sorting every key costs milliseconds
	// on a large registry.
	// patterns are the mux patterns Mount registered.
	patterns []string

	keysMu  sync.Mutex
	keysRev uint64
	keys    []model.ServiceKey

	// owned caches the cluster page's services per owner for one store
	// revision and view: computing it asks Owner of every key.
	ownedMu   sync.Mutex
	ownedRev  uint64
	ownedView string
	owned     map[string]int
}

// serviceKeys returns every service key, sorted; the slice is shared and
// must not be modified.
func (c *Console) serviceKeys() []model.ServiceKey {
	rev := c.cfg.Store.Revision() // read first: a change racing the listing makes the next call list again
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if c.keys == nil || c.keysRev != rev {
		c.keys, c.keysRev = c.cfg.Store.ServiceKeys(""), rev
	}
	return c.keys
}

// ownedCounts returns how many services each member owns (shared: do not
// modify), computed again only when the store revision or the view
// changed, so a cluster page polled every second by several tabs costs a
// map lookup, not an owner computation per key.
func (c *Console) ownedCounts() map[string]int {
	rev := c.cfg.Store.Revision() // first, as in serviceKeys
	view := ""
	if c.cfg.Cluster != nil {
		view = c.cfg.Cluster.ViewID()
	}
	c.ownedMu.Lock()
	defer c.ownedMu.Unlock()
	if c.owned != nil && c.ownedRev == rev && c.ownedView == view {
		return c.owned
	}
	owned := map[string]int{}
	for _, k := range c.serviceKeys() {
		owner := c.self
		if c.cfg.Cluster != nil {
			owner = c.cfg.Cluster.Owner(k)
		}
		owned[owner]++
	}
	c.owned, c.ownedRev, c.ownedView = owned, rev, view
	return owned
}

// New builds a console.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil || cfg.Writer == nil {
		return nil, errors.New("console: Store and Writer are required")
	}
	if cfg.Auth == nil {
		cfg.Auth = Open{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultCheck == "" {
		cfg.DefaultCheck = model.CheckNone
	}
	if cfg.Ready == nil {
		cfg.Ready = func() (bool, string) { return true, "standalone" }
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, auth: cfg.Auth, pages: pages, static: http.FileServerFS(sub),
		csrf: http.NewCrossOriginProtection(), sampler: newSampler(sampleWindow), self: cfg.Store.Self()}
	h := fnv.New64a()
	_ = fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(sub, path); err == nil {
				h.Write(b)
			}
		}
		return nil
	})
	c.assets = strconv.FormatUint(h.Sum64(), 36)
	c.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusForbidden, "Cross-origin request refused: changes must come from the console's own pages.")
	}))
	return c, nil
}

// Run samples the chart figures once a second until ctx ends.
func (c *Console) Run(ctx context.Context) {
	t := c.cfg.Clock.NewTicker(time.Second)
	defer t.Stop()
	c.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			c.sample()
		}
	}
}

func (c *Console) sample() {
	var cnt Counters
	if c.cfg.Counters != nil {
		cnt = c.cfg.Counters()
	}
	var peers []distro.PeerStatus
	if c.cfg.Cluster != nil {
		peers = c.cfg.Cluster.Peers()
	}
	c.sampler.add(c.cfg.Clock.Now(), cnt, peers)
}

// Mount registers the console's routes on mux under every base in Bases.
// The routes are exact paths, so the Nacos API under /nacos/v1/ stays
// with whatever handles /nacos/.
func (c *Console) Mount(mux httproute.Registrar) {
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		c.patterns = append(c.patterns, pattern)
	}
	for _, base := range Bases {
		trim := strings.TrimSuffix(base, "/")
		handle("GET "+trim, http.RedirectHandler(base, http.StatusMovedPermanently))
		route := func(pattern string, h func(http.ResponseWriter, *http.Request, *request)) {
			method, path, _ := strings.Cut(pattern, " ")
			handle(method+" "+base+path, c.handler(base, h))
		}
		route("GET {$}", c.home)
		route("GET index.html", func(w http.ResponseWriter, r *http.Request, _ *request) {
			http.Redirect(w, r, base, http.StatusFound)
		})
		route("GET services", c.services)
		route("GET service", c.service)
		route("GET service/edit", c.serviceEditForm)
		route("POST service/edit", c.serviceEdit)
		route("GET service/delete", c.serviceDeleteForm)
		route("POST service/delete", c.serviceDelete)
		route("GET instance", c.instanceForm)
		route("POST instance", c.instanceEdit)
		route("POST instance/enabled", c.instanceEnabled)
		route("GET instance/deregister", c.instanceDeregisterForm)
		route("POST instance/deregister", c.instanceDeregister)
		route("GET cluster", c.cluster)
		route("GET login", c.loginForm)
		route("POST login", c.login)
		route("POST logout", c.logout)
		handle("GET "+base+"static/", c.secure(http.StripPrefix(base+"static/", c.cacheStatic(c.static))))
	}
}

// Owns reports whether pattern is one of the console's routes. The console
// authenticates its own requests (login page, session cookie), so a
// server-wide guard lets these through to it.
func (c *Console) Owns(pattern string) bool { return slices.Contains(c.patterns, pattern) }

// request is what every page handler gets besides the HTTP request.
type request struct {
	base string
	user Principal
	// live is set for a poll of a page's live fragment.
	live bool
}

// csp forbids inline script and style, so that even a value that escaped
// escaping could not run.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.ServeHTTP(w, r)
	})
}

// handler wraps a page: security headers, the same-origin check on unsafe
// methods, and the login check.
func (c *Console) handler(base string, h func(http.ResponseWriter, *http.Request, *request)) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.cfg.CheckHost && !c.hostAllowed(r.Host) {
			c.fail(w, r, http.StatusForbidden, "This console answers only requests addressed to an IP address, localhost or a "+
				"name given with --console-allowed-hosts (it may change the registry without a login, and a foreign "+
				"host name can be a DNS rebinding attack).")
			return
		}
		req := &request{base: base, live: r.Header.Get("HX-Request") == "true" && r.URL.Query().Has("h")}
		if c.auth.Enabled() && !strings.HasSuffix(r.URL.Path, "/login") {
			user, ok := c.authenticate(r)
			if !ok {
				c.toLogin(w, r, base, req.live)
				return
			}
			req.user = user
		}
		h(w, r, req)
	})
	return c.secure(c.csrf.Handler(inner))
}

// hostAllowed reports whether a Host header names this node in a way
// DNS rebinding cannot: an IP address (no name to re-point), localhost, or
// a name the operator listed.
func (c *Console) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	for _, h := range c.cfg.AllowedHosts {
		if strings.EqualFold(host, strings.TrimSuffix(strings.TrimSpace(h), ".")) {
			return true
		}
	}
	return false
}

func (c *Console) authenticate(r *http.Request) (Principal, bool) {
	ck, err := r.Cookie(TokenCookie)
	if err != nil || ck.Value == "" {
		return Principal{}, false
	}
	p, err := c.auth.Verify(ck.Value)
	return p, err == nil
}

// toLogin sends the browser to the login page, coming back here afterwards.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request, base string, live bool) {
	next := r.URL.Path
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		q.Del("h")
		if len(q) > 0 {
			next += "?" + q.Encode()
		}
	} else {
		next = base
	}
	target := base + "login?" + url.Values{"next": {next}}.Encode()
	if live || r.Header.Get("HX-Request") == "true" {
		// A poll: htmx follows HX-Redirect; a 4xx would only be logged.
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// page is the data of every full page.
type page struct {
	Title   string
	Base    string
	Nav     string
	Self    string
	Ready   bool
	Status  string
	Version string
	Assets  string
	AuthOn  bool
	User    Principal
	// SeeCluster: the cluster page is for everyone without auth, and for
	// global admins with it (as the Nacos cluster API is).
	SeeCluster bool
	Flash      string
	// Live is the rendered live fragment and LiveURL its poll address.
	Live    template.HTML
	LiveURL string
	Data    any
}

func (c *Console) newPage(r *http.Request, req *request, nav, title string, data any) *page {
	ok, msg := c.cfg.Ready()
	return &page{Title: title, Base: req.base, Nav: nav, Self: c.self, Ready: ok, Status: msg, Version: c.cfg.Version, Assets: c.assets,
		AuthOn: c.auth.Enabled(), User: req.user, SeeCluster: c.mayManage(req.user), Flash: flashText[r.URL.Query().Get("done")], Data: data}
}

// mayManage reports whether p may see the cluster's internals.
func (c *Console) mayManage(p Principal) bool { return !c.auth.Enabled() || p.Admin }

// render writes a full page.
func (c *Console) render(w http.ResponseWriter, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.cfg.Logger.Error("console template failed", "page", name, "error", err)
		http.Error(w, "console template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderLive renders a page whose main content is a live fragment: the
// whole page, or for a poll only the fragment, or 204 if the fragment the
// browser holds (named by its hash) is still current.
func (c *Console) renderLive(w http.ResponseWriter, r *http.Request, req *request, name string, p *page) {
	var inner bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&inner, "live", p); err != nil {
		c.cfg.Logger.Error("console template failed", "page", name, "error", err)
		http.Error(w, "console template error", http.StatusInternalServerError)
		return
	}
	h := fnv.New64a()
	h.Write(inner.Bytes())
	sum := strconv.FormatUint(h.Sum64(), 36)
	q := r.URL.Query()
	if req.live && q.Get("h") == sum {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q.Set("h", sum)
	q.Del("done")
	p.LiveURL = r.URL.Path + "?" + q.Encode()
	p.Live = template.HTML(inner.String()) // produced by html/template above: already escaped
	if !req.live {
		c.render(w, http.StatusOK, name, p)
		return
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "livewrap", p); err != nil {
		http.Error(w, "console template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// errorData is the data of the error page.
type errorData struct {
	Status  int
	Message string
	Back    string
}

// fail shows an error page. For a live poll it answers 204 instead: the
// page the user sees stays as it is.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if r.Header.Get("HX-Request") == "true" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	base := Bases[0]
	for _, b := range Bases {
		if strings.HasPrefix(r.URL.Path, b) {
			base = b
		}
	}
	back := base
	if ref := r.Referer(); ref != "" {
		if u, err := url.Parse(ref); err == nil && strings.HasPrefix(u.Path, base) {
			back = u.RequestURI()
		}
	}
	p := &page{Title: http.StatusText(status), Base: base, Self: c.self, Version: c.cfg.Version, Assets: c.assets, AuthOn: c.auth.Enabled(),
		Data: errorData{Status: status, Message: msg, Back: back}}
	p.Ready, p.Status = c.cfg.Ready()
	if user, ok := c.authenticate(r); ok {
		p.User = user
	}
	c.render(w, status, "error", p)
}

// flashText is the confirmation shown after a change (by code, so that a
// link cannot make the console display arbitrary text).
var flashText = map[string]string{
	"enabled":         "Instance brought online: clients may select it again.",
	"disabled":        "Instance taken offline: clients no longer select it.",
	"updated":         "Instance updated.",
	"deregistered":    "Instance deregistered. A client that is still running registers it again with its next heartbeat or reconnect.",
	"service-updated": "Service settings saved.",
	"service-deleted": "Service deleted.",
	"logged-out":      "Logged out.",
}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	names := []string{"home", "services", "service", "instance", "confirm", "service-edit", "cluster", "login", "error"}
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, "templates/"+n+".html")
		}
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}
