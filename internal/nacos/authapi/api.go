package authapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/httproute"
	"github.com/distro-registry/distro/internal/nacos/httpapi"
)

// API serves login and the user, role and permission endpoints in the
// shapes of Nacos's UserController, RoleController and
// PermissionController.
type API struct {
	auth    *auth.Authority
	maxBody int64
	log     *slog.Logger
	// storeInfo describes the store for GET /distro/admin/auth.
	storeInfo string
}

// New returns the API over a. storeInfo names the store (operators see it).
func New(a *auth.Authority, maxBody int64, storeInfo string, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{auth: a, maxBody: maxBody, log: log, storeInfo: storeInfo}
}

// Mount registers the endpoints on mux (they take precedence over the
// Nacos API's "/nacos/" subtree, whose login answers as if auth were off).
func (a *API) Mount(mux httproute.Registrar) {
	mux.HandleFunc("POST /nacos/v1/auth/users/login", a.login)
	mux.HandleFunc("POST /nacos/v1/auth/login", a.login)
	mux.HandleFunc("GET /nacos/v1/auth/users", a.listUsers)
	mux.HandleFunc("GET /nacos/v1/auth/users/search", a.searchUsers)
	mux.HandleFunc("POST /nacos/v1/auth/users", a.createUser)
	mux.HandleFunc("DELETE /nacos/v1/auth/users", a.deleteUser)
	mux.HandleFunc("PUT /nacos/v1/auth/users", a.updateUser)
	mux.HandleFunc("GET /nacos/v1/auth/roles", a.listRoles)
	mux.HandleFunc("GET /nacos/v1/auth/roles/search", a.searchRoles)
	mux.HandleFunc("POST /nacos/v1/auth/roles", a.addRole)
	mux.HandleFunc("DELETE /nacos/v1/auth/roles", a.deleteRole)
	mux.HandleFunc("GET /nacos/v1/auth/permissions", a.listPermissions)
	mux.HandleFunc("POST /nacos/v1/auth/permissions", a.addPermission)
	mux.HandleFunc("DELETE /nacos/v1/auth/permissions", a.deletePermission)
	mux.HandleFunc("GET /distro/admin/auth", a.status)
}

// MountDisabled registers the management endpoints on a node with auth
// off: they answer 404 with a message instead of pretending to work.
func MountDisabled(mux httproute.Registrar) {
	off := func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "authentication is off on this server (start distrod with --auth)", http.StatusNotFound)
	}
	for _, p := range []string{"/nacos/v1/auth/users", "/nacos/v1/auth/users/search", "/nacos/v1/auth/roles",
		"/nacos/v1/auth/roles/search", "/nacos/v1/auth/permissions", "/distro/admin/auth"} {
		mux.HandleFunc(p, off)
	}
}

// params returns the request's parameters: those the middleware parsed,
// else freshly read.
func (a *API) params(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.Form != nil {
		return r.Form, true
	}
	p, err := httpapi.ReadParams(r, a.maxBody)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, httpapi.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "cannot read request: "+err.Error(), status)
		return nil, false
	}
	return p, true
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	user, pw := strings.TrimSpace(p.Get("username")), p.Get("password")
	if user == "" || pw == "" {
		text(w, http.StatusBadRequest, "Param 'username' and 'password' are required.")
		return
	}
	s, err := a.auth.Login(user, pw, remoteIP(r.RemoteAddr))
	if err != nil {
		attrs := []any{"remote", remoteIP(r.RemoteAddr)}
		if a.auth.Exists(user) {
			// Only names of users: a name that is none may be a password
			// typed into the wrong field.
			attrs = append(attrs, "user", user)
		}
		switch {
		case errors.Is(err, auth.ErrThrottled):
			a.log.Warn("login throttled", attrs...)
			w.Header().Set("Retry-After", strconv.Itoa(int(auth.DefaultUserRefill.Seconds())))
		case errors.Is(err, auth.ErrBusy):
			a.log.Warn("login refused: every password check slot was busy", attrs...)
			w.Header().Set("Retry-After", "1")
		default:
			a.log.Info("login failed", attrs...)
		}
		fail(w, err)
		return
	}
	w.Header().Set("Authorization", "Bearer "+s.Token)
	writeJSON(w, http.StatusOK, map[string]any{"accessToken": s.Token, "tokenTtl": int64(s.TTL.Seconds()),
		"globalAdmin": s.Admin, "username": s.Username})
}

// restOK is Nacos's RestResult success shape.
func restOK(w http.ResponseWriter, data string) {
	writeJSON(w, http.StatusOK, map[string]any{"code": 200, "message": nil, "data": data})
}

// page is Nacos's Page shape.
func page[T any](w http.ResponseWriter, p url.Values, items []T) {
	no, size := pageParams(p)
	total := len(items)
	pages := 0
	if size > 0 {
		pages = (total + size - 1) / size
	}
	var out []T
	if start := (no - 1) * size; no-1 < pages && start < total {
		out = items[start:min(start+size, total)]
	}
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"totalCount": total, "pageNumber": no, "pagesAvailable": pages, "pageItems": out})
}

// pageParams reads 1-based pageNo and pageSize (defaults 1 and 100, at
// most 1000 a page).
func pageParams(p url.Values) (no, size int) {
	no, size = 1, 100
	if n, err := strconv.Atoi(strings.TrimSpace(p.Get("pageNo"))); err == nil && n > 0 {
		no = n
	}
	if n, err := strconv.Atoi(strings.TrimSpace(p.Get("pageSize"))); err == nil && n > 0 {
		size = min(n, 1000)
	}
	return no, size
}

