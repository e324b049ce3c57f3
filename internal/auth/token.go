package auth

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinKeyLen is the shortest token key accepted (HS256 wants at least the
// hash size, RFC 7518 3.2).
const MinKeyLen = 32

// maxTokenLen bounds what is parsed as a token; real ones are ~150 bytes.
const maxTokenLen = 4096

// tokenCacheMax bounds the verified-token cache.
const tokenCacheMax = 16384

// Nacos's messages for refused identities (NacosSignatureAlgorithm,
// AbstractAuthenticationManager); clients and operators search for them.
var (
	ErrNoIdentity   = &Error{Status: http.StatusForbidden, Msg: "user not found!"}
	ErrTokenInvalid = &Error{Status: http.StatusForbidden, Msg: "token invalid!"}
	ErrTokenExpired = &Error{Status: http.StatusForbidden, Msg: "token expired!"}
	ErrBadSignature = &Error{Status: http.StatusForbidden, Msg: "Invalid signature"}
	ErrForbidden    = &Error{Status: http.StatusForbidden, Msg: "authorization failed!"}
)

// Tokens issues and verifies access tokens.
type Tokens struct {
	key    []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]verified
}

type verified struct {
	sub      string
	iat, exp int64
}

// NewTokens returns a token issuer with key (at least MinKeyLen bytes) whose
// tokens live ttl. now is the clock (nil: time.Now).
func NewTokens(key []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(key) < MinKeyLen {
		return nil, errors.New("auth: the token key must be at least 32 bytes")
	}
	if ttl <= 0 {
		return nil, errors.New("auth: the token TTL must be positive")
	}
	if now == nil {
		now = time.Now
	}
	t := &Tokens{key: append([]byte(nil), key...), ttl: ttl, now: now, cache: make(map[[sha256.Size]byte]verified)}
	// iat is not checked against the clock: a node whose clock is slightly
	// behind the issuer's would refuse fresh tokens.
	t.parser = jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now))
	return t, nil
}

// TTL is the lifetime of new tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a token for user.
func (t *Tokens) Issue(user string) (string, error) {
	now := t.now()
	claims := jwt.RegisteredClaims{Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl))}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.key)
}

// Verify checks token's signature and expiry and returns its subject and
// issue time (Unix seconds). Errors are ErrTokenInvalid, ErrBadSignature or
// ErrTokenExpired.
func (t *Tokens) Verify(token string) (sub string, iat int64, err error) {
	if token == "" {
		return "", 0, ErrNoIdentity
	}
	if len(token) > maxTokenLen {
		return "", 0, ErrTokenInvalid
	}
	h := sha256.Sum256([]byte(token))
	now := t.now().Unix()
	t.mu.RLock()
	v, ok := t.cache[h]
	t.mu.RUnlock()
	if ok {
		// jwt treats exp as the first instant the token is invalid.
		if now >= v.exp {
			return "", 0, ErrTokenExpired
		}
		return v.sub, v.iat, nil
	}
	v, err = t.parse(token)
	if err != nil {
		return "", 0, err
	}
	t.mu.Lock()
	if len(t.cache) >= tokenCacheMax {
		t.evictLocked(now)
	}
	t.cache[h] = v
	t.mu.Unlock()
	return v.sub, v.iat, nil
}

// evictLocked drops expired entries, and everything if that is not enough
// (the cache is only a shortcut).
func (t *Tokens) evictLocked(now int64) {
	for k, v := range t.cache {
		if now >= v.exp {
			delete(t.cache, k)
		}
	}
	if len(t.cache) >= tokenCacheMax/2 {
		clear(t.cache)
	}
}

func (t *Tokens) parse(token string) (verified, error) {
	var claims jwt.RegisteredClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.key, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return verified{}, ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return verified{}, ErrBadSignature
	default:
		return verified{}, ErrTokenInvalid
	}
	if claims.Subject == "" || claims.IssuedAt == nil || claims.ExpiresAt == nil {
		return verified{}, ErrTokenInvalid
	}
	return verified{sub: claims.Subject, iat: claims.IssuedAt.Unix(), exp: claims.ExpiresAt.Unix()}, nil
}
