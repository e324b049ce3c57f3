package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DefaultBcryptCost is the work factor of new hashes (Nacos uses 10 too).
const DefaultBcryptCost = bcrypt.DefaultCost

// HashPassword returns the bcrypt hash of password at cost.
func HashPassword(password string, cost int) (string, error) {
	if err := ValidPassword("password", password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return string(h), err
}

// GeneratePassword returns a random password of 24 URL-safe characters.
func GeneratePassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// credTTL is how long verified credentials skip bcrypt.
const credTTL = 5 * time.Minute

// credCacheMax bounds the verified-credentials cache.
const credCacheMax = 4096

// credCache remembers credentials that passed bcrypt, so that clients that
// send username and password with every request cost an HMAC, not a bcrypt
// check. Keys are HMAC-SHA256(random per-process key, name NUL password):
// no password is kept, and the key never leaves the process. An entry is
// valid only while the user's hash is the one it was checked against.
type credCache struct {
	key []byte
	mu  sync.Mutex
	m   map[[sha256.Size]byte]credEntry
}

type credEntry struct {
	hash  string
	until time.Time
}

func newCredCache() *credCache {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &credCache{key: k, m: make(map[[sha256.Size]byte]credEntry)}
}

func (c *credCache) id(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// ok reports whether (user, password) was verified against hash recently.
func (c *credCache) ok(id [sha256.Size]byte, hash string, now time.Time) bool {
	c.mu.Lock()
	e, found := c.m[id]
	c.mu.Unlock()
	return found && e.hash == hash && now.Before(e.until)
}

func (c *credCache) put(id [sha256.Size]byte, hash string, now time.Time) {
	c.mu.Lock()
	if len(c.m) >= credCacheMax {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= credCacheMax/2 {
			clear(c.m)
		}
	}
	c.m[id] = credEntry{hash: hash, until: now.Add(credTTL)}
	c.mu.Unlock()
}

// dummyHash is checked for unknown users, so that a wrong name costs as
// much time as a wrong password.
// It is made on first use (bcrypt takes tens of milliseconds).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("distro-dummy-password"), DefaultBcryptCost)
	return h
})
