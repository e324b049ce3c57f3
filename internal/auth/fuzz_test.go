package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyToken feeds arbitrary strings to the token decoder: it must
// never panic, and it may accept only a token whose HS256 signature over
// its first two parts is right for the key (so nothing forged passes).
func FuzzVerifyToken(f *testing.F) {
	clk := newClock()
	toks, err := NewTokens(testKey, time.Hour, clk.now)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := toks.Issue("nacos")
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJuYWNvcyIsImV4cCI6MH0.")
	f.Add(good[:len(good)-2])
	f.Fuzz(func(t *testing.T, tok string) {
		fresh, _ := NewTokens(testKey, time.Hour, clk.now) // a cold cache every time
		sub, _, err := fresh.Verify(tok)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 || sub == "" {
			t.Fatalf("accepted %q (subject %q)", tok, sub)
		}
		m := hmac.New(sha256.New, testKey)
		m.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
			t.Fatalf("accepted %q without a valid signature", tok)
		}
	})
}

// FuzzDecodeState feeds arbitrary documents to the store decoder: it never
// panics, and what it accepts is normalized (sorted, no duplicates, every
// binding to a known user) and survives a round trip unchanged.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"version":1,"users":[{"username":"nacos","hash":"$2a$10$abcdefghijklmnopqrstuu","created":1}],` +
		`"roles":[{"role":"ROLE_ADMIN","username":"nacos"}],"permissions":[{"role":"r","resource":"public:*:*","action":"rw"}]}`))
	f.Add([]byte(`{"version":1,"users":null,"roles":null,"permissions":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"users":[{"username":"a","hash":"$2"},{"username":"a","hash":"$2"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeState(data)
		if err != nil {
			return
		}
		for i := 1; i < len(st.Users); i++ {
			if st.Users[i-1].Name >= st.Users[i].Name {
				t.Fatalf("users not sorted and unique: %+v", st.Users)
			}
		}
		for _, b := range st.Roles {
			if st.User(b.Username) == nil {
				t.Fatalf("binding to unknown user %q", b.Username)
			}
		}
		enc, err := EncodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, _ := EncodeState(again)
		if string(enc) != string(enc2) {
			t.Fatalf("round trip changed the state:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzApplyChange applies arbitrary log entries to a small state: Apply
// never panics, never changes its input, and every state it returns is
// valid (Normalize accepts it).
func FuzzApplyChange(f *testing.F) {
	base := &State{Users: []User{{Name: "nacos", Hash: "$2a$04$x", Created: 1}, {Name: "u", Hash: "$2a$04$y"}},
		Roles:       []RoleBinding{{Role: AdminRole, Username: "nacos"}, {Role: "r", Username: "u"}},
		Permissions: []Permission{{Role: "r", Resource: "public:*:*", Action: "r"}}}
	for _, c := range []Change{{Op: OpCreateUser, Username: "x", Hash: "$2a$04$z"}, {Op: OpDeleteUser, Username: "u"},
		{Op: OpAddRole, Role: "r2", Username: "u"}, {Op: OpDeleteRole, Role: "r"}, {Op: OpAddPermission, Role: "r", Resource: "a:*:*", Action: "rw"},
		{Op: OpDeletePermission, Role: "r", Resource: "public:*:*", Action: "r"}, {Op: OpGrantAdmin, Username: "u"}, {Op: OpSetPassword, Username: "u", Hash: "$2b$"},
		{Op: OpBootstrapAdmin, Username: "u", Hash: "$2a$04$w", At: 5}} {
		b, _ := EncodeChange(c)
		f.Add(b)
	}
	before, _ := EncodeState(base)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeChange(data)
		if err != nil {
			return
		}
		next, err := base.Apply(c)
		if now, _ := EncodeState(base); string(now) != string(before) {
			t.Fatal("Apply changed its input")
		}
		if err != nil {
			return
		}
		enc, _ := EncodeState(next)
		if _, err := DecodeState(enc); err != nil {
			t.Fatalf("%+v produced an invalid state: %v\n%s", c, err, enc)
		}
	})
}
