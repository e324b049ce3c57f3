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
func TestSteppedEngines(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	net := distrotest.NewNetwork(1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addrs := []string{distrotest.Addr(1), distrotest.Addr(2)}
	var later []func()
	type node struct {
		st  *store.Store
		eng *distro.Engine
	}
	var nodes []node
	for _, a := range addrs {
		st := store.New(a, hlc.New(clk.Now))
		local := registry.NewLocal(st, health.DefaultConfig(), clk, log)
		eng := distro.New(distro.DefaultConfig(a), st, local, net.Transport(a), clk, log, nil)
		eng.EnableStepping(func(f func()) { later = append(later, f) })
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
		nodes = append(nodes, node{st, eng})
	}
	a, b := nodes[0], nodes[1]
	k := model.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "svc"}
	in := distrotest.Instance("10.9.0.1", 80)
	if _, err := a.eng.Apply(ctx, &registry.Op{Kind: registry.OpRegister, Key: k, Instance: in}); err != nil {
		t.Fatal(err)
	}
	count := func(n node) int { _, c := n.st.Counts(); return int(c) }
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
	for len(later) > 0 {
		f := later[0]
		later = later[1:]
		f()
	}
	if count(peer) != 2 {
		t.Fatalf("after the deferred repair the peer holds %d instances, want 2", count(peer))
	}
}
