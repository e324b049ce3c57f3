package auth

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// AdminRole is Nacos's global admin role: its users may do everything.
const AdminRole = "ROLE_ADMIN"

// Limits on names and patterns.
const (
	maxNameLen     = 64
	maxResourceLen = 512
	// MaxPasswordLen is bcrypt's limit: longer passwords are refused rather
	// than silently truncated.
	MaxPasswordLen = 72
)

// User is one account. Hash is the bcrypt hash of the password; Created is
// when the account was created (Unix seconds), so that tokens issued to an
// earlier account of the same name are refused.
type User struct {
	Name    string `json:"username"`
	Hash    string `json:"hash"`
	Created int64  `json:"created"`
}

// RoleBinding gives user Username the role Role.
type RoleBinding struct {
	Role     string `json:"role"`
	Username string `json:"username"`
}

// Permission lets role Role do Action ("r", "w" or "rw") on the resources
// matching the pattern Resource.
type Permission struct {
	Role     string `json:"role"`
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// State is the whole auth data set. Every slice is sorted and free of
// duplicates. A State is never modified once built: Apply returns a new one.
type State struct {
	Users       []User        `json:"users"`
	Roles       []RoleBinding `json:"roles"`
	Permissions []Permission  `json:"permissions"`
}

// Change operations.
const (
	OpCreateUser       = "createUser"
	OpDeleteUser       = "deleteUser"
	OpSetPassword      = "setPassword"
	OpAddRole          = "addRole"
	OpDeleteRole       = "deleteRole"
	OpAddPermission    = "addPermission"
	OpDeletePermission = "deletePermission"
	// OpGrantAdmin binds AdminRole; only the server's bootstrap issues it
	// (the API refuses to hand out AdminRole, as Nacos does).
	OpGrantAdmin = "grantAdmin"
	// OpBootstrapAdmin makes Username (with Hash) a global admin in one
	// step, only if no admin exists yet; otherwise it changes nothing. Nodes
	// that bootstrap at the same moment through a replicated log thus make
	// exactly one admin, and each can tell whether its hash won.
	OpBootstrapAdmin = "bootstrapAdmin"
)

// Change is one command on the State: the unit a replicated log carries.
// It holds everything Apply needs (the password's hash, the time), so that
// applying it anywhere gives the same State.
type Change struct {
	Op       string `json:"op"`
	Username string `json:"username,omitempty"`
	Hash     string `json:"hash,omitempty"`
	Role     string `json:"role,omitempty"`
	Resource string `json:"resource,omitempty"`
	Action   string `json:"action,omitempty"`
	// At is when the change was requested (Unix seconds).
	At int64 `json:"at,omitempty"`
}

// Error is a refused request or change: the HTTP status and the message a
// client sees (Nacos's wording where Nacos has one).
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// ValidName checks a user or role name: 1-64 characters from letters,
// digits and "_.-@".
func ValidName(kind, s string) error {
	if s == "" {
		return errorf(http.StatusBadRequest, "Param '%s' is required.", kind)
	}
	if len(s) > maxNameLen {
		return errorf(http.StatusBadRequest, "%s is longer than %d characters", kind, maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '@') {
			return errorf(http.StatusBadRequest, "%s %q may only hold letters, digits and _ . - @", kind, s)
		}
	}
	return nil
}

// ValidPassword checks a new password: not empty, at most MaxPasswordLen
// bytes.
func ValidPassword(kind, p string) error {
	if p == "" {
		return errorf(http.StatusBadRequest, "Param '%s' is required.", kind)
	}
	if len(p) > MaxPasswordLen {
		return errorf(http.StatusBadRequest, "%s is longer than %d bytes", kind, MaxPasswordLen)
	}
	return nil
}

// ValidResource checks a permission pattern: printable ASCII without
// spaces, at most 512 bytes, e.g. "public:*:*" or "ns1:DEFAULT_GROUP:naming/order*".
func ValidResource(s string) error {
	if s == "" {
		return errorf(http.StatusBadRequest, "Param 'resource' is required.")
	}
	if len(s) > maxResourceLen {
		return errorf(http.StatusBadRequest, "resource is longer than %d bytes", maxResourceLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return errorf(http.StatusBadRequest, "resource %q may only hold printable characters without spaces", s)
		}
	}
	return nil
}

// ValidAction checks a permission action: r, w or rw.
func ValidAction(s string) error {
	switch s {
	case "r", "w", "rw":
		return nil
	case "":
		return errorf(http.StatusBadRequest, "Param 'action' is required.")
	}
	return errorf(http.StatusBadRequest, "action %q is not r, w or rw", s)
}

// User returns the user called name, or nil.
func (s *State) User(name string) *User {
	i, ok := slices.BinarySearchFunc(s.Users, name, func(u User, n string) int { return strings.Compare(u.Name, n) })
	if !ok {
		return nil
	}
	return &s.Users[i]
}

// HasRole reports whether some user has role.
func (s *State) HasRole(role string) bool {
	return slices.ContainsFunc(s.Roles, func(b RoleBinding) bool { return b.Role == role })
}

// IsAdmin reports whether user has AdminRole.
func (s *State) IsAdmin(user string) bool {
	return slices.Contains(s.Roles, RoleBinding{Role: AdminRole, Username: user})
}

// HasAdmin reports whether any user has AdminRole.
func (s *State) HasAdmin() bool { return s.HasRole(AdminRole) }

func cmpBinding(a, b RoleBinding) int {
	return cmp.Or(strings.Compare(a.Role, b.Role), strings.Compare(a.Username, b.Username))
}

func cmpPermission(a, b Permission) int {
	return cmp.Or(strings.Compare(a.Role, b.Role), strings.Compare(a.Resource, b.Resource), strings.Compare(a.Action, b.Action))
}

// Normalize sorts and deduplicates a State read from storage and checks
// every entry, so that a hand-edited or damaged file is refused as a whole
// rather than half used.
func (s *State) Normalize() error {
	slices.SortFunc(s.Users, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	for i, u := range s.Users {
		if err := ValidName("username", u.Name); err != nil {
			return err
		}
		if !strings.HasPrefix(u.Hash, "$2") {
			return fmt.Errorf("user %q has no bcrypt hash", u.Name)
		}
		if i > 0 && s.Users[i-1].Name == u.Name {
			return fmt.Errorf("user %q appears twice", u.Name)
		}
	}
	slices.SortFunc(s.Roles, cmpBinding)
	s.Roles = slices.Compact(s.Roles)
	for _, b := range s.Roles {
		if err := ValidName("role", b.Role); err != nil {
			return err
		}
		if s.User(b.Username) == nil {
			return fmt.Errorf("role %q is bound to unknown user %q", b.Role, b.Username)
		}
	}
	slices.SortFunc(s.Permissions, cmpPermission)
	s.Permissions = slices.Compact(s.Permissions)
	for _, p := range s.Permissions {
		if err := ValidName("role", p.Role); err != nil {
			return err
		}
		if err := ValidResource(p.Resource); err != nil {
			return err
		}
		if err := ValidAction(p.Action); err != nil {
			return err
		}
	}
	return nil
}

// Apply returns the State after c, or an *Error (400) saying why c is
// refused; s itself is unchanged. It is deterministic: the same State and
// Change give the same result on every node.
func (s *State) Apply(c Change) (*State, error) {
	n := &State{Users: s.Users, Roles: s.Roles, Permissions: s.Permissions}
	bad := func(format string, args ...any) (*State, error) {
		return nil, errorf(http.StatusBadRequest, format, args...)
	}
	switch c.Op {
	case OpCreateUser:
		if err := ValidName("username", c.Username); err != nil {
			return nil, err
		}
		if s.User(c.Username) != nil {
			return bad("user '%s' already exist!", c.Username)
		}
		if !strings.HasPrefix(c.Hash, "$2") {
			return bad("createUser without a bcrypt hash")
		}
		n.Users = sortedInsert(s.Users, User{Name: c.Username, Hash: c.Hash, Created: c.At},
			func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	case OpDeleteUser:
		if s.IsAdmin(c.Username) {
			return bad("cannot delete admin: %s", c.Username)
		}
		if s.User(c.Username) == nil {
			return s, nil // Nacos: silent when the user does not exist
		}
		n.Users = slices.DeleteFunc(slices.Clone(s.Users), func(u User) bool { return u.Name == c.Username })
		n.Roles = slices.DeleteFunc(slices.Clone(s.Roles), func(b RoleBinding) bool { return b.Username == c.Username })
	case OpSetPassword:
		u := s.User(c.Username)
		if u == nil {
			return bad("user %s not exist!", c.Username)
		}
		if !strings.HasPrefix(c.Hash, "$2") {
			return bad("setPassword without a bcrypt hash")
		}
		n.Users = slices.Clone(s.Users)
		n.Users[slices.IndexFunc(n.Users, func(x User) bool { return x.Name == c.Username })].Hash = c.Hash
	case OpAddRole, OpGrantAdmin:
		role := c.Role
		if c.Op == OpGrantAdmin {
			role = AdminRole
		} else if role == AdminRole {
			return bad("role '%s' is not permitted to create!", AdminRole)
		}
		if err := ValidName("role", role); err != nil {
			return nil, err
		}
		if s.User(c.Username) == nil {
			return bad("user '%s' not found!", c.Username)
		}
		b := RoleBinding{Role: role, Username: c.Username}
		if slices.Contains(s.Roles, b) {
			if c.Op == OpGrantAdmin {
				return s, nil
			}
			return bad("user '%s' already bound to the role '%s'!", c.Username, role)
		}
		n.Roles = sortedInsert(s.Roles, b, cmpBinding)
	case OpDeleteRole:
		if c.Role == AdminRole {
			return bad("role '%s' is not permitted to delete!", AdminRole)
		}
		if c.Username != "" {
			n.Roles = slices.DeleteFunc(slices.Clone(s.Roles), func(b RoleBinding) bool { return b.Role == c.Role && b.Username == c.Username })
			break
		}
		// The whole role: every binding and its permissions.
		n.Roles = slices.DeleteFunc(slices.Clone(s.Roles), func(b RoleBinding) bool { return b.Role == c.Role })
		n.Permissions = slices.DeleteFunc(slices.Clone(s.Permissions), func(p Permission) bool { return p.Role == c.Role })
	case OpAddPermission:
		if err := ValidResource(c.Resource); err != nil {
			return nil, err
		}
		if err := ValidAction(c.Action); err != nil {
			return nil, err
		}
		if c.Role == AdminRole || !s.HasRole(c.Role) {
			return bad("role %s not found!", c.Role)
		}
		p := Permission{Role: c.Role, Resource: c.Resource, Action: c.Action}
		if slices.Contains(s.Permissions, p) {
			return s, nil
		}
		n.Permissions = sortedInsert(s.Permissions, p, cmpPermission)
	case OpBootstrapAdmin:
		if s.HasAdmin() {
			return s, nil
		}
		if err := ValidName("username", c.Username); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(c.Hash, "$2") {
			return bad("bootstrapAdmin without a bcrypt hash")
		}
		u := User{Name: c.Username, Hash: c.Hash, Created: c.At}
		if cur := s.User(c.Username); cur != nil {
			// An earlier account of that name (say, a bootstrap interrupted
			// before its grant): its tokens stay valid, its password is reset.
			u.Created = cur.Created
			n.Users = slices.Clone(s.Users)
			n.Users[slices.IndexFunc(n.Users, func(x User) bool { return x.Name == c.Username })] = u
		} else {
			n.Users = sortedInsert(s.Users, u, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
		}
		n.Roles = sortedInsert(s.Roles, RoleBinding{Role: AdminRole, Username: c.Username}, cmpBinding)
	case OpDeletePermission:
		p := Permission{Role: c.Role, Resource: c.Resource, Action: c.Action}
		n.Permissions = slices.DeleteFunc(slices.Clone(s.Permissions), func(x Permission) bool { return x == p })
	default:
		return bad("unknown change %q", c.Op)
	}
	return n, nil
}

// sortedInsert returns a copy of sorted with v inserted in order.
func sortedInsert[T any](sorted []T, v T, cmp func(a, b T) int) []T {
	i, _ := slices.BinarySearchFunc(sorted, v, cmp)
	out := make([]T, 0, len(sorted)+1)
	out = append(out, sorted[:i]...)
	out = append(out, v)
	return append(out, sorted[i:]...)
}
