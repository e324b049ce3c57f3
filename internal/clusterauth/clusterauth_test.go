package clusterauth

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/api/clusterpb"
	"google.golang.org/protobuf/proto"
)

var (
	secretA = []byte("k7Qp2vX9mZr4Lw8TnB3yHc6JdF1sGa5E") // 32 bytes, test only
	secretB = []byte("Yu3Nf8Rk1Wq6Zp9Dc4Vm7Lx2Ts5Hb0Gj")
)

// fakeClock is a settable wall clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func mustNew(t testing.TB, secret []byte, self string, opts ...Option) *Signer {
	t.Helper()
	s, err := New(secret, self, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestVerify(t *testing.T) {
	clk := newClock()
	sender := mustNew(t, secretA, "10.0.0.1:8848", WithClock(clk.Now))
	body := []byte("hello cluster")

	tests := []struct {
		name    string
		env     func() *clusterpb.Envelope // built fresh per case
		advance time.Duration              // receiver clock offset from sender's
		secret  []byte                     // receiver's secret (secretA if nil)
		want    error
	}{
		{name: "good", env: func() *clusterpb.Envelope { return sender.Sign("10.0.0.2:8848", body) }},
		{name: "empty body", env: func() *clusterpb.Envelope { return sender.Sign("10.0.0.2:8848", nil) }},
		{name: "wrong secret", env: func() *clusterpb.Envelope { return sender.Sign("10.0.0.2:8848", body) }, secret: secretB, want: ErrBadMAC},
		{name: "tampered body", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", bytes.Clone(body))
			e.Body[0] ^= 1
			return e
		}, want: ErrBadMAC},
		{name: "appended body", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.Body = append(bytes.Clone(e.Body), 0)
			return e
		}, want: ErrBadMAC},
		{name: "tampered from", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.From = "10.0.0.9:8848"
			return e
		}, want: ErrBadMAC},
		{name: "tampered time", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.UnixMillis++
			return e
		}, want: ErrBadMAC},
		{name: "tampered nonce", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.Nonce[3] ^= 0x80
			return e
		}, want: ErrBadMAC},
		{name: "tampered mac", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.Mac[31] ^= 1
			return e
		}, want: ErrBadMAC},
		{name: "field boundary shift", env: func() *clusterpb.Envelope {
			// Moving a byte from from into body must not keep the MAC valid.
			e := sender.Sign("10.0.0.2:8848", []byte("4"+"x"))
			e.From, e.Body = e.From+"x", []byte("4")
			return e
		}, want: ErrBadMAC},
		{name: "stale", env: func() *clusterpb.Envelope { return sender.Sign("10.0.0.2:8848", body) }, advance: 31 * time.Second, want: ErrStale},
		{name: "at skew edge", env: func() *clusterpb.Envelope { return sender.Sign("10.0.0.2:8848", body) }, advance: 30 * time.Second},
		{name: "future", env: func() *clusterpb.Envelope { return sender.Sign("10.0.0.2:8848", body) }, advance: -31 * time.Second, want: ErrStale},
		{name: "nil", env: func() *clusterpb.Envelope { return nil }, want: ErrMalformed},
		{name: "empty", env: func() *clusterpb.Envelope { return &clusterpb.Envelope{} }, want: ErrMalformed},
		{name: "no mac", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.Mac = nil
			return e
		}, want: ErrMalformed},
		{name: "short nonce", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.Nonce = e.Nonce[:8]
			return e
		}, want: ErrMalformed},
		{name: "empty from", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.From = ""
			return e
		}, want: ErrMalformed},
		{name: "huge from", env: func() *clusterpb.Envelope {
			e := sender.Sign("10.0.0.2:8848", body)
			e.From = strings.Repeat("a", MaxFromSize+1)
			return e
		}, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			if secret == nil {
				secret = secretA
			}
			rclk := &fakeClock{t: clk.Now().Add(tt.advance)}
			recv := mustNew(t, secret, "10.0.0.2:8848", WithClock(rclk.Now))
			env := tt.env()
			from, got, err := recv.Verify(env)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify err = %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				if from != "" || got != nil {
					t.Fatalf("failed Verify leaked from=%q body=%q", from, got)
				}
				return
			}
			if from != "10.0.0.1:8848" || !bytes.Equal(got, env.Body) {
				t.Fatalf("Verify = %q, %q", from, got)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	clk := newClock()
	sender := mustNew(t, secretA, "a:1", WithClock(clk.Now))
	recv := mustNew(t, secretA, "b:1", WithClock(clk.Now))
	env := sender.Sign("b:1", []byte("x"))
	if _, _, err := recv.Verify(env); err != nil {
		t.Fatal(err)
	}
	// A byte-identical copy (as an attacker would resend it).
	b, _ := proto.Marshal(env)
	var cp clusterpb.Envelope
	if err := proto.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recv.Verify(&cp); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: err = %v, want ErrReplay", err)
	}
	// Still refused just inside the window; stale just outside it.
	clk.Add(30 * time.Second)
	if _, _, err := recv.Verify(&cp); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay at edge: err = %v, want ErrReplay", err)
	}
	clk.Add(time.Millisecond)
	if _, _, err := recv.Verify(&cp); !errors.Is(err, ErrStale) {
		t.Fatalf("replay after window: err = %v, want ErrStale", err)
	}
}

