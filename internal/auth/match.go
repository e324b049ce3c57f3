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

// ConsolePrefix starts the resources only global admins may use.
const ConsolePrefix = "console/"

// NamingResource is the Nacos resource name of a service:
// "namespace:group:naming/service".
func NamingResource(key model.ServiceKey) string {
	return key.Namespace + ":" + key.Group + ":naming/" + key.Name
}

// GroupResource is the resource of a listing of one group's services
// (namespace:group:naming/*); NamespaceResource that of a listing across
// groups (namespace:*:naming/*). Only patterns with '*' in those places match
// them, so a grant on one service does not reveal its neighbours.
func GroupResource(namespace, group string) string { return namespace + ":" + group + ":naming/*" }

// NamespaceResource: see GroupResource.
func NamespaceResource(namespace string) string { return namespace + ":*:naming/*" }

// pattern is a compiled permission resource: the literal parts between
// '*'s.
type pattern struct {
	parts []string
	// anchoredEnd is false when the pattern ends with '*'.
	anchoredEnd bool
	read, write bool
}

func compile(p Permission) pattern {
	return pattern{parts: strings.Split(p.Resource, "*"), anchoredEnd: !strings.HasSuffix(p.Resource, "*"),
		read: strings.Contains(p.Action, "r"), write: strings.Contains(p.Action, "w")}
}

// allows reports whether the pattern grants act on resource.
func (p *pattern) allows(resource string, act Action) bool {
	if act == Read && !p.read || act == Write && !p.write || act != Read && act != Write {
		return false
	}
	return p.match(resource)
}

// match is a glob match where '*' matches any run of characters. Greedy
// leftmost matching of each literal part is exact for this pattern
// language and runs in O(len(resource) * len(pattern)) at worst.
func (p *pattern) match(s string) bool {
	parts := p.parts
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := len(parts) - 1
	for _, lit := range parts[1:last] {
		i := strings.Index(s, lit)
		if i < 0 {
			return false
		}
		s = s[i+len(lit):]
	}
	return strings.HasSuffix(s, parts[last])
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

// allowed decides act on resource for user.
func (ix *index) allowed(user, resource string, act Action) bool {
	pr := ix.users[user]
	if pr == nil {
		return false
	}
	if pr.admin {
		return true
	}
	if strings.HasPrefix(resource, ConsolePrefix) {
		return false
	}
	for i := range pr.patterns {
		if pr.patterns[i].allows(resource, act) {
			return true
		}
	}
	return false
}
