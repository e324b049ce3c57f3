package udppush

import (
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// fakeGuard allows the users in allowed; bump changes the epoch.
type fakeGuard struct {
	mu      sync.Mutex
	epoch   uint64
	allowed map[string]bool
	checks  int
}

func (g *fakeGuard) Epoch() uint64 { g.mu.Lock(); defer g.mu.Unlock(); return g.epoch }
func (g *fakeGuard) MayRead(who string, _ model.ServiceKey) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks++
	return g.allowed[who]
}
func (g *fakeGuard) set(who string, ok bool) {
	g.mu.Lock()
	g.allowed[who] = ok
	g.epoch++
	g.mu.Unlock()
}

// TestGuardStopsPushesToRevokedSubscribers: a subscriber is checked once
// per epoch (not per push), and one whose read permission was revoked gets
// no more pushes and is dropped.
func TestGuardStopsPushesToRevokedSubscribers(t *testing.T) {
	g := &fakeGuard{epoch: 1, allowed: map[string]bool{"alice": true, "bob": true}}
	h := newHarness(t, Config{Guard: g})
	alice, bob := newClient(t), newClient(t)
	for c, who := range map[*client]string{alice: "alice", bob: "bob"} {
		if err := h.p.Subscribe(demoKey, "", c.addr(), goAgent, who); err != nil {
			t.Fatal(err)
		}
	}
	h.put("10.0.0.1", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	alice.recv()
	bob.recv()
	h.put("10.0.0.2", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	alice.recv()
	bob.recv()
	if g.checks != 2 {
		t.Fatalf("%d permission checks for 2 subscribers over 2 pushes in one epoch, want 2", g.checks)
	}
	g.set("bob", false)
	h.put("10.0.0.3", 8080, "DEFAULT", nil)
	h.advance(20 * time.Millisecond)
	alice.recv()
	bob.quiet()
	if n := h.p.SubscriberCount(); n != 1 {
		t.Fatalf("%d subscribers after the revocation, want 1", n)
	}
}
