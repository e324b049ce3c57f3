package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/distro-registry/distro/internal/model"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

// memStore is a Store in memory.
type memStore struct {
	mu       sync.Mutex
	cur      *State
	watchers []func(*State)
}

func (m *memStore) State() *State { m.mu.Lock(); defer m.mu.Unlock(); return m.cur }
func (m *memStore) Watch(fn func(*State)) {
	m.mu.Lock()
	m.watchers = append(m.watchers, fn)
	m.mu.Unlock()
}
func (m *memStore) Apply(_ context.Context, c Change) (*State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.cur.Apply(c)
	if err != nil {
		return nil, err
	}
	m.cur = n
	for _, w := range m.watchers {
		w(n)
	}
	return n, nil
}

func newAuthority(t *testing.T, clk *fakeClock, adminPassword string) *Authority {
	t.Helper()
	toks, err := NewTokens(testKey, time.Hour, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Store: &memStore{cur: &State{}}, Tokens: toks, AdminUser: "nacos", AdminPassword: adminPassword,
		BcryptCost: bcrypt.MinCost, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustApply(t *testing.T, a *Authority, c Change) {
	t.Helper()
	if err := a.Apply(context.Background(), c); err != nil {
		t.Fatalf("%+v: %v", c, err)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		glob, s string
		want    bool
	}{
		{"*", "anything", true},
		{"*", "", true},
		{"order*", "orders", true},
		{"order*", "billing", false},
		{"order", "orders", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"ns.1", "nsx1", false}, // '.' is literal (Nacos: any character)
		{"", "", true},
	}
	for _, c := range cases {
		if got := compileGlob(c.glob).match(c.s); got != c.want {
			t.Errorf("glob %q on %q = %v, want %v", c.glob, c.s, got, c.want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	res := func(ns, group, name string) Resource { return Resource{Namespace: ns, Group: group, Name: name} }
	cases := []struct {
		pattern string
		res     Resource
		want    bool
	}{
		{"public:*:*", res("public", "DEFAULT_GROUP", "a"), true},
		{"public:*:*", res("dev", "DEFAULT_GROUP", "a"), false},
		{"*:*:*", res("dev", "G", "x"), true},
		{"*:*:*", res("dev:prod", "G:x", "a:b"), true},
		{"*", res("any", "thing", "at-all"), true},
		{"ns1:DEFAULT_GROUP:naming/order*", res("ns1", "DEFAULT_GROUP", "orders"), true},
		{"ns1:DEFAULT_GROUP:naming/order*", res("ns1", "DEFAULT_GROUP", "billing"), false},
		{"ns1:DEFAULT_GROUP:naming/order", res("ns1", "DEFAULT_GROUP", "orders"), false},
		{"ns1:*:naming/*", NamespaceResource("ns1"), true},
		{"ns1:G:naming/*", NamespaceResource("ns1"), false},  // a group grant does not list the namespace
		{"ns1:G:naming/a", GroupResource("ns1", "G"), false}, // a one-service grant does not list the group
		{"ns.1:*:*", res("nsx1", "G", "s"), false},
		// A '*' never runs across a separator: a ':' in a name does not
		// reach another namespace or group.
		{"dev:*:naming/*", res("dev:prod", "G", "s"), false},
		{"dev:*:*", res("dev:prod", "G", "s"), false},
		{"dev:*:*", res("dev", "prod:G", "s"), true},
		{"dev:G:*", res("dev", "G:x", "s"), false},
		{"dev:G:naming/*", res("dev", "G:x", "s"), false},
		{"dev:*", res("dev:prod", "G", "s"), false},
		{"dev:*", res("dev", "G", "s"), true},
		{"dev:G*", res("dev", "Gx", "s"), true},
		{"dev*:*:*", res("dev:prod", "G", "s"), true}, // what the pattern says
		// Names with ':' can be granted: the group ends before "naming/".
		{"dev:a:b:naming/x", res("dev", "a:b", "x"), true},
		{"dev:a:b:naming/x", res("dev", "a", "b:naming/x"), false},
		{"dev:G:naming/providers:com.acme.Api:1.0:", res("dev", "G", "providers:com.acme.Api:1.0:"), true},
		{"dev:G:naming/providers:*", res("dev", "G", "providers:com.acme.Api:1.0:"), true},
		{"dev:G:*:1.0:", res("dev", "G", "providers:com.acme.Api:1.0:"), true},
		{"dev:G:nam*/orders", res("dev", "G", "orders"), true},
		{"dev:G:config/*", res("dev", "G", "orders"), false},
		{"", res("", "", ""), false},
	}
	for _, c := range cases {
		p := compile(Permission{Resource: c.pattern, Action: "rw"})
		if got := p.match(c.res); got != c.want {
			t.Errorf("pattern %q on %s = %v, want %v", c.pattern, c.res, got, c.want)
		}
	}
}

func TestStateApplyRules(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk, "admin-password")
	ctx := context.Background()
	if err := a.CreateUser(ctx, "alice", "pw-alice"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    Change
		want string // substring of the error; "" = accepted
	}{
		{"duplicate user", Change{Op: OpCreateUser, Username: "alice", Hash: "$2a$04$x"}, "already exist"},
		{"role for unknown user", Change{Op: OpAddRole, Role: "dev", Username: "bob"}, "not found"},
		{"admin role via API", Change{Op: OpAddRole, Role: AdminRole, Username: "alice"}, "not permitted"},
		{"bad role name", Change{Op: OpAddRole, Role: "dev ops", Username: "alice"}, "may only hold"},
		{"role", Change{Op: OpAddRole, Role: "dev", Username: "alice"}, ""},
		{"role twice", Change{Op: OpAddRole, Role: "dev", Username: "alice"}, "already bound"},
		{"permission of unknown role", Change{Op: OpAddPermission, Role: "ops", Resource: "public:*:*", Action: "r"}, "not found"},
		{"bad action", Change{Op: OpAddPermission, Role: "dev", Resource: "public:*:*", Action: "x"}, "not r, w or rw"},
		{"bad resource", Change{Op: OpAddPermission, Role: "dev", Resource: "a b", Action: "r"}, "printable"},
		{"permission", Change{Op: OpAddPermission, Role: "dev", Resource: "public:*:*", Action: "r"}, ""},
		{"permission twice is a no-op", Change{Op: OpAddPermission, Role: "dev", Resource: "public:*:*", Action: "r"}, ""},
		{"delete admin", Change{Op: OpDeleteUser, Username: "nacos"}, "defined by --auth-admin-password"},
		{"delete admin role", Change{Op: OpDeleteRole, Role: AdminRole}, "not permitted to delete"},
		{"unknown op", Change{Op: "dropAll"}, "unknown change"},
	}
	for _, c := range cases {
		err := a.Apply(ctx, c.c)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		var ae *Error
		if err != nil && (!errors.As(err, &ae) || ae.Status != 400) {
			t.Errorf("%s: %v is not a 400 *Error", c.name, err)
		}
	}
	st := a.State()
	if len(st.Permissions) != 1 || !st.IsAdmin("nacos") || st.IsAdmin("alice") {
		t.Fatalf("state %+v", st)
	}
	// Deleting a role drops its bindings and permissions; deleting a user
	// drops its bindings.
	mustApply(t, a, Change{Op: OpDeleteRole, Role: "dev"})
	if st := a.State(); len(st.Permissions) != 0 || st.HasRole("dev") {
		t.Fatalf("after deleteRole: %+v", st)
	}
	mustApply(t, a, Change{Op: OpAddRole, Role: "dev", Username: "alice"})
	mustApply(t, a, Change{Op: OpDeleteUser, Username: "alice"})
	if st := a.State(); st.HasRole("dev") || st.User("alice") != nil {
		t.Fatalf("after deleteUser: %+v", st)
	}
}

func TestDecisions(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk, "admin-password")
	ctx := context.Background()
	for _, u := range []string{"reader", "writer", "none"} {
		if err := a.CreateUser(ctx, u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, a, Change{Op: OpAddRole, Role: "ro", Username: "reader"})
	mustApply(t, a, Change{Op: OpAddPermission, Role: "ro", Resource: "dev:*:*", Action: "r"})
	mustApply(t, a, Change{Op: OpAddRole, Role: "rw", Username: "writer"})
	mustApply(t, a, Change{Op: OpAddPermission, Role: "rw", Resource: "dev:G:naming/orders*", Action: "rw"})
	svc := NamingResource(model.ServiceKey{Namespace: "dev", Group: "G", Name: "orders"})
	other := NamingResource(model.ServiceKey{Namespace: "public", Group: "G", Name: "orders"})
	cases := []struct {
		user     string
		resource Resource
		act      Action
		want     bool
	}{
		{"nacos", other, Write, true},
		{"reader", svc, Read, true},
		{"reader", svc, Write, false},
		{"reader", other, Read, false},
		{"reader", NamingResource(model.ServiceKey{Namespace: "dev:prod", Group: "G", Name: "orders"}), Read, false},
		{"reader", NamespaceResource("dev:prod"), Read, false},
		{"reader", GroupResource("dev", "G"), Read, true},
		{"reader", NamespaceResource("dev"), Read, true},
		{"writer", svc, Write, true},
		{"writer", svc, Read, true},
		{"writer", GroupResource("dev", "G"), Read, false},
		{"none", svc, Read, false},
		{"ghost", svc, Read, false},
	}
	for _, c := range cases {
		if got := a.Allowed(c.user, c.resource, c.act); got != c.want {
			t.Errorf("Allowed(%s, %s, %c) = %v, want %v", c.user, c.resource, c.act, got, c.want)
		}
	}
	ep := a.Epoch()
	mustApply(t, a, Change{Op: OpDeletePermission, Role: "ro", Resource: "dev:*:*", Action: "r"})
	if a.Epoch() == ep || a.Allowed("reader", svc, Read) {
		t.Fatal("a deleted permission still allows, or the epoch did not move")
	}
}

func TestLoginAndTokens(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk, "admin-password")
	ctx := context.Background()
	if err := a.CreateUser(ctx, "alice", "pw-alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login("alice", "wrong", "10.0.0.1"); err != ErrNoIdentity {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := a.Login("nobody", "pw", "10.0.0.1"); err != ErrNoIdentity {
		t.Fatalf("unknown user: %v", err)
	}
	s, err := a.Login("alice", "pw-alice", "10.0.0.1")
	if err != nil || s.Admin || s.TTL != time.Hour {
		t.Fatalf("login: %+v %v", s, err)
	}
	if u, err := a.Authenticate(Credentials{Token: s.Token}, ""); err != nil || u != "alice" {
		t.Fatalf("token: %q %v", u, err)
	}
	if admin, err := a.Login("nacos", "admin-password", "10.0.0.1"); err != nil || !admin.Admin {
		t.Fatalf("admin login: %+v %v", admin, err)
	}
	// Per-request username/password (npm client) also identifies.
	if u, err := a.Authenticate(Credentials{Username: "alice", Password: "pw-alice"}, "10.0.0.2"); err != nil || u != "alice" {
		t.Fatalf("password credentials: %q %v", u, err)
	}

	// The token expires (the cached verification too).
	clk.add(time.Hour - time.Second)
	if _, err := a.Authenticate(Credentials{Token: s.Token}, ""); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clk.add(time.Second)
	if _, err := a.Authenticate(Credentials{Token: s.Token}, ""); err != ErrTokenExpired {
		t.Fatalf("after expiry: %v", err)
	}
	// A fresh token from a second Tokens (cold cache) expires the same way.
	s2, _ := a.Login("alice", "pw-alice", "10.0.0.1")
	cold, _ := NewTokens(testKey, time.Hour, clk.now)
	clk.add(2 * time.Hour)
	if _, _, err := cold.Verify(s2.Token); err != ErrTokenExpired {
		t.Fatalf("cold verify after expiry: %v", err)
	}

	// Deleting the user revokes its tokens; recreating it does not revive them.
	s3, _ := a.Login("alice", "pw-alice", "10.0.0.1")
	mustApply(t, a, Change{Op: OpDeleteUser, Username: "alice"})
	if _, err := a.Authenticate(Credentials{Token: s3.Token}, ""); err != ErrNoIdentity {
		t.Fatalf("token of a deleted user: %v", err)
	}
	clk.add(2 * time.Second)
	if err := a.CreateUser(ctx, "alice", "pw-alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(Credentials{Token: s3.Token}, ""); err != ErrNoIdentity {
		t.Fatalf("old token of a recreated user: %v", err)
	}
	// A changed password invalidates cached credentials.
	if _, err := a.Authenticate(Credentials{Username: "alice", Password: "pw-alice"}, "10.0.0.3"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPassword(ctx, "alice", "new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(Credentials{Username: "alice", Password: "pw-alice"}, "10.0.0.3"); err != ErrNoIdentity {
		t.Fatalf("old password after a change: %v", err)
	}
	if err := a.SetPassword(ctx, "nacos", "x-password"); err == nil {
		t.Fatal("the configured admin's password changed through the API")
	}
}

func TestForgedAndTamperedTokens(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk, "admin-password")
	good, err := a.Login("nacos", "admin-password", "")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good.Token, ".")
	otherKey, _ := NewTokens([]byte("another key of at least 32 bytes!!"), time.Hour, clk.now)
	forged, _ := otherKey.Issue("nacos")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	evil := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"nacos"`, `"admin"`, 1)))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "nacos",
		ExpiresAt: jwt.NewNumericDate(clk.now().Add(time.Hour)), IssuedAt: jwt.NewNumericDate(clk.now())})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.RegisteredClaims{Subject: "nacos",
		ExpiresAt: jwt.NewNumericDate(clk.now().Add(time.Hour)), IssuedAt: jwt.NewNumericDate(clk.now())})
	hs512Tok, _ := hs512.SignedString(testKey)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "nacos",
		IssuedAt: jwt.NewNumericDate(clk.now())}).SignedString(testKey)
	cases := map[string]string{
		"other key":         forged,
		"payload swapped":   parts[0] + "." + evil + "." + parts[2],
		"signature dropped": parts[0] + "." + parts[1] + ".",
		"alg none":          noneTok,
		"alg HS512":         hs512Tok,
		"no exp":            noExp,
		"garbage":           "not-a-token",
		"two parts":         parts[0] + "." + parts[1],
		"huge":              strings.Repeat("a", 5000),
		"flipped sig":       parts[0] + "." + parts[1] + "." + flip(parts[2]),
	}
	for name, tok := range cases {
		if u, err := a.Authenticate(Credentials{Token: tok}, ""); err == nil {
			t.Errorf("%s: accepted as %q", name, u)
		} else if ae := (*Error)(nil); !errors.As(err, &ae) || ae.Status != 403 {
			t.Errorf("%s: %v is not a 403", name, err)
		}
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestThrottle(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk, "admin-password")
	if err := a.CreateUser(context.Background(), "alice", "pw-alice"); err != nil {
		t.Fatal(err)
	}
	// A verified client keeps working while an attacker guesses.
	if _, err := a.Authenticate(Credentials{Username: "alice", Password: "pw-alice"}, "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < DefaultUserBurst; i++ {
		if _, err := a.Login("alice", "guess", "10.6.6.6"); err != ErrNoIdentity {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := a.Login("alice", "pw-alice", "10.0.0.7"); err != nil {
		t.Fatalf("cached credentials throttled: %v", err)
	}
	if _, err := a.Login("alice", "guess", "10.6.6.7"); err != ErrThrottled {
		t.Fatalf("guess past the user burst: %v", err)
	}
	// Per address: many names from one address.
	for i := 0; DefaultUserBurst+i < DefaultAddrBurst; i++ {
		_, _ = a.Login("user"+string(rune('a'+i)), "guess", "10.6.6.6")
	}
	if _, err := a.Login("someone", "guess", "10.6.6.6"); err != ErrThrottled {
		t.Fatalf("guess past the address burst: %v", err)
	}
	clk.add(DefaultUserRefill)
	if _, err := a.Login("alice", "guess", "10.1.1.1"); err != ErrNoIdentity {
		t.Fatalf("after a refill: %v", err)
	}
}

func TestFileStoreDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "auth.json")
	fs, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := HashPassword("pw", bcrypt.MinCost)
	ctx := context.Background()
	for _, c := range []Change{{Op: OpCreateUser, Username: "u", Hash: h, At: 7}, {Op: OpAddRole, Role: "r", Username: "u"},
		{Op: OpAddPermission, Role: "r", Resource: "public:*:*", Action: "rw"}} {
		if _, err := fs.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fs.Apply(ctx, Change{Op: OpAddRole, Role: "r", Username: "nobody"}); err == nil {
		t.Fatal("invalid change accepted")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file %v mode %v", err, fi.Mode())
	}
	re, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	st := re.State()
	if u := st.User("u"); u == nil || u.Created != 7 || len(st.Roles) != 1 || len(st.Permissions) != 1 {
		t.Fatalf("reloaded %+v", st)
	}
	// A damaged file is refused whole.
	if err := os.WriteFile(path, []byte(`{"version":1,"users":[{"username":"x","hash":"plain"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(path); err == nil {
		t.Fatal("a user without a bcrypt hash was loaded")
	}
}

func TestBootstrapGeneratesOnce(t *testing.T) {
	clk := newClock()
	toks, _ := NewTokens(testKey, time.Hour, clk.now)
	path := filepath.Join(t.TempDir(), "auth.json")
	fs, _ := OpenFileStore(path)
	a, err := New(Config{Store: fs, Tokens: toks, BcryptCost: bcrypt.MinCost, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := a.Bootstrap(context.Background(), "nacos")
	if err != nil || len(pw) < 20 || pw == "nacos" {
		t.Fatalf("bootstrap password %q %v", pw, err)
	}
	if s, err := a.Login("nacos", pw, ""); err != nil || !s.Admin {
		t.Fatalf("login with the generated password: %v", err)
	}
	fs2, _ := OpenFileStore(path)
	a2, _ := New(Config{Store: fs2, Tokens: toks, BcryptCost: bcrypt.MinCost, Now: clk.now})
	if again, err := a2.Bootstrap(context.Background(), "nacos"); err != nil || again != "" {
		t.Fatalf("second start generated %q (%v)", again, err)
	}
}

// TestBootstrapAdminChange: OpBootstrapAdmin creates (or resets) the
// admin only while none exists, in one deterministic step.
func TestBootstrapAdminChange(t *testing.T) {
	withUser := &State{Users: []User{{Name: "nacos", Hash: "$2a$04$old", Created: 3}}}
	withAdmin := &State{Users: []User{{Name: "root", Hash: "$2a$04$r", Created: 2}}, Roles: []RoleBinding{{Role: AdminRole, Username: "root"}}}
	c := Change{Op: OpBootstrapAdmin, Username: "nacos", Hash: "$2a$04$new", At: 9}
	for _, tc := range []struct {
		name        string
		in          *State
		c           Change
		wantHash    string
		wantCreated int64
		wantErr     bool
	}{
		{"empty", &State{}, c, "$2a$04$new", 9, false},
		{"user without admin role", withUser, c, "$2a$04$new", 3, false},
		{"an admin exists", withAdmin, c, "", 0, false},
		{"no hash", &State{}, Change{Op: OpBootstrapAdmin, Username: "nacos"}, "", 0, true},
		{"bad name", &State{}, Change{Op: OpBootstrapAdmin, Username: "a b", Hash: "$2a$04$x"}, "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, err := tc.in.Apply(tc.c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if tc.wantHash == "" {
				if next != tc.in {
					t.Fatalf("changed a state that has an admin: %+v", next)
				}
				return
			}
			u := next.User("nacos")
			if u == nil || u.Hash != tc.wantHash || u.Created != tc.wantCreated || !next.IsAdmin("nacos") {
				t.Fatalf("after bootstrap: %+v", next)
			}
			enc, _ := EncodeState(next)
			if _, err := DecodeState(enc); err != nil {
				t.Fatalf("invalid state: %v", err)
			}
		})
	}
}

// staleStore answers State with an empty state, as a node does whose
// replica has not caught up yet.
type staleStore struct{ *memStore }

func (staleStore) State() *State { return &State{} }

// TestBootstrapRace: two nodes bootstrap through one (replicated) store at
// once: one admin is made, and only the node whose change won prints a
// password, which works.
func TestBootstrapRace(t *testing.T) {
	clk := newClock()
	toks, _ := NewTokens(testKey, time.Hour, clk.now)
	shared := &memStore{cur: &State{}}
	var pws []string
	var as []*Authority
	for range 2 {
		a, err := New(Config{Store: staleStore{shared}, Tokens: toks, BcryptCost: bcrypt.MinCost, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		pw, err := a.Bootstrap(context.Background(), "nacos")
		if err != nil {
			t.Fatal(err)
		}
		pws, as = append(pws, pw), append(as, a)
	}
	if pws[0] == "" || pws[1] != "" {
		t.Fatalf("passwords shown: %q", pws)
	}
	if st := shared.State(); len(st.Users) != 1 || !st.IsAdmin("nacos") {
		t.Fatalf("state %+v", st)
	}
	if _, err := as[1].Login("nacos", pws[0], ""); err != nil {
		t.Fatalf("the shown password does not log in: %v", err)
	}
}

func TestTokenKeyTooShort(t *testing.T) {
	if _, err := NewTokens([]byte("short"), time.Hour, nil); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

// BenchmarkVerify is token verification from the cache (every request
// after the first with a token) and cold (the first).
func BenchmarkVerify(b *testing.B) {
	clk := newClock()
	toks, _ := NewTokens(testKey, time.Hour, clk.now)
	tok, _ := toks.Issue("nacos")
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := toks.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := toks.parse(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAllowed is one permission decision for a non-admin user with a
// few patterns.
func BenchmarkAllowed(b *testing.B) {
	clk := newClock()
	a := newAuthority(&testing.T{}, clk, "admin-password")
	ctx := context.Background()
	_ = a.CreateUser(ctx, "u", "pw")
	_ = a.Apply(ctx, Change{Op: OpAddRole, Role: "r", Username: "u"})
	for _, res := range []string{"prod:*:*", "dev:G:naming/a*", "dev:H:naming/*", "stage:*:naming/orders"} {
		_ = a.Apply(ctx, Change{Op: OpAddPermission, Role: "r", Resource: res, Action: "r"})
	}
	res := NamingResource(model.ServiceKey{Namespace: "stage", Group: "G", Name: "orders"})
	b.ReportAllocs()
	for b.Loop() {
		if !a.Allowed("u", res, Read) {
			b.Fatal("denied")
		}
	}
}

// TestBcryptWaitIsBounded: while every bcrypt slot is taken, a password
// check waits at most BcryptWait and is answered ErrBusy (429). A token
// check needs no slot.
func TestBcryptWaitIsBounded(t *testing.T) {
	clk := newClock()
	toks, _ := NewTokens(testKey, time.Hour, clk.now)
	a, err := New(Config{Store: &memStore{cur: &State{}}, Tokens: toks, AdminUser: "nacos", AdminPassword: "admin-password",
		BcryptCost: bcrypt.MinCost, Now: clk.now, BcryptWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := a.Login("nacos", "admin-password", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for range cap(a.bcryptSem) {
		a.bcryptSem <- struct{}{}
	}
	done := make(chan error, 1)
	go func() { _, err := a.Login("nacos", "another-password", "10.0.0.1"); done <- err }()
	select {
	case err := <-done:
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != 429 || err != ErrBusy {
			t.Fatalf("login with every slot taken: %v, want ErrBusy", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a password check waited for a bcrypt slot without bound")
	}
	if who, err := a.Authenticate(Credentials{Token: sess.Token}, "10.0.0.1"); err != nil || who != "nacos" {
		t.Fatalf("token check while bcrypt is saturated: %q %v", who, err)
	}
	for range cap(a.bcryptSem) {
		<-a.bcryptSem
	}
	if _, err := a.Login("nacos", "admin-password", "10.0.0.2"); err != nil {
		t.Fatalf("login once a slot is free: %v", err)
	}
}
