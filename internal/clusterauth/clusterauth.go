package clusterauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
)

// Sizes of the envelope's fixed-length fields.
const (
	// NonceSize is the length of Envelope.nonce.
	NonceSize = 16
	// MACSize is the length of Envelope.mac (HMAC-SHA256).
	MACSize = sha256.Size
	// MinSecretSize is the shortest cluster secret New accepts.
	MinSecretSize = 32
	// MaxFromSize bounds Envelope.from (a member identity ip:port or host:port).
	MaxFromSize = 255
)

// Defaults for the Options.
const (
	// DefaultSkew is the largest accepted difference between the sender's
	// clock and ours, in either direction. It is also how long nonces are
	// remembered.
	DefaultSkew = 30 * time.Second
	// DefaultMaxNonces caps the replay cache. At the default skew it
	// allows a sustained ~4,000 verified messages per second (in the 60 s
	// worst-case residence of a nonce) before Verify starts refusing
	// with ErrReplayCacheFull.
	DefaultMaxNonces = 1 << 18
)

// domain separates this MAC from any other use of the same secret.
const domain = "distro.cluster.v1/envelope\x00"

// Errors returned by Verify and New. Verify's errors are never wrapped with
// envelope contents, so they are safe to log and to count by Reason.
var (
	// ErrMalformed reports an envelope that is structurally invalid: nil,
	// empty or oversized from, or a nonce or mac of the wrong length.
	ErrMalformed = errors.New("clusterauth: malformed envelope")
	// ErrBadMAC reports a MAC that does not match: wrong secret, or the
	// envelope was altered in transit.
	ErrBadMAC = errors.New("clusterauth: bad mac")
	// ErrStale reports a timestamp further than the skew from our clock,
	// in the past or in the future.
	ErrStale = errors.New("clusterauth: stale or future timestamp")
	// ErrReplay reports a nonce already seen within the skew window.
	ErrReplay = errors.New("clusterauth: replayed nonce")
	// ErrReplayCacheFull reports that the replay cache is at its cap; the
	// envelope is refused rather than let the cache grow without bound.
	ErrReplayCacheFull = errors.New("clusterauth: replay cache full")
	// ErrMisdirected reports an authentic envelope addressed to another
	// member: a capture replayed to the wrong node.
	ErrMisdirected = errors.New("clusterauth: envelope addressed to another member")
	// ErrSelf reports an authentic envelope that claims to come from this
	// node itself: a reflected message. Members never message themselves.
	ErrSelf = errors.New("clusterauth: envelope from self")
	// ErrWeakSecret reports a cluster secret that is too short or a known
	// sample value.
	ErrWeakSecret = errors.New("clusterauth: weak cluster secret")
)

// Reason returns a short, stable, label-safe name for an error returned by
// Verify ("bad_mac", "stale", "replay", ...), for logs and metrics.
// Unknown errors map to "other".
func Reason(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrBadMAC):
		return "bad_mac"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrReplayCacheFull):
		return "replay_cache_full"
	case errors.Is(err, ErrMisdirected):
		return "misdirected"
	case errors.Is(err, ErrSelf):
		return "self"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	default:
		return "other"
	}
}

// Option adjusts a Signer built by New or Insecure.
type Option func(*Signer)

// WithSkew sets the accepted clock skew (and nonce memory); d <= 0 keeps
// DefaultSkew.
func WithSkew(d time.Duration) Option {
	return func(s *Signer) {
		if d > 0 {
			s.skew = d
		}
	}
}

// WithClock sets the wall clock used for signing and freshness checks
// (time.Now by default). Tests use it to simulate skew.
func WithClock(now func() time.Time) Option {
	return func(s *Signer) {
		if now != nil {
			s.now = now
		}
	}
}

// WithMaxNonces caps the replay cache; n <= 0 keeps DefaultMaxNonces.
func WithMaxNonces(n int) Option {
	return func(s *Signer) {
		if n > 0 {
			s.cache.max = n
		}
	}
}

// Signer signs outgoing envelopes and verifies incoming ones for one
// member. A single Signer should serve both the client and the server side
// of a node, so that one replay cache sees every nonce the node accepts.
// It is safe for concurrent use.
type Signer struct {
	self     string
	insecure bool
	skew     time.Duration
	now      func() time.Time
	macs     sync.Pool // of hash.Hash keyed with the secret
	cache    replayCache
}

