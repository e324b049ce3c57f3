// Package raftcptest builds the CP side for tests: a standalone
// (single-voter) Raft node in a temporary data directory, and the
// consistency router over it, as distrod runs standalone.
package raftcptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// Standalone opens a single-voter node over st in dir (tb.TempDir() when
// empty), waits until it leads, and closes it at cleanup.
func Standalone(tb testing.TB, st *store.Store, dir string) *raftcp.Node {
	tb.Helper()
	n, _ := StandaloneWith(tb, st, dir, nil)
	return n
}

// StandaloneWith is Standalone with a change of the node's configuration
// (extensions, timings) before it opens. It also returns the function
// that stops the node (cleanup calls it too), for restart tests.
func StandaloneWith(tb testing.TB, st *store.Store, dir string, mod func(*raftcp.Config)) (*raftcp.Node, func()) {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	cfg := raftcp.DefaultConfig(st.Self(), dir)
	cfg.Standalone = true
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 50*time.Millisecond, 50*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mod != nil {
		mod(&cfg)
	}
	n, err := raftcp.Open(cfg, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	tb.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			tb.Fatal("standalone raft node did not become leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n, stop
}

// Router returns the write path of a standalone node: ap for ephemeral
// writes, a fresh standalone Raft node over st for persistent ones.
func Router(tb testing.TB, st *store.Store, ap registry.Writer) *consistency.Router {
	tb.Helper()
	r, _ := New(tb, st, ap)
	return r
}

// New is Router that also returns the node (for its KV tables).
func New(tb testing.TB, st *store.Store, ap registry.Writer) (*consistency.Router, *raftcp.Node) {
	tb.Helper()
	n := Standalone(tb, st, "")
	return &consistency.Router{AP: ap, CP: &raftcp.Writer{Node: n, Store: st}, Store: st}, n
}

// Snapshot returns the snapshot file f would persist now.
func Snapshot(tb testing.TB, f *raftcp.FSM) []byte {
	tb.Helper()
	s, err := f.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		tb.Fatal(err)
	}
	return sink.Bytes()
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

// Dump returns a canonical text of f's whole state (services with their
// instances, health verdicts and settings, KV tables, extension states),
// sorted, so two state machines can be compared by content rather than
// by counts or by snapshot bytes (whose order follows map iteration).
func Dump(tb testing.TB, f *raftcp.FSM) string {
	tb.Helper()
	applied, services, tables, exts, err := raftcp.ReadSnapshot(bytes.NewReader(Snapshot(tb, f)))
	if err != nil {
		tb.Fatal(err)
	}
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	add("applied %d", applied)
	for _, ps := range services {
		down := map[model.InstanceKey]bool{}
		for _, k := range ps.Down {
			down[k] = true
		}
		for _, in := range ps.Instances {
			b, _ := json.Marshal(in)
			add("svc %s instance %s down=%v %s", ps.Key, in.Key(), down[in.Key()], b)
		}
		if ps.Settings != nil {
			b, _ := json.Marshal(ps.Settings)
			add("svc %s settings %s", ps.Key, b)
		}
	}
	for name, t := range tables {
		for k, v := range t {
			add("kv %s/%s %q", name, k, v)
		}
	}
	for name, st := range exts {
		add("ext %s %x", name, sha256.Sum256(st))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
