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
