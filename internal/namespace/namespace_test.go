package namespace

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/registry"
)

// memKV is consistency.KV in memory, with the CP side's conditions.
type memKV struct {
	mu     sync.Mutex
	tables map[string]map[string][]byte
	err    error // returned by every write when set (no quorum)
	writes int
}

func newMemKV() *memKV { return &memKV{tables: map[string]map[string][]byte{}} }

func (m *memKV) Write(_ context.Context, w consistency.KVWrite) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.writes++
	t := m.tables[w.Table]
	if t == nil {
		t = map[string][]byte{}
		m.tables[w.Table] = t
	}
	_, ok := t[w.Key]
	switch w.Mode {
	case consistency.KVCreate:
		if ok {
			return consistency.ErrExists
		}
	case consistency.KVUpdate, consistency.KVDelete:
		if !ok {
			return consistency.ErrNotFound
		}
	}
	switch w.Mode {
	case consistency.KVDelete, consistency.KVDeleteIfPresent:
		delete(t, w.Key)
	default:
		t[w.Key] = w.Value
	}
	return nil
}

func (m *memKV) Get(table, key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.tables[table][key]
	return v, ok
}

func (m *memKV) List(table string) []consistency.KVEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []consistency.KVEntry
	for k, v := range m.tables[table] {
		out = append(out, consistency.KVEntry{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (m *memKV) Sync(context.Context) error { return nil }

func wantStatus(t *testing.T, err error, status int, text string) {
	t.Helper()
	if registry.StatusOf(err) != status || !strings.Contains(err.Error(), text) {
		t.Fatalf("got %v (status %d), want %d containing %q", err, registry.StatusOf(err), status, text)
	}
}

func TestCreate(t *testing.T) {
	kv := newMemKV()
	r := &Registry{KV: kv}
	ctx := context.Background()
	id, err := r.Create(ctx, Namespace{ID: " dev ", Name: "Development", Desc: "d"})
	if err != nil || id != "dev" {
		t.Fatalf("create: %q %v", id, err)
	}
	ns, ok := r.Get("dev")
	if !ok || ns.Name != "Development" || ns.Desc != "d" || ns.CreatedMs == 0 {
		t.Fatalf("get %+v %v", ns, ok)
	}
	// A blank id gets a random UUID (v4), as in Nacos.
	id2, err := r.Create(ctx, Namespace{Name: "generated"})
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id2) {
		t.Fatalf("generated id %q %v", id2, err)
	}
	for _, tc := range []struct {
		name string
		ns   Namespace
		text string
	}{
		{"duplicate", Namespace{ID: "dev", Name: "again"}, "already exist"},
		{"default by id", Namespace{ID: "public", Name: "x"}, "already exist"},
		{"bad id", Namespace{ID: "a b", Name: "x"}, "illegal namespace"},
		{"long id", Namespace{ID: strings.Repeat("a", MaxIDLen+1), Name: "x"}, "illegal namespace"},
		{"no name", Namespace{ID: "n1", Name: "  "}, "namespaceName' is required"},
		{"bad name", Namespace{ID: "n2", Name: "a@b"}, "illegal namespace"},
		{"long name", Namespace{ID: "n3", Name: strings.Repeat("a", MaxNameLen+1)}, "illegal namespace"},
		{"long desc", Namespace{ID: "n4", Name: "x", Desc: strings.Repeat("a", MaxDescLen+1)}, "namespaceDesc"},
	} {
		before := kv.writes
		_, err := r.Create(ctx, tc.ns)
		wantStatus(t, err, http.StatusBadRequest, tc.text)
		if tc.name != "duplicate" && kv.writes != before {
			t.Errorf("%s: an invalid namespace reached the log", tc.name)
		}
	}
	if got := r.List(); len(got) != 3 || got[0] != Default || got[1].ID != "dev" && got[2].ID != "dev" {
		t.Fatalf("list %+v", got)
	}
}

func TestUpdateDeleteAndCheck(t *testing.T) {
	kv := newMemKV()
	r := &Registry{KV: kv}
	ctx := context.Background()
	if _, err := r.Create(ctx, Namespace{ID: "dev", Name: "Development"}); err != nil {
		t.Fatal(err)
	}
	created, _ := r.Get("dev")
	if err := r.Update(ctx, Namespace{ID: "dev", Name: "Dev", Desc: "renamed"}); err != nil {
		t.Fatal(err)
	}
	ns, _ := r.Get("dev")
	if ns.Name != "Dev" || ns.Desc != "renamed" || ns.CreatedMs != created.CreatedMs {
		t.Fatalf("updated %+v (created %d)", ns, created.CreatedMs)
	}
	wantStatus(t, r.Update(ctx, Namespace{ID: "nope", Name: "x"}), http.StatusNotFound, "not exist")
	wantStatus(t, r.Update(ctx, Namespace{ID: "", Name: "x"}), http.StatusBadRequest, "default namespace")
	wantStatus(t, r.Update(ctx, Namespace{ID: "dev", Name: ""}), http.StatusBadRequest, "required")

	// Naming writes into unknown namespaces are refused; the default and
	// created ones pass.
	for _, id := range []string{"", "public", "dev"} {
		if err := r.Check(id); err != nil || !r.Exists(id) {
			t.Errorf("check %q: %v", id, err)
		}
	}
	wantStatus(t, r.Check("prod"), http.StatusBadRequest, "does not exist")

	wantStatus(t, r.Delete(ctx, "public"), http.StatusBadRequest, "cannot be deleted")
	wantStatus(t, r.Delete(ctx, "a/b"), http.StatusBadRequest, "illegal namespace")
	if err := r.Delete(ctx, "unknown"); err != nil {
		t.Fatalf("delete of an unknown namespace: %v", err)
	}
	if err := r.Delete(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if r.Exists("dev") {
		t.Fatal("deleted namespace still exists")
	}
}

// A stored value that does not decode is skipped, not shown half-parsed;
// a write without quorum reaches the caller unchanged (503).
func TestCorruptEntryAndUnavailable(t *testing.T) {
	kv := newMemKV()
	r := &Registry{KV: kv}
	kv.tables[Table] = map[string][]byte{"bad": []byte("{"), "ok": []byte(`{"id":"ok","name":"OK"}`)}
	if got := r.List(); len(got) != 2 || got[1].ID != "ok" {
		t.Fatalf("list %+v", got)
	}
	if _, ok := r.Get("bad"); ok {
		t.Fatal("corrupt entry returned")
	}
	unavailable := &registry.Error{Status: http.StatusServiceUnavailable, Msg: "no Raft leader"}
	kv.err = unavailable
	if _, err := r.Create(context.Background(), Namespace{ID: "x", Name: "x"}); !errors.Is(err, unavailable) {
		t.Fatalf("create without quorum: %v", err)
	}
	if err := r.Delete(context.Background(), "ok"); registry.StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("delete without quorum: %v", err)
	}
}
