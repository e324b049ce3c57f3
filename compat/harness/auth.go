package harness

import (
	"net/http"
	"net/url"
	"testing"
)

// AdminPassword is the admin password of the auth-on nodes of the suites.
const AdminPassword = "compat-admin-password"

// Admin are the admin's credentials (user "nacos", AdminPassword).
var Admin = Credentials{Username: "nacos", Password: AdminPassword}

// AuthArgs are the flags of a node with client auth on and the suites'
// admin, followed by extra.
func AuthArgs(extra ...string) []string {
	return append([]string{"--auth", "--auth-admin-password", AdminPassword}, extra...)
}

// OperatorHTTP is a raw client for operator calls on n: logged in as the
// admin when n was started with AuthArgs, plain otherwise.
func (n *Node) OperatorHTTP() (*NacosHTTP, error) {
	auth := false
	for _, a := range n.opts.Args {
		switch a {
		case "--auth", "--auth=true":
			auth = true
		case "--auth=false":
			auth = false
		}
	}
	if !auth {
		return n.HTTP(), nil
	}
	return n.HTTP().AsUser(Admin.Username, Admin.Password)
}

// AdminHTTP is a raw client of n logged in as the admin.
func (n *Node) AdminHTTP(tb testing.TB) *NacosHTTP {
	tb.Helper()
	h, err := n.HTTP().AsUser(Admin.Username, Admin.Password)
	if err != nil {
		tb.Fatalf("admin login on %s: %v", n.Name, err)
	}
	return h
}

// AddUser creates user on n (through the admin) and, if resource is set,
// a role "<user>-role" granting action ("r", "w", "rw") on resource
// ("namespace:group:naming/service" with '*' wildcards).
func (n *Node) AddUser(tb testing.TB, user, password, resource, action string) Credentials {
	tb.Helper()
	h := n.AdminHTTP(tb)
	steps := []struct {
		path string
		v    url.Values
	}{{"/v1/auth/users", url.Values{"username": {user}, "password": {password}}}}
	if resource != "" {
		role := user + "-role"
		steps = append(steps,
			struct {
				path string
				v    url.Values
			}{"/v1/auth/roles", url.Values{"role": {role}, "username": {user}}},
			struct {
				path string
				v    url.Values
			}{"/v1/auth/permissions", url.Values{"role": {role}, "resource": {resource}, "action": {action}}})
	}
	for _, s := range steps {
		if _, err := h.Do(http.MethodPost, s.path, s.v); err != nil {
			tb.Fatalf("add user %s: %v", user, err)
		}
	}
	return Credentials{Username: user, Password: password}
}
