package raftcp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// counter is a toy extension: commands are decimal increments, refused
// when negative; its state is the decimal sum.
type counter struct {
	mu  sync.Mutex
	sum int
}

func (c *counter) get() int { c.mu.Lock(); defer c.mu.Unlock(); return c.sum }

func (c *counter) Apply(cmd []byte) error {
	d, err := strconv.Atoi(string(cmd))
	if err != nil || d < 0 {
		return &registry.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("bad increment %q", cmd)}
	}
	c.mu.Lock()
	c.sum += d
	c.mu.Unlock()
	return nil
}

func (c *counter) Snapshot() func() ([]byte, error) {
	v := c.get()
	return func() ([]byte, error) { return []byte(strconv.Itoa(v)), nil }
}

func (c *counter) Restore(state []byte) (func(), error) {
	v := 0
	if state != nil {
		var err error
		if v, err = strconv.Atoi(string(state)); err != nil {
			return nil, err
		}
	}
	return func() { c.mu.Lock(); c.sum = v; c.mu.Unlock() }, nil
}

// TestExtension: an extension's commands ride the log in order with the
// registry's; a refused one reaches the proposer with its status; an
// unknown extension is refused; its state goes through snapshots, is
// validated before a restore changes anything, and starts empty from a
// snapshot that holds none.
func TestExtension(t *testing.T) {
	st := store.New("n", hlc.New(nil))
	f := raftcp.NewFSM(st, discard())
	c := &counter{}
	if err := f.Register("counter", c); err != nil {
		t.Fatal(err)
	}
	if err := f.Register("counter", &counter{}); err == nil {
		t.Fatal("a second registration under one name was accepted")
	}
	var idx uint64
	apply := func(b []byte) error {
		idx++
		return f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(raftcp.Result).Err
	}
	ext := func(name, data string) []byte {
		b, err := raftcp.EncodeExt(name, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, d := range []string{"2", "3"} {
		if err := apply(ext("counter", d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(ext("counter", "-1")); registry.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("refused command: %v", err)
	}
	if err := apply(ext("nope", "1")); registry.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "unknown state-machine extension") {
		t.Fatalf("unknown extension: %v", err)
	}
	if _, err := raftcp.EncodeExt("", nil); err == nil {
		t.Fatal("empty extension name encoded")
	}
	b, _ := raftcp.EncodeOp(&registry.Op{Kind: registry.OpRegister, Key: svc, Instance: inst("10.0.0.1", 1, false)})
	if err := apply(b); err != nil {
		t.Fatal(err)
	}
	if c.get() != 5 || f.Applied() != idx {
		t.Fatalf("sum %d applied %d", c.get(), f.Applied())
	}
	snap := func(f *raftcp.FSM) []byte { return raftcptest.Snapshot(t, f) }
	full := snap(f)
	if _, _, _, exts, err := raftcp.ReadSnapshot(bytes.NewReader(full)); err != nil || string(exts["counter"]) != "5" {
		t.Fatalf("snapshot extensions %q %v", exts, err)
	}

	// Restore into a fresh machine.
	c2 := &counter{}
	f2 := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
	_ = f2.Register("counter", c2)
	if err := f2.Restore(io.NopCloser(bytes.NewReader(full))); err != nil || c2.get() != 5 {
		t.Fatalf("restored sum %d: %v", c2.get(), err)
	}

	// A snapshot without the extension's state (written before it
	// existed) restarts it empty.
	bare := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
	old := snap(bare)
	if err := f2.Restore(io.NopCloser(bytes.NewReader(old))); err != nil || c2.get() != 0 {
		t.Fatalf("restore of a snapshot without the extension: sum %d, %v", c2.get(), err)
	}

	// A snapshot whose extension state is invalid changes nothing at all.
	bad := &counter{}
	fb := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
	_ = fb.Register("counter", badState{bad})
	corrupt := snap(fb)
	st3 := store.New("n", hlc.New(nil))
	c3 := &counter{}
	f3 := raftcp.NewFSM(st3, discard())
	_ = f3.Register("counter", c3)
	if err := f3.Restore(io.NopCloser(bytes.NewReader(full))); err != nil {
		t.Fatal(err)
	}
	if err := f3.Restore(io.NopCloser(bytes.NewReader(corrupt))); err == nil {
		t.Fatal("a snapshot with an invalid extension state was restored")
	}
	if c3.get() != 5 || st3.View(svc) == nil || f3.Applied() != idx {
		t.Fatalf("a refused restore changed the state: sum %d view %v applied %d", c3.get(), st3.View(svc), f3.Applied())
	}
}

// badState snapshots a state its Restore (counter's) cannot read.
type badState struct{ *counter }

func (badState) Snapshot() func() ([]byte, error) {
	return func() ([]byte, error) { return []byte("x"), nil }
}

// TestExtensionRestart: on a real node an extension's state comes back
// after a restart, from the snapshot and from the log after it.
func TestExtensionRestart(t *testing.T) {
	dir := t.TempDir()
	for round := range 2 {
		c := &counter{}
		st := store.New("127.0.0.1:8848", hlc.New(nil))
		n, stop := raftcptest.StandaloneWith(t, st, dir, func(cfg *raftcp.Config) {
			cfg.Extensions = map[string]raftcp.Extension{"counter": c}
		})
		ctx := context.Background()
		propose := func(d string) {
			t.Helper()
			b, _ := raftcp.EncodeExt("counter", []byte(d))
			if err := n.Propose(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if round == 0 {
			propose("10")
			if err := n.Raft().Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			propose("7")
			b, _ := raftcp.EncodeExt("counter", []byte("-3"))
			if err := n.Propose(ctx, b); registry.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("refused proposal: %v", err)
			}
		} else {
			if err := n.Barrier(ctx); err != nil {
				t.Fatal(err)
			}
			if c.get() != 17 {
				t.Fatalf("after restart: sum %d, want 17", c.get())
			}
		}
		stop()
	}
}
