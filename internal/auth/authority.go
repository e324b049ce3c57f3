package auth

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distro-registry/distro/internal/model"
)

// Config configures an Authority.
type Config struct {
	// Store holds users, roles and permissions.
	Store Store
	// Tokens issues and verifies access tokens.
	Tokens *Tokens
	// AdminUser and AdminPassword, when the password is set, define a global
	// admin that exists whatever the store says (the same on every node of
	// a cluster): its password is AdminPassword and cannot be changed
	// through the API.
	AdminUser     string
	AdminPassword string
	// BcryptCost of new hashes (default DefaultBcryptCost).
	BcryptCost int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// BcryptWait bounds how long a password check waits for a free bcrypt
	// slot (default DefaultBcryptWait); past it the check is answered
	// ErrBusy (429), so a login flood queues no request without bound.
	BcryptWait time.Duration
}

// DefaultBcryptWait is Config.BcryptWait's default.
const DefaultBcryptWait = 2 * time.Second

// ErrBusy answers a password check that found every bcrypt slot taken for
// Config.BcryptWait.
var ErrBusy = &Error{Status: http.StatusTooManyRequests, Msg: "too many password checks in progress; try again shortly"}

// Credentials are what a request presents: a token, or a user name and
// password.
type Credentials struct {
	Token    string
	Username string
	Password string
}

// Empty reports whether nothing was presented.
func (c Credentials) Empty() bool { return c.Token == "" && c.Username == "" && c.Password == "" }

// Session is the answer to a successful login.
type Session struct {
	Token    string
	TTL      time.Duration
	Admin    bool
	Username string
}

// Authority makes the authentication and authorization decisions of a
// node. It is safe for concurrent use; decisions take no lock.
type Authority struct {
	cfg    Config
	tokens *Tokens
	now    func() time.Time

	overlay *User // the configured admin, if any

	ix    atomic.Pointer[index]
	epoch atomic.Uint64
	mu    sync.Mutex // serialises index rebuilds

	creds   *credCache
	userLim *limiter
	addrLim *limiter
	// bcryptSem bounds concurrent bcrypt checks, so a flood of logins
	// cannot take every core.
	bcryptSem chan struct{}
}