// New returns a Signer for member self using the shared cluster secret.
// The secret must pass CheckSecret. The Signer keeps a copy of it.
func New(secret []byte, self string, opts ...Option) (*Signer, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, err
	}
	if self == "" || len(self) > MaxFromSize {
		return nil, fmt.Errorf("clusterauth: self identity must be 1..%d bytes", MaxFromSize)
	}
	key := bytes.Clone(secret)
	s := newSigner(self, opts)
	s.macs.New = func() any { return hmac.New(sha256.New, key) }
	return s, nil
}

// Insecure returns a Signer for --insecure-cluster: it sets from,
// unix_millis and nonce but no mac, and Verify checks only that from is
// non-empty. Never use it unless the operator explicitly asked for it.
func Insecure(self string, opts ...Option) *Signer {
	s := newSigner(self, opts)
	s.insecure = true
	return s
}

func newSigner(self string, opts []Option) *Signer {
	s := &Signer{self: self, skew: DefaultSkew, now: time.Now}
	s.cache.max = DefaultMaxNonces
	for _, o := range opts {
		o(s)
	}
	s.cache.seen = make(map[[NonceSize]byte]struct{})
	return s
}

// Self returns the member identity this Signer signs as.
func (s *Signer) Self() string { return s.self }

// IsInsecure reports whether s was built by Insecure.
func (s *Signer) IsInsecure() bool { return s.insecure }

// Skew returns the accepted clock skew.
func (s *Signer) Skew() time.Duration { return s.skew }

// Sign wraps body in an Envelope from this member to member to, stamped
// with the current time and a fresh random nonce, and MACs it. The
// envelope references body; do not modify body afterwards.
func (s *Signer) Sign(to string, body []byte) *clusterpb.Envelope {
	env := &clusterpb.Envelope{
		From:       s.self,
		To:         to,
		UnixMillis: s.now().UnixMilli(),
		Nonce:      make([]byte, NonceSize),
		Body:       body,
	}
	_, _ = rand.Read(env.Nonce) // crypto/rand.Read never fails (it crashes the program instead)
	if !s.insecure {
		env.Mac = s.mac(make([]byte, 0, MACSize), env.From, env.To, env.UnixMillis, env.Nonce, env.Body)
	}
	return env
}

// Verify authenticates env and returns its sender and body. The checks run
// in this order: structure (ErrMalformed), MAC in constant time
// (ErrBadMAC), reflection (ErrSelf), timestamp within the skew (ErrStale),
// nonce not seen before (ErrReplay, ErrReplayCacheFull). Nothing from env
// is used before the MAC verifies. The returned body aliases env.Body.
func (s *Signer) Verify(env *clusterpb.Envelope) (from string, body []byte, err error) {
	if env == nil {
		return "", nil, ErrMalformed
	}
	if s.insecure {
		if env.GetFrom() == "" {
			return "", nil, ErrMalformed
		}
		return env.GetFrom(), env.GetBody(), nil
	}
	if len(env.From) == 0 || len(env.From) > MaxFromSize ||
		len(env.Nonce) != NonceSize || len(env.Mac) != MACSize {
		return "", nil, ErrMalformed
	}
	var buf [MACSize]byte
	want := s.mac(buf[:0], env.From, env.To, env.UnixMillis, env.Nonce, env.Body)
	if !hmac.Equal(want, env.Mac) {
		return "", nil, ErrBadMAC
	}
	// From here on the envelope is authentic: it was made by a holder of
	// the secret. What remains is whether it is fresh and meant for us.
	if env.From == s.self {
		return "", nil, ErrSelf
	}
	if env.To != s.self {
		return "", nil, ErrMisdirected
	}
	now := s.now().UnixMilli()
	skew := s.skew.Milliseconds()
	if env.UnixMillis < now-skew || env.UnixMillis > now+skew {
		return "", nil, ErrStale
	}
	if err := s.cache.add([NonceSize]byte(env.Nonce), env.UnixMillis+skew, now); err != nil {
		return "", nil, err
	}
	return env.From, env.Body, nil
}

// mac appends HMAC-SHA256(secret, domain | len(from) from | len(to) to | unix_millis |
// len(nonce) nonce | len(body) body) to dst. Lengths and unix_millis are
// 8-byte big-endian, so no two field tuples share an encoding.
func (s *Signer) mac(dst []byte, from, to string, unixMillis int64, nonce, body []byte) []byte {
	h := s.macs.Get().(hash.Hash)
	defer func() {
		h.Reset()
		s.macs.Put(h)
	}()
	var n [8]byte
	_, _ = h.Write([]byte(domain))
	binary.BigEndian.PutUint64(n[:], uint64(len(from)))
	_, _ = h.Write(n[:])
	_, _ = h.Write([]byte(from))
	binary.BigEndian.PutUint64(n[:], uint64(len(to)))
	_, _ = h.Write(n[:])
	_, _ = h.Write([]byte(to))
	binary.BigEndian.PutUint64(n[:], uint64(unixMillis))
	_, _ = h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(nonce)))
	_, _ = h.Write(n[:])
	_, _ = h.Write(nonce)
	binary.BigEndian.PutUint64(n[:], uint64(len(body)))
	_, _ = h.Write(n[:])
	_, _ = h.Write(body)
	return h.Sum(dst)
}