func TestSelfReflection(t *testing.T) {
	s := mustNew(t, secretA, "a:1")
	if _, _, err := s.Verify(s.Sign("a:1", []byte("x"))); !errors.Is(err, ErrSelf) {
		t.Fatalf("err = %v, want ErrSelf", err)
	}
}

func TestReplayCacheEvictsAndCaps(t *testing.T) {
	clk := newClock()
	sender := mustNew(t, secretA, "a:1", WithClock(clk.Now))
	recv := mustNew(t, secretA, "b:1", WithClock(clk.Now), WithSkew(time.Second), WithMaxNonces(100))
	for i := range 100 {
		if _, _, err := recv.Verify(sender.Sign("b:1", []byte{byte(i)})); err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
	}
	if _, _, err := recv.Verify(sender.Sign("b:1", nil)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("over cap: err = %v, want ErrReplayCacheFull", err)
	}
	// Once the window passes, old nonces are evicted and traffic flows again.
	clk.Add(1001 * time.Millisecond)
	for i := range 3000 {
		if i%50 == 0 {
			clk.Add(time.Second + time.Millisecond)
		}
		if _, _, err := recv.Verify(sender.Sign("b:1", []byte{byte(i)})); err != nil {
			t.Fatalf("msg %d after window: %v", i, err)
		}
	}
	if n := recv.cache.len(); n > 100 {
		t.Fatalf("cache holds %d nonces, cap 100", n)
	}
	if len(recv.cache.fifo)-recv.cache.head > 100 {
		t.Fatalf("fifo holds %d entries", len(recv.cache.fifo)-recv.cache.head)
	}
}

func TestInsecure(t *testing.T) {
	a, b := Insecure("a:1"), Insecure("b:1")
	env := a.Sign("b:1", []byte("x"))
	if len(env.Mac) != 0 {
		t.Fatal("insecure signer set a mac")
	}
	if !a.IsInsecure() {
		t.Fatal("IsInsecure = false")
	}
	from, body, err := b.Verify(env)
	if err != nil || from != "a:1" || string(body) != "x" {
		t.Fatalf("Verify = %q %q %v", from, body, err)
	}
	if _, _, err := b.Verify(&clusterpb.Envelope{Body: []byte("x")}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty from: err = %v", err)
	}
	if _, _, err := b.Verify(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nil: err = %v", err)
	}
	// A secure receiver refuses insecure traffic.
	if _, _, err := mustNew(t, secretA, "b:1").Verify(env); !errors.Is(err, ErrMalformed) {
		t.Fatalf("secure receiver: err = %v", err)
	}
}

func TestCheckSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"random 32", string(secretA), true},
		{"random base64 64", "pR8sV1yC4fH7kN0qT3wZ6bE9gJ2mP5sV8yB1eH4kN7qT0wZ3cF6iL9oR2uX5aD8g", true},
		{"empty", "", false},
		{"short", "k7Qp2vX9mZr4Lw8TnB3yHc6JdF1sGa5", false},
		{"all same", strings.Repeat("a", 48), false},
		{"nacos default key", "SecretKey012345678901234567890123456789", false},
		{"nacos default key long", "SecretKey012345678901234567890123456789012345678901234567890123456789", false},
		{"changeme", "changeme-changeme-changeme-changeme", false},
		{"ChangeMe mixed case", "ChangeMe_k7Qp2vX9mZr4Lw8TnB3yHc6JdF1s", false},
		{"few distinct", "abababababababababababababababababab", false},
		{"counting", "0123456789:;<=>?@ABCDEFGHIJKLMNOPQR", false},
		{"repeated pattern", strings.Repeat("Xy7#Qz1!", 5), false},
		{"bytes 0..31", string(func() []byte {
			b := make([]byte, 32)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSecret([]byte(tt.secret))
			if (err == nil) != tt.ok {
				t.Fatalf("CheckSecret(%q) = %v, ok want %v", tt.secret, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("err %v is not ErrWeakSecret", err)
			}
			if _, err2 := New([]byte(tt.secret), "a:1"); (err2 == nil) != tt.ok {
				t.Fatalf("New = %v", err2)
			}
		})
	}
	if _, err := New(secretA, ""); err == nil {
		t.Fatal("New accepted an empty self")
	}
}