// matches applies Nacos's search modes: "blur" is a substring match,
// anything else ("accurate") an exact one; an empty filter matches all.
func matches(p url.Values, filter, value string) bool {
	if filter == "" {
		return true
	}
	if p.Get("search") == "blur" {
		return strings.Contains(value, filter)
	}
	return value == filter
}

type userItem struct {
	Username string `json:"username"`
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	f := strings.TrimSpace(p.Get("username"))
	var out []userItem
	for _, u := range a.auth.State().Users {
		if matches(p, f, u.Name) {
			out = append(out, userItem{u.Name})
		}
	}
	page(w, p, out)
}

func (a *API) searchUsers(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	f := strings.TrimSpace(p.Get("username"))
	out := []string{}
	for _, u := range a.auth.State().Users {
		if strings.Contains(u.Name, f) {
			out = append(out, u.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	user := strings.TrimSpace(p.Get("username"))
	if err := a.auth.CreateUser(r.Context(), user, p.Get("password")); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "user created", "user", user)
	restOK(w, "create user ok!")
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	user := strings.TrimSpace(p.Get("username"))
	if err := a.auth.Apply(r.Context(), auth.Change{Op: auth.OpDeleteUser, Username: user}); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "user deleted", "user", user)
	restOK(w, "delete user ok!")
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	user := strings.TrimSpace(p.Get("username"))
	if err := a.auth.SetPassword(r.Context(), user, p.Get("newPassword")); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "password changed", "user", user)
	restOK(w, "update user ok!")
}

type roleItem struct {
	Role     string `json:"role"`
	Username string `json:"username"`
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	uf, rf := strings.TrimSpace(p.Get("username")), strings.TrimSpace(p.Get("role"))
	var out []roleItem
	for _, b := range a.auth.State().Roles {
		if matches(p, uf, b.Username) && matches(p, rf, b.Role) {
			out = append(out, roleItem{b.Role, b.Username})
		}
	}
	page(w, p, out)
}

func (a *API) searchRoles(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	f := strings.TrimSpace(p.Get("role"))
	out := []string{}
	for _, b := range a.auth.State().Roles {
		if strings.Contains(b.Role, f) && (len(out) == 0 || out[len(out)-1] != b.Role) {
			out = append(out, b.Role)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) addRole(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	c := auth.Change{Op: auth.OpAddRole, Role: strings.TrimSpace(p.Get("role")), Username: strings.TrimSpace(p.Get("username"))}
	if err := a.auth.Apply(r.Context(), c); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "role added", "role", c.Role, "user", c.Username)
	restOK(w, "add role ok!")
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	c := auth.Change{Op: auth.OpDeleteRole, Role: strings.TrimSpace(p.Get("role")), Username: strings.TrimSpace(p.Get("username"))}
	if c.Role == "" {
		text(w, http.StatusBadRequest, "Param 'role' is required.")
		return
	}
	if err := a.auth.Apply(r.Context(), c); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "role deleted", "role", c.Role, "user", c.Username)
	restOK(w, "delete role of user "+c.Username+" ok!")
}

func (a *API) listPermissions(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	rf := strings.TrimSpace(p.Get("role"))
	var out []auth.Permission
	for _, pm := range a.auth.State().Permissions {
		if matches(p, rf, pm.Role) {
			out = append(out, pm)
		}
	}
	page(w, p, out)
}

func (a *API) permissionChange(op string, p url.Values) auth.Change {
	return auth.Change{Op: op, Role: strings.TrimSpace(p.Get("role")), Resource: strings.TrimSpace(p.Get("resource")),
		Action: strings.TrimSpace(p.Get("action"))}
}

func (a *API) addPermission(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	c := a.permissionChange(auth.OpAddPermission, p)
	if err := a.auth.Apply(r.Context(), c); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "permission added", "role", c.Role, "resource", c.Resource, "action", c.Action)
	restOK(w, "add permission ok!")
}

func (a *API) deletePermission(w http.ResponseWriter, r *http.Request) {
	p, ok := a.params(w, r)
	if !ok {
		return
	}
	c := a.permissionChange(auth.OpDeletePermission, p)
	if err := a.auth.Apply(r.Context(), c); err != nil {
		fail(w, err)
		return
	}
	a.changed(r, "permission deleted", "role", c.Role, "resource", c.Resource, "action", c.Action)
	restOK(w, "delete permission ok!")
}

// status answers GET /distro/admin/auth: the store, counts, and a digest
// of users, roles and permissions, so that an operator can check that every
// node of a cluster holds the same data.
func (a *API) status(w http.ResponseWriter, _ *http.Request) {
	st := a.auth.Stored()
	writeJSON(w, http.StatusOK, map[string]any{"store": a.storeInfo, "users": len(st.Users), "roles": len(st.Roles),
		"permissions": len(st.Permissions), "digest": Digest(st), "configuredAdmin": a.auth.ConfiguredAdmin()})
}

// Digest is a SHA-256 over a stored State's canonical JSON (hashes
// included, so a password set differently on two nodes shows; the admin
// configured by flag is not part of it).
func Digest(st *auth.State) string {
	b, _ := json.Marshal(st)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// changed logs a management change (never a password or hash).
func (a *API) changed(r *http.Request, msg string, args ...any) {
	a.log.Info("auth: "+msg, append(args, "by", IdentityOf(r))...)
}

func fail(w http.ResponseWriter, err error) {
	var ae *auth.Error
	if errors.As(err, &ae) {
		text(w, ae.Status, ae.Msg)
		return
	}
	text(w, http.StatusInternalServerError, err.Error())
}

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