// CheckSecret reports whether secret is acceptable as a cluster secret:
// at least MinSecretSize bytes, not a known sample value (the Nacos default
// token key, "changeme"-style placeholders), and not trivially patterned
// (fewer than 8 distinct byte values, a counting sequence, or a short
// pattern repeated). Operators should generate one with e.g.
// `openssl rand -base64 48`.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretSize {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrWeakSecret, len(secret), MinSecretSize)
	}
	lower := strings.ToLower(string(secret))
	for _, p := range samplePrefixes {
		if strings.HasPrefix(lower, p) {
			return fmt.Errorf("%w: a published sample value (%q...)", ErrWeakSecret, p)
		}
	}
	var distinct [256]bool
	n := 0
	for _, b := range secret {
		if !distinct[b] {
			distinct[b] = true
			n++
		}
	}
	if n < 8 {
		return fmt.Errorf("%w: only %d distinct byte values", ErrWeakSecret, n)
	}
	if isSequence(secret) {
		return fmt.Errorf("%w: a counting sequence", ErrWeakSecret)
	}
	if p := shortPeriod(secret); p > 0 {
		return fmt.Errorf("%w: a %d-byte pattern repeated", ErrWeakSecret, p)
	}
	return nil
}

// samplePrefixes are lower-cased starts of secrets copied from
// documentation and defaults: Nacos' default token.secret.key
// ("SecretKey012345678901234567890123456789..."), its sample server
// identity, and common placeholders.
var samplePrefixes = []string{
	"secretkey0123456789",
	"changeme",
	"change-me",
	"change_me",
	"changeit",
	"replaceme",
	"replace-me",
	"replace_me",
	"your-secret",
	"your_secret",
	"yoursecret",
	"serveridentity",
	"0123456789",
	"abcdefghij",
	"password",
	"test-secret",
}

// isSequence reports byte strings that count up or down by one throughout
// (e.g. "0123...", "abcd...", 0x00 0x01 ...), possibly wrapping.
func isSequence(b []byte) bool {
	up, down := true, true
	for i := 1; i < len(b); i++ {
		if b[i] != b[i-1]+1 {
			up = false
		}
		if b[i] != b[i-1]-1 {
			down = false
		}
	}
	return up || down
}

// shortPeriod returns the smallest p <= len(b)/4 such that b repeats with
// period p (b[i] == b[i-p] throughout), or 0 if there is none.
func shortPeriod(b []byte) int {
	for p := 1; p <= len(b)/4; p++ {
		if bytes.Equal(b[p:], b[:len(b)-p]) {
			return p
		}
	}
	return 0
}

// replayCache remembers accepted nonces until they could no longer pass the
// freshness check. Entries sit in a FIFO in arrival order next to a map for
// lookup; eviction pops the FIFO head while it has expired. Expiries are not
// strictly ordered by arrival, but every entry expires within twice the skew
// of its arrival, so no entry outlives that by more than the same bound.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[[NonceSize]byte]struct{}
	fifo []nonceEntry
	head int
}

type nonceEntry struct {
	nonce  [NonceSize]byte
	expire int64 // unix millis after which the envelope is stale anyway
}

// add records nonce, remembered until expire, or reports ErrReplay if it is
// already known and ErrReplayCacheFull if the cache is at its cap.
func (c *replayCache) add(nonce [NonceSize]byte, expire, now int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.fifo) && c.fifo[c.head].expire < now {
		delete(c.seen, c.fifo[c.head].nonce)
		c.fifo[c.head] = nonceEntry{}
		c.head++
	}
	if c.head == len(c.fifo) {
		c.fifo, c.head = c.fifo[:0], 0
	} else if c.head > 1024 && c.head > len(c.fifo)/2 {
		n := copy(c.fifo, c.fifo[c.head:])
		c.fifo, c.head = c.fifo[:n], 0
	}
	if _, ok := c.seen[nonce]; ok {
		return ErrReplay
	}
	if len(c.seen) >= c.max {
		return ErrReplayCacheFull
	}
	c.seen[nonce] = struct{}{}
	c.fifo = append(c.fifo, nonceEntry{nonce: nonce, expire: expire})
	return nil
}

// len returns the number of remembered nonces.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
