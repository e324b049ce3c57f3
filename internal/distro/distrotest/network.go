// Package distrotest provides an in-memory network and a cluster harness for
// testing the Distro engine: N nodes wired through a Network whose links can
// be partitioned (symmetrically or one way), and whose messages can be
// dropped, duplicated, delayed and so reordered. It runs inside
// testing/synctest bubbles, so timeouts and expiry take no real time.
package distrotest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/distro"
)

// ErrUnreachable is returned for calls over a cut link: the caller sees the
// same error as a refused connection.
var ErrUnreachable = fmt.Errorf("distrotest: unreachable: %w", syscall.ECONNREFUSED)

// ErrDropped is returned when a fault hook dropped the message.
var ErrDropped = errors.New("distrotest: message dropped")

// Faults are probabilistic message faults applied to every call.
type Faults struct {
	// Drop is the chance a call fails; half of the dropped calls are
	// delivered first (the reply is lost), which exercises retries of
	// already-applied messages.
	Drop float64
	// Duplicate is the chance a request is delivered twice.
	Duplicate float64
	// Delay and Jitter delay every delivery by Delay plus up to Jitter;
	// concurrent messages are thereby reordered.
	Delay, Jitter time.Duration
}

// Network connects in-memory nodes. It is safe for concurrent use.
type Network struct {
	mu      sync.Mutex
	nodes   map[string]distro.Handler
	blocked map[[2]string]bool
	faults  Faults
	rng     *rand.Rand
	// Hook, if set, sees every request before delivery; an error fails the call.
	hook  func(from, to string, req *clusterpb.Request) error
	calls atomic.Uint64
}

// NewNetwork returns an empty network whose fault decisions come from seed.
func NewNetwork(seed uint64) *Network {
	return &Network{nodes: map[string]distro.Handler{}, blocked: map[[2]string]bool{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Attach makes addr reachable, served by h.
func (n *Network) Attach(addr string, h distro.Handler) {
	n.mu.Lock()
	n.nodes[addr] = h
	n.mu.Unlock()
}

// Detach makes addr unreachable (a crashed process).
func (n *Network) Detach(addr string) {
	n.mu.Lock()
	delete(n.nodes, addr)
	n.mu.Unlock()
}

// Block cuts the link from -> to (one way: replies to calls to made in the
// other direction still flow, as with a connection-initiation filter).
func (n *Network) Block(from, to string) {
	n.mu.Lock()
	n.blocked[[2]string{from, to}] = true
	n.mu.Unlock()
}

// Partition cuts every link between nodes of different groups, both ways.
func (n *Network) Partition(groups ...[]string) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					n.Block(a, b)
				}
			}
		}
	}
}

// Heal removes every cut.
func (n *Network) Heal() {
	n.mu.Lock()
	n.blocked = map[[2]string]bool{}
	n.mu.Unlock()
}

// SetFaults replaces the message faults.
func (n *Network) SetFaults(f Faults) {
	n.mu.Lock()
	n.faults = f
	n.mu.Unlock()
}

// SetHook installs a request hook (nil removes it).
func (n *Network) SetHook(h func(from, to string, req *clusterpb.Request) error) {
	n.mu.Lock()
	n.hook = h
	n.mu.Unlock()
}

// Calls counts the calls made so far.
func (n *Network) Calls() uint64 { return n.calls.Load() }

type plan struct {
	h               distro.Handler
	hook            func(from, to string, req *clusterpb.Request) error
	drop, dropAfter bool
	dup             bool
	delay           time.Duration
}

func (n *Network) plan(from, to string) (plan, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls.Add(1)
	if n.blocked[[2]string{from, to}] {
		return plan{}, ErrUnreachable
	}
	h := n.nodes[to]
	if h == nil {
		return plan{}, ErrUnreachable
	}
	p := plan{h: h, hook: n.hook}
	f := n.faults
	if f.Drop > 0 && n.rng.Float64() < f.Drop {
		p.drop = true
		p.dropAfter = n.rng.IntN(2) == 0
	}
	p.dup = f.Duplicate > 0 && n.rng.Float64() < f.Duplicate
	p.delay = f.Delay
	if f.Jitter > 0 {
		p.delay += time.Duration(n.rng.Int64N(int64(f.Jitter)))
	}
	return p, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Transport returns the transport node from uses.
func (n *Network) Transport(from string) distro.Transport { return &transport{n: n, from: from} }

type transport struct {
	n    *Network
	from string
}

func (t *transport) Call(ctx context.Context, to string, req *clusterpb.Request) (*clusterpb.Response, error) {
	p, err := t.n.plan(t.from, to)
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*clusterpb.Request)
	type result struct {
		resp *clusterpb.Response
		err  error
	}
	done := make(chan result, 1)
	// Delivery runs on its own, as bytes in a connection do: a caller that
	// gives up does not stop a request already on its way (hooks and
	// delays may hold it past the caller's deadline).
	go func() {
		if p.hook != nil {
			if err := p.hook(t.from, to, req); err != nil {
				done <- result{err: err}
				return
			}
		}
		if err := sleep(context.Background(), p.delay); err != nil {
			done <- result{err: err}
			return
		}
		if p.drop && !p.dropAfter {
			done <- result{err: ErrDropped}
			return
		}
		deliver := func() (*clusterpb.Response, error) {
			resp, err := p.h.HandleCall(context.Background(), t.from, proto.Clone(req).(*clusterpb.Request))
			if err != nil {
				return nil, err
			}
			return proto.Clone(resp).(*clusterpb.Response), nil
		}
		resp, err := deliver()
		if p.dup {
			_, _ = deliver()
		}
		if p.drop {
			resp, err = nil, ErrDropped
		}
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *transport) Snapshot(ctx context.Context, to string, req *clusterpb.SnapshotRequest, fn func(*clusterpb.SnapshotChunk) error) error {
	p, err := t.n.plan(t.from, to)
	if err != nil {
		return err
	}
	if err := sleep(ctx, p.delay); err != nil {
		return err
	}
	return p.h.HandleSnapshot(ctx, t.from, proto.Clone(req).(*clusterpb.SnapshotRequest), func(c *clusterpb.SnapshotChunk) error {
		// A link cut mid-stream fails the stream.
		t.n.mu.Lock()
		cut := t.n.blocked[[2]string{t.from, to}] || t.n.nodes[to] == nil
		t.n.mu.Unlock()
		if cut {
			return ErrUnreachable
		}
		return fn(proto.Clone(c).(*clusterpb.SnapshotChunk))
	})
}
