package distro_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/clock"
	"github.com/distro-registry/distro/internal/distro"
	"github.com/distro-registry/distro/internal/distro/distrotest"
	"github.com/distro-registry/distro/internal/health"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Stepped engines do nothing on their own: a write is queued, becomes due
// after the sync delay, and reaches the peer only when StepSend runs; a
// verification round repairs a lost write, and its repair runs only when
// the caller runs the work handed to later.
type steppedNode struct {
	st  *store.Store
	eng *distro.Engine
}

// steppedPair starts two stepped engines that see each other UP; the work
// they hand to later is appended to *later.
func steppedPair(t *testing.T, clk *clock.Fake, later *[]func()) (a, b steppedNode) {
	ctx := context.Background()
	net := distrotest.NewNetwork(1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addrs := []string{distrotest.Addr(1), distrotest.Addr(2)}
	var nodes []steppedNode
	for _, a := range addrs {
		st := store.New(a, hlc.New(clk.Now))
		local := registry.NewLocal(st, health.DefaultConfig(), clk, log)
		eng := distro.New(distro.DefaultConfig(a), st, local, net.Transport(a), clk, log, nil)
		eng.EnableStepping(func(f func()) { *later = append(*later, f) })
		eng.SetView(distro.NewView(a, nil))
		if !eng.StepLoad(ctx, clk.Now(), 0) {
			t.Fatal("a node without peers is not ready after one load step")
		}
		var ms []distro.Member
		for _, b := range addrs {
			ms = append(ms, distro.Member{Addr: b, State: distro.StateUp})
		}
		eng.SetView(distro.NewView(a, ms))
		net.Attach(a, eng)
		nodes = append(nodes, steppedNode{st, eng})
	}
	return nodes[0], nodes[1]
}

func runLater(later *[]func()) {
	for len(*later) > 0 {
		f := (*later)[0]
		*later = (*later)[1:]
		f()
	}
}

func count(n steppedNode) int { _, c := n.st.Counts(); return int(c) }

// Stepped engines do nothing on their own: a write is queued, becomes due
// after the sync delay, and reaches the peer only when StepSend runs; a
// verification round repairs a lost write, and its repair runs only when
// the caller runs the work handed to later.
func TestSteppedEngines(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var later []func()
	a, b := steppedPair(t, clk, &later)
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "svc"}
	in := distrotest.Instance("10.9.0.1", 80)
	if _, err := a.eng.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: k, Instance: in}); err != nil {
		t.Fatal(err)
	}
	if count(a)+count(b) != 1 {
		t.Fatalf("the write is on %d nodes, want exactly its owner", count(a)+count(b))
	}
	owner, peer := a, b
	if count(b) == 1 {
		owner, peer = b, a
	}
	due, ok := owner.eng.NextSend(peer.eng.Self())
	if !ok || due.Sub(clk.Now()) != distro.DefaultConfig("").SyncDelay {
		t.Fatalf("next send %v %v, want due after the sync delay", due, ok)
	}
	if err := owner.eng.StepSend(ctx, peer.eng.Self()); err != nil || count(peer) != 0 {
		t.Fatalf("a send before the deadline delivered (err %v, peer holds %d)", err, count(peer))
	}
	clk.Advance(distro.DefaultConfig("").SyncDelay)
	if err := owner.eng.StepSend(ctx, peer.eng.Self()); err != nil || count(peer) != 1 {
		t.Fatalf("StepSend after the deadline: err %v, peer holds %d", err, count(peer))
	}
	if _, ok := owner.eng.NextSend(peer.eng.Self()); ok {
		t.Fatal("the queue is not empty after the send")
	}

	// A write the peer never receives (the queue is dropped with the view)
	// is repaired by a verification round, through the deferred repair.
	in2 := distrotest.Instance("10.9.0.2", 80)
	if _, err := owner.eng.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: k, Instance: in2}); err != nil {
		t.Fatal(err)
	}
	owner.eng.SetView(distro.NewView(owner.eng.Self(), []distro.Member{{Addr: owner.eng.Self(), State: distro.StateUp}}))
	owner.eng.SetView(distro.NewView(owner.eng.Self(), []distro.Member{{Addr: owner.eng.Self(), State: distro.StateUp}, {Addr: peer.eng.Self(), State: distro.StateUp}}))
	owner.eng.VerifyOnce(ctx)
	if count(peer) != 1 || len(later) == 0 {
		t.Fatalf("verification repaired at once (peer holds %d) or deferred nothing (%d)", count(peer), len(later))
	}
	runLater(&later)
	if count(peer) != 2 {
		t.Fatalf("after the deferred repair the peer holds %d instances, want 2", count(peer))
	}
}

// A peer that was DOWN and is UP again gets a verification round and a pull
// at once (docs/protocol.md §7.5), in stepped mode through later: a write
// made while it was away reaches it without waiting for VerifyOnce.
func TestSteppedRejoinRound(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var later []func()
	a, b := steppedPair(t, clk, &later)
	runLater(&later)
	view := func(s distro.State) *distro.View {
		return distro.NewView(a.eng.Self(), []distro.Member{{Addr: a.eng.Self(), State: distro.StateUp}, {Addr: b.eng.Self(), State: s}})
	}
	a.eng.SetView(view(distro.StateDown))
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "svc"}
	if _, err := a.eng.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: k, Instance: distrotest.Instance("10.9.0.1", 80)}); err != nil {
		t.Fatal(err)
	}
	if len(later) != 0 || count(b) != 0 {
		t.Fatalf("work deferred (%d) or the write delivered (%d) while the peer is DOWN", len(later), count(b))
	}
	clk.Advance(time.Second)
	a.eng.SetView(view(distro.StateUp))
	if len(later) != 1 {
		t.Fatalf("the peer's return deferred %d calls, want one rejoin round", len(later))
	}
	runLater(&later)
	if count(b) != 1 {
		t.Fatalf("after the rejoin round the peer holds %d instances, want 1", count(b))
	}
	// At most once per verification interval per peer: a second return
	// within the interval waits for the periodic round.
	write := func(ip string) {
		a.eng.SetView(view(distro.StateDown))
		if _, err := a.eng.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: k, Instance: distrotest.Instance(ip, 80)}); err != nil {
			t.Fatal(err)
		}
		a.eng.SetView(view(distro.StateUp))
		runLater(&later)
	}
	write("10.9.0.2")
	if count(b) != 1 {
		t.Fatalf("a second rejoin round within the interval ran: the peer holds %d instances", count(b))
	}
	clk.Advance(distro.DefaultConfig("").VerifyInterval)
	write("10.9.0.3")
	if count(b) != 3 {
		t.Fatalf("a rejoin round after the interval: the peer holds %d instances, want 3", count(b))
	}
}
