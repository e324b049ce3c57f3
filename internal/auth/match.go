package auth

import (
	"strings"

	"github.com/distro-registry/distro/internal/model"
)

// Action is what a request does to a resource.
type Action byte

// Actions, as Nacos names them in permissions.
const (
	Read  Action = 'r'
	Write Action = 'w'
)

// Resource is what a naming request acts on, kept in its parts. Names may
// hold ':' (Dubbo's service names; namespace and group names allow it too),
// so the joined Nacos string "namespace:group:naming/service" cannot be
// split back, and one glob over it would let a '*' run across a separator:
// "dev:*:naming/*" would match namespace "dev:prod". Patterns are matched
// part by part instead.
type Resource struct {
	Namespace, Group string
	// Name is the service name; "*" for a listing (GroupResource,
	// NamespaceResource).
	Name string
}

// String is the Nacos resource name, "namespace:group:naming/service".
func (r Resource) String() string { return r.Namespace + ":" + r.Group + ":" + namingPrefix + r.Name }

const namingPrefix = "naming/"

// NamingResource is the resource of one service.
func NamingResource(key model.ServiceKey) Resource {
	return Resource{Namespace: key.Namespace, Group: key.Group, Name: key.Name}
}

// GroupResource is the resource of a listing of one group's services
// (namespace:group:naming/*); NamespaceResource that of a listing across
// groups (namespace:*:naming/*). Only patterns with '*' in those places match
// them, so a grant on one service does not reveal its neighbours.
func GroupResource(namespace, group string) Resource {
	return Resource{Namespace: namespace, Group: group, Name: "*"}
}

// NamespaceResource: see GroupResource.
func NamespaceResource(namespace string) Resource {
	return Resource{Namespace: namespace, Group: "*", Name: "*"}
}

// glob is a compiled glob: the literal parts between '*'s.
type glob []string

func compileGlob(s string) glob { return strings.Split(s, "*") }

// all reports whether g matches everything ("*").
func (g glob) all() bool { return len(g) == 2 && g[0] == "" && g[1] == "" }

// match is a glob match where '*' matches any run of characters. Greedy
// leftmost matching of each literal part is exact for this pattern
// language and runs in O(len(s) * len(pattern)) at worst.
func (g glob) match(s string) bool {
	if len(g) == 1 {
		return s == g[0]
	}
	if !strings.HasPrefix(s, g[0]) {
		return false
	}
	s = s[len(g[0]):]
	last := len(g) - 1
	for _, lit := range g[1:last] {
		i := strings.Index(s, lit)
		if i < 0 {
			return false
		}
		s = s[i+len(lit):]
	}
	return strings.HasSuffix(s, g[last])
}

// pattern is a compiled permission: its resource pattern in parts, and
// its actions. A pattern "ns:group:service" is split where the resource
// is: the namespace part ends at the first ':', the group part at the ':'
// before "naming/" (so a group holding ':' can be named), or at the next
// ':' when the service part does not start with "naming/" (such as "*").
// Each part is a glob matched against its part of the resource only.
// Patterns with fewer parts keep Nacos's reading of the whole string:
// "ns:rest" matches rest against "group:naming/service" within namespace
// ns, and a pattern without ':' (such as "*") the whole resource name.
type pattern struct {
	parts int // 1, 2 or 3
	ns    glob
	group glob // parts == 3
	// rest matches "naming/service" (parts == 3), "group:naming/service"
	// (parts == 2) or the whole resource name (parts == 1).
	rest glob
	// name is rest without its "naming/" prefix when rest has one, so
	// that the common patterns match the service name without building
	// the string.
	name        glob
	read, write bool
}

func compile(p Permission) pattern {
	out := pattern{read: strings.Contains(p.Action, "r"), write: strings.Contains(p.Action, "w")}
	res := p.Resource
	ns, rest, ok := strings.Cut(res, ":")
	if !ok {
		out.parts, out.rest = 1, compileGlob(res)
		return out
	}
	out.ns = compileGlob(ns)
	var group string
	if i := strings.Index(rest, ":"+namingPrefix); i >= 0 {
		group, rest = rest[:i], rest[i+1:]
	} else if group, rest, ok = strings.Cut(rest, ":"); !ok {
		out.parts, out.rest = 2, compileGlob(group)
		return out
	}
	out.parts, out.group, out.rest = 3, compileGlob(group), compileGlob(rest)
	if after, ok := strings.CutPrefix(rest, namingPrefix); ok {
		out.name = compileGlob(after)
	}
	return out
}

// allows reports whether the pattern grants act on r.
func (p *pattern) allows(r Resource, act Action) bool {
	if act == Read && !p.read || act == Write && !p.write || act != Read && act != Write {
		return false
	}
	return p.match(r)
}

func (p *pattern) match(r Resource) bool {
	switch p.parts {
	case 1:
		return p.rest.all() || p.rest.match(r.String())
	case 2:
		return p.ns.match(r.Namespace) && (p.rest.all() || p.rest.match(r.Group+":"+namingPrefix+r.Name))
	}
	if !p.ns.match(r.Namespace) || !p.group.match(r.Group) {
		return false
	}
	switch {
	case p.name != nil:
		return p.name.match(r.Name)
	case p.rest.all():
		return true
	}
	return p.rest.match(namingPrefix + r.Name)
}

// principal is what the index knows of one user.
type principal struct {
	user     *User
	admin    bool
	patterns []pattern
}

// index is an immutable view of a State for decisions.
type index struct {
	state *State
	users map[string]*principal
	epoch uint64
}

func buildIndex(s *State, epoch uint64) *index {
	ix := &index{state: s, users: make(map[string]*principal, len(s.Users)), epoch: epoch}
	for i := range s.Users {
		ix.users[s.Users[i].Name] = &principal{user: &s.Users[i]}
	}
	byRole := map[string][]pattern{}
	for _, p := range s.Permissions {
		byRole[p.Role] = append(byRole[p.Role], compile(p))
	}
	for _, b := range s.Roles {
		pr := ix.users[b.Username]
		if pr == nil {
			continue
		}
		if b.Role == AdminRole {
			pr.admin = true
		}
		pr.patterns = append(pr.patterns, byRole[b.Role]...)
	}
	return ix
}

// allowed decides act on r for user.
func (ix *index) allowed(user string, r Resource, act Action) bool {
	pr := ix.users[user]
	if pr == nil {
		return false
	}
	if pr.admin {
		return true
	}
	for i := range pr.patterns {
		if pr.patterns[i].allows(r, act) {
			return true
		}
	}
	return false
}