// New builds an Authority over cfg.Store.
func New(cfg Config) (*Authority, error) {
	if cfg.Store == nil || cfg.Tokens == nil {
		return nil, errors.New("auth: Store and Tokens are required")
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BcryptWait <= 0 {
		cfg.BcryptWait = DefaultBcryptWait
	}
	a := &Authority{cfg: cfg, tokens: cfg.Tokens, now: cfg.Now, creds: newCredCache(),
		userLim: newLimiter(DefaultUserBurst, DefaultUserRefill), addrLim: newLimiter(DefaultAddrBurst, DefaultAddrRefill),
		bcryptSem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
	if cfg.AdminPassword != "" {
		if err := ValidName("admin user", cfg.AdminUser); err != nil {
			return nil, err
		}
		h, err := HashPassword(cfg.AdminPassword, cfg.BcryptCost)
		if err != nil {
			return nil, err
		}
		a.overlay = &User{Name: cfg.AdminUser, Hash: h}
	}
	a.rebuild(cfg.Store.State())
	cfg.Store.Watch(a.rebuild)
	return a, nil
}

// rebuild installs the index of s (plus the configured admin).
func (a *Authority) rebuild(s *State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if o := a.overlay; o != nil {
		eff := &State{Users: slices.Clone(s.Users), Roles: s.Roles, Permissions: s.Permissions}
		eff.Users = slices.DeleteFunc(eff.Users, func(u User) bool { return u.Name == o.Name })
		eff.Users = sortedInsert(eff.Users, *o, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
		if b := (RoleBinding{Role: AdminRole, Username: o.Name}); !slices.Contains(s.Roles, b) {
			eff.Roles = sortedInsert(s.Roles, b, cmpBinding)
		}
		s = eff
	}
	a.ix.Store(buildIndex(s, a.epoch.Add(1)))
}

// Epoch changes whenever the data behind decisions changed.
func (a *Authority) Epoch() uint64 { return a.ix.Load().epoch }

// State is the effective State (including the configured admin).
func (a *Authority) State() *State { return a.ix.Load().state }

// Stored is the store's State (without the configured admin, whose hash
// differs from node to node).
func (a *Authority) Stored() *State { return a.cfg.Store.State() }

// ConfiguredAdmin is the admin defined by configuration ("" if none).
func (a *Authority) ConfiguredAdmin() string {
	if a.overlay == nil {
		return ""
	}
	return a.overlay.Name
}

// TokenTTL is the lifetime of issued tokens.
func (a *Authority) TokenTTL() time.Duration { return a.tokens.TTL() }

// Exists reports whether user is a user (configured admin included).
func (a *Authority) Exists(user string) bool { return a.ix.Load().users[user] != nil }

// IsAdmin reports whether user is a global admin.
func (a *Authority) IsAdmin(user string) bool {
	pr := a.ix.Load().users[user]
	return pr != nil && pr.admin
}

// Allowed reports whether user may do act on resource r.
func (a *Authority) Allowed(user string, r Resource, act Action) bool {
	return a.ix.Load().allowed(user, r, act)
}

// Authorize is Allowed as an error (ErrForbidden).
func (a *Authority) Authorize(user string, r Resource, act Action) error {
	if a.Allowed(user, r, act) {
		return nil
	}
	return ErrForbidden
}

// MayRead reports whether user may read service key (push filtering).
func (a *Authority) MayRead(user string, key model.ServiceKey) bool {
	return a.Allowed(user, NamingResource(key), Read)
}

// Authenticate returns the user that c identifies. remote is the source
// address (for throttling password checks). Errors are *Error values with
// Nacos's messages (403), or ErrThrottled or ErrBusy (429).
func (a *Authority) Authenticate(c Credentials, remote string) (string, error) {
	if c.Token != "" {
		sub, iat, err := a.tokens.Verify(c.Token)
		if err != nil {
			return "", err
		}
		pr := a.ix.Load().users[sub]
		if pr == nil || iat < pr.user.Created {
			// Deleted, or recreated after the token was issued.
			return "", ErrNoIdentity
		}
		return sub, nil
	}
	if c.Username == "" || c.Password == "" {
		return "", ErrNoIdentity
	}
	if err := a.checkPassword(c.Username, c.Password, remote); err != nil {
		return "", err
	}
	return c.Username, nil
}

// Login checks user's password and issues a token.
func (a *Authority) Login(user, password, remote string) (Session, error) {
	if user == "" || password == "" {
		return Session{}, ErrNoIdentity
	}
	if err := a.checkPassword(user, password, remote); err != nil {
		return Session{}, err
	}
	tok, err := a.tokens.Issue(user)
	if err != nil {
		return Session{}, &Error{Status: http.StatusInternalServerError, Msg: "cannot issue a token"}
	}
	return Session{Token: tok, TTL: a.tokens.TTL(), Admin: a.IsAdmin(user), Username: user}, nil
}

// checkPassword verifies a password: from the cache of verified
// credentials, else (unless throttled) with bcrypt.
func (a *Authority) checkPassword(user, password, remote string) error {
	now := a.now()
	pr := a.ix.Load().users[user]
	var id [32]byte
	if pr != nil {
		id = a.creds.id(user, password)
		if a.creds.ok(id, pr.user.Hash, now) {
			return nil
		}
	}
	userKey := "u\x00" + user
	if !a.userLim.allow(userKey, now) || !a.addrLim.allow(remote, now) {
		return ErrThrottled
	}
	hash := dummyHash()
	if pr != nil {
		hash = []byte(pr.user.Hash)
	}
	if !a.acquireBcrypt() {
		return ErrBusy
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-a.bcryptSem
	if pr == nil || err != nil {
		a.userLim.fail(userKey, now)
		a.addrLim.fail(remote, now)
		return ErrNoIdentity
	}
	a.creds.put(id, pr.user.Hash, now)
	return nil
}

// acquireBcrypt takes a bcrypt slot, waiting at most Config.BcryptWait.
func (a *Authority) acquireBcrypt() bool {
	select {
	case a.bcryptSem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.cfg.BcryptWait)
	defer t.Stop()
	select {
	case a.bcryptSem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// Apply applies a change through the store. Changes to the configured
// admin's password or existence are refused: the configuration owns them.
func (a *Authority) Apply(ctx context.Context, c Change) error {
	if o := a.overlay; o != nil && c.Username == o.Name && (c.Op == OpSetPassword || c.Op == OpDeleteUser) {
		return &Error{Status: http.StatusBadRequest, Msg: "user '" + o.Name + "' is defined by --auth-admin-password; change it there"}
	}
	if c.At == 0 {
		c.At = a.now().Unix()
	}
	_, err := a.cfg.Store.Apply(ctx, c)
	return err
}

// CreateUser hashes password and creates user.
func (a *Authority) CreateUser(ctx context.Context, user, password string) error {
	if err := ValidName("username", user); err != nil {
		return err
	}
	if o := a.overlay; o != nil && user == o.Name {
		return &Error{Status: http.StatusBadRequest, Msg: "user '" + user + "' already exist!"}
	}
	h, err := HashPassword(password, a.cfg.BcryptCost)
	if err != nil {
		return err
	}
	return a.Apply(ctx, Change{Op: OpCreateUser, Username: user, Hash: h})
}

// SetPassword hashes password and makes it user's.
func (a *Authority) SetPassword(ctx context.Context, user, password string) error {
	if err := ValidPassword("newPassword", password); err != nil {
		return err
	}
	h, err := HashPassword(password, a.cfg.BcryptCost)
	if err != nil {
		return err
	}
	return a.Apply(ctx, Change{Op: OpSetPassword, Username: user, Hash: h})
}

// Bootstrap makes sure a global admin exists. With a configured admin it
// does nothing. Otherwise, if the store has no admin, it makes user an
// admin with a generated password (persisted like any user; an existing
// user of that name gets the new password) and returns that password,
// which the caller shows once. It returns "" when an admin exists, also
// when another node's bootstrap made one first (one OpBootstrapAdmin
// change: the first to commit wins, the others change nothing).
func (a *Authority) Bootstrap(ctx context.Context, user string) (string, error) {
	if a.overlay != nil || a.cfg.Store.State().HasAdmin() {
		return "", nil
	}
	if err := ValidName("admin user", user); err != nil {
		return "", err
	}
	pw := GeneratePassword()
	h, err := HashPassword(pw, a.cfg.BcryptCost)
	if err != nil {
		return "", err
	}
	st, err := a.cfg.Store.Apply(ctx, Change{Op: OpBootstrapAdmin, Username: user, Hash: h, At: a.now().Unix()})
	if err != nil {
		return "", err
	}
	if u := st.User(user); u == nil || u.Hash != h || !st.IsAdmin(user) {
		return "", nil // another bootstrap won
	}
	return pw, nil
}