func TestMisdirectedRejected(t *testing.T) {
	sender := mustNew(t, secretA, "a:1")
	env := sender.Sign("c:1", []byte("x"))
	if _, _, err := mustNew(t, secretA, "b:1").Verify(env); !errors.Is(err, ErrMisdirected) || Reason(err) != "misdirected" {
		t.Fatalf("an envelope for c:1 verified at b:1: %v", err)
	}
	if _, _, err := mustNew(t, secretA, "c:1").Verify(env); err != nil {
		t.Fatalf("addressee rejected it: %v", err)
	}
}

func TestNewCopiesSecret(t *testing.T) {
	secret := bytes.Clone(secretA)
	s := mustNew(t, secret, "a:1")
	env := s.Sign("b:1", []byte("x"))
	for i := range secret {
		secret[i] = 0
	}
	if _, _, err := mustNew(t, secretA, "b:1").Verify(env); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mustNew(t, secretA, "b:1").Verify(s.Sign("b:1", []byte("y"))); err != nil {
		t.Fatalf("signer changed after caller reused the secret buffer: %v", err)
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil: "ok", ErrBadMAC: "bad_mac", ErrStale: "stale", ErrReplay: "replay",
		ErrReplayCacheFull: "replay_cache_full", ErrSelf: "self", ErrMalformed: "malformed",
		errors.New("x"): "other",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestConcurrentVerify(t *testing.T) {
	sender := mustNew(t, secretA, "a:1")
	recv := mustNew(t, secretA, "b:1")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				env := sender.Sign("b:1", []byte("x"))
				if _, _, err := recv.Verify(env); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := recv.Verify(env); !errors.Is(err, ErrReplay) {
					t.Errorf("replay: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzVerify(f *testing.F) {
	clk := newClock()
	sender := mustNew(f, secretA, "a:1", WithClock(clk.Now))
	// Deterministic, so that fuzz workers (separate processes) agree on it.
	good := &clusterpb.Envelope{From: "a:1", To: "b:1", UnixMillis: clk.Now().UnixMilli(), Nonce: bytes.Repeat([]byte{7}, NonceSize), Body: []byte("body")}
	good.Mac = sender.mac(nil, good.From, good.To, good.UnixMillis, good.Nonce, good.Body)
	f.Add(good.From, good.UnixMillis, good.Nonce, good.Body, good.Mac)
	f.Add("", int64(0), []byte(nil), []byte(nil), []byte(nil))
	f.Add("b:1", int64(-1<<63), make([]byte, 16), []byte("x"), make([]byte, 32))
	f.Add("a:1", int64(1<<63-1), make([]byte, 16), []byte("x"), make([]byte, 32))
	f.Fuzz(func(t *testing.T, from string, ms int64, nonce, body, mac []byte) {
		recv := mustNew(t, secretA, "b:1", WithClock(clk.Now))
		env := &clusterpb.Envelope{From: from, To: "b:1", UnixMillis: ms, Nonce: nonce, Body: body, Mac: mac}
		gotFrom, gotBody, err := recv.Verify(env)
		if err == nil {
			// Only the genuine envelope may pass.
			if from != good.From || ms != good.UnixMillis || !bytes.Equal(nonce, good.Nonce) ||
				!bytes.Equal(body, good.Body) || !bytes.Equal(mac, good.Mac) {
				t.Fatalf("forged envelope verified: %v", env)
			}
			if gotFrom != from || !bytes.Equal(gotBody, body) {
				t.Fatal("Verify returned different contents")
			}
		}
		_, _, _ = Insecure("b:1").Verify(env)
	})
}

func BenchmarkSignVerify(b *testing.B) {
	sender := mustNew(b, secretA, "a:1")
	recv := mustNew(b, secretA, "b:1", WithMaxNonces(1<<30))
	body := bytes.Repeat([]byte("x"), 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := recv.Verify(sender.Sign("b:1", body)); err != nil {
			b.Fatal(err)
		}
	}
}
