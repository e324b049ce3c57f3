package authcp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/crypto/bcrypt"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/authcp"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/raftcp/raftcptest"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var key = []byte("0123456789abcdef0123456789abcdef")

func hash(t testing.TB, pw string) string {
	h, err := auth.HashPassword(pw, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func cmd(t testing.TB, c auth.Change) []byte {
	t.Helper()
	b, err := auth.EncodeChange(c)
	if err != nil {
		t.Fatal(err)
	}
	out, err := raftcp.EncodeExt(authcp.Name, append([]byte{'c'}, b...))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fsm is a bare state machine with the auth extension.
func fsm(t testing.TB) (*raftcp.FSM, *authcp.Store) {
	s := authcp.New()
	f := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
	if err := f.Register(authcp.Name, s.Extension()); err != nil {
		t.Fatal(err)
	}
	return f, s
}

func snapshot(t testing.TB, f *raftcp.FSM) []byte { return raftcptest.Snapshot(t, f) }

// TestFSMExtension: auth changes in the log give the same State on every
// replica, refusals keep Nacos's status and message, watchers see every
// new State, and snapshots carry the State (validated before a restore).
func TestFSMExtension(t *testing.T) {
	hu, hv := hash(t, "pw-u"), hash(t, "pw-v")
	log := [][]byte{
		cmd(t, auth.Change{Op: auth.OpBootstrapAdmin, Username: "nacos", Hash: hu, At: 1}),
		cmd(t, auth.Change{Op: auth.OpCreateUser, Username: "u", Hash: hv, At: 2}),
		cmd(t, auth.Change{Op: auth.OpCreateUser, Username: "u", Hash: hv, At: 3}), // refused: exists
		cmd(t, auth.Change{Op: auth.OpAddRole, Role: "dev", Username: "u"}),
		cmd(t, auth.Change{Op: auth.OpAddPermission, Role: "dev", Resource: "dev:*:*", Action: "rw"}),
		cmd(t, auth.Change{Op: auth.OpDeleteUser, Username: "nacos"}),               // refused: admin
		append(cmd(t, auth.Change{Op: auth.OpDeleteUser, Username: "u"})[:5], 0xff), // garbage
	}
	var snaps [2][]byte
	var states [2]*auth.State
	for r := range 2 {
		f, s := fsm(t)
		var seen int
		s.Watch(func(*auth.State) { seen++ })
		var errs []error
		for i, b := range log {
			errs = append(errs, f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}).(raftcp.Result).Err)
		}
		for i, want := range []int{0, 0, 400, 0, 0, 400, 400} {
			if got := statusOf(errs[i]); got != want {
				t.Fatalf("entry %d: status %d (%v), want %d", i, got, errs[i], want)
			}
		}
		if msg := errs[2].Error(); msg != "user 'u' already exist!" {
			t.Fatalf("refusal message %q", msg)
		}
		if seen != 4 {
			t.Fatalf("watchers saw %d states, want 4", seen)
		}
		st := s.State()
		if len(st.Users) != 2 || !st.IsAdmin("nacos") || len(st.Permissions) != 1 || !st.HasRole("dev") {
			t.Fatalf("state %+v", st)
		}
		snaps[r], states[r] = snapshot(t, f), st
	}
	a, _ := auth.EncodeState(states[0])
	b, _ := auth.EncodeState(states[1])
	if !bytes.Equal(a, b) || !bytes.Equal(snaps[0], snaps[1]) {
		t.Fatal("two replicas of one log differ")
	}

	// Restore into a fresh replica; its watchers see the restored State.
	f2, s2 := fsm(t)
	var got *auth.State
	s2.Watch(func(st *auth.State) { got = st })
	if err := f2.Restore(io.NopCloser(bytes.NewReader(snaps[0]))); err != nil {
		t.Fatal(err)
	}
	if enc, _ := auth.EncodeState(s2.State()); !bytes.Equal(enc, a) || got != s2.State() {
		t.Fatalf("restored state differs:\n%s", enc)
	}

	// A snapshot with an invalid auth state is refused and changes nothing.
	if _, _, _, exts, err := raftcp.ReadSnapshot(bytes.NewReader(snaps[0])); err != nil || len(exts[authcp.Name]) == 0 {
		t.Fatalf("snapshot has no auth state: %v", err)
	}
	for _, bad := range []string{`{"version":1,"users":[{"username":"u u","hash":"$2a$04$x"}]}`, `{"version":2}`, `not json`, ``} {
		fb := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
		_ = fb.Register(authcp.Name, fixedState(bad))
		if err := f2.Restore(io.NopCloser(bytes.NewReader(snapshot(t, fb)))); err == nil {
			t.Fatalf("snapshot with auth state %q restored", bad)
		}
		if s2.State() != got {
			t.Fatal("a refused restore changed the auth state")
		}
	}

	// A snapshot without auth state (an older release's) restores empty.
	bare := raftcp.NewFSM(store.New("n", hlc.New(nil)), discard())
	if err := f2.Restore(io.NopCloser(bytes.NewReader(snapshot(t, bare)))); err != nil || len(s2.State().Users) != 0 {
		t.Fatalf("restore without auth state: %v %+v", err, s2.State())
	}
}

// fixedState is an extension whose snapshots hold the given bytes.
type fixedState string

func (fixedState) Apply([]byte) error { return nil }
func (f fixedState) Snapshot() func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(f), nil }
}
func (fixedState) Restore([]byte) (func(), error) { return func() {}, nil }

func statusOf(err error) int {
	if err == nil {
		return 0
	}
	return registry.StatusOf(err)
}

// TestSeed: a whole State seeds an empty store once; a second seed (or a
// seed after any change) is refused and changes nothing.
func TestSeed(t *testing.T) {
	s, _, _ := open(t, "")
	ctx := context.Background()
	seed := &auth.State{Users: []auth.User{{Name: "old", Hash: hash(t, "old-pw"), Created: 5}},
		Roles: []auth.RoleBinding{{Role: auth.AdminRole, Username: "old"}}}
	if err := s.Seed(ctx, seed); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.User("old") == nil || !st.IsAdmin("old") {
		t.Fatalf("after seed %+v", st)
	}
	other := &auth.State{Users: []auth.User{{Name: "other", Hash: hash(t, "x")}}}
	if err := s.Seed(ctx, other); !errors.Is(err, authcp.ErrNotEmpty) {
		t.Fatalf("second seed: %v", err)
	}
	if s.State().User("other") != nil {
		t.Fatal("a refused seed changed the state")
	}
	// An invalid State is refused before it is proposed... or by every
	// replica alike if it is proposed anyway.
	if err := s.Seed(ctx, &auth.State{Users: []auth.User{{Name: "a b", Hash: "$2a$x"}}}); err == nil {
		t.Fatal("invalid seed accepted")
	}
}

// open starts a standalone Raft node with the auth extension in dir.
func open(t *testing.T, dir string) (*authcp.Store, *raftcp.Node, func()) {
	t.Helper()
	s := authcp.New()
	n, stop := raftcptest.StandaloneWith(t, store.New("127.0.0.1:8848", hlc.New(nil)), dir, func(c *raftcp.Config) {
		c.Extensions = map[string]raftcp.Extension{authcp.Name: s.Extension()}
	})
	s.Attach(n)
	return s, n, stop
}

// TestAuthorityOverRaft: the Authority works over the CP store (bootstrap,
// users, roles, login, refusals with Nacos's messages), and everything
// survives a restart, from the log and from a snapshot.
func TestAuthorityOverRaft(t *testing.T) {
	dir := t.TempDir()
	toks, _ := auth.NewTokens(key, time.Hour, nil)
	ctx := context.Background()
	var adminPW string
	for round := range 3 {
		s, n, stop := open(t, dir)
		a, err := auth.New(auth.Config{Store: s, Tokens: toks, BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		pw, err := a.Bootstrap(ctx, "nacos")
		if err != nil {
			t.Fatal(err)
		}
		switch round {
		case 0:
			if pw == "" {
				t.Fatal("first start made no admin")
			}
			adminPW = pw
			if err := a.CreateUser(ctx, "alice", "alice-pw"); err != nil {
				t.Fatal(err)
			}
			if err := a.CreateUser(ctx, "alice", "again"); err == nil || err.Error() != "user 'alice' already exist!" {
				t.Fatalf("duplicate user: %v", err)
			}
			var ae *auth.Error
			if err := a.Apply(ctx, auth.Change{Op: auth.OpAddRole, Role: auth.AdminRole, Username: "alice"}); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
				t.Fatalf("granting ROLE_ADMIN through the API: %v", err)
			}
			if err := a.Apply(ctx, auth.Change{Op: auth.OpAddRole, Role: "dev", Username: "alice"}); err != nil {
				t.Fatal(err)
			}
		case 1:
			if pw != "" {
				t.Fatal("a restart made another admin")
			}
			if err := a.Apply(ctx, auth.Change{Op: auth.OpAddPermission, Role: "dev", Resource: "dev:*:*", Action: "r"}); err != nil {
				t.Fatal(err)
			}
			if err := n.Raft().Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			if err := a.SetPassword(ctx, "alice", "alice-pw-2"); err != nil {
				t.Fatal(err)
			}
		case 2:
			if pw != "" {
				t.Fatal("a restart made another admin")
			}
			if _, err := a.Login("nacos", adminPW, ""); err != nil {
				t.Fatalf("admin login after restart: %v", err)
			}
			if _, err := a.Login("alice", "alice-pw-2", ""); err != nil {
				t.Fatalf("alice login after restart (password changed after the snapshot): %v", err)
			}
			xRes := auth.NamingResource(model.ServiceKey{Namespace: "dev", Group: "G", Name: "x"})
			if !a.Allowed("alice", xRes, auth.Read) || a.Allowed("alice", xRes, auth.Write) {
				t.Fatal("alice's permissions were not restored")
			}
		}
		stop()
	}
}

// TestNoProposer: changes before the Raft node is attached are refused
// with 503, never applied locally only.
func TestNoProposer(t *testing.T) {
	s := authcp.New()
	_, err := s.Apply(context.Background(), auth.Change{Op: auth.OpCreateUser, Username: "u", Hash: hash(t, "x")})
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || len(s.State().Users) != 0 {
		t.Fatalf("apply without a proposer: %v", err)
	}
}

// BenchmarkApply is one auth change committed through a standalone Raft
// node (fsync of the log per commit) and applied: a permission added and
// removed in turn, so no bcrypt run is measured.
func BenchmarkApply(b *testing.B) {
	s := authcp.New()
	n, _ := raftcptest.StandaloneWith(b, store.New("127.0.0.1:8848", hlc.New(nil)), "", func(c *raftcp.Config) {
		c.Extensions = map[string]raftcp.Extension{authcp.Name: s.Extension()}
	})
	s.Attach(n)
	ctx := context.Background()
	if _, err := s.Apply(ctx, auth.Change{Op: auth.OpCreateUser, Username: "u", Hash: hash(b, "pw"), At: 1}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Apply(ctx, auth.Change{Op: auth.OpAddRole, Role: "r", Username: "u"}); err != nil {
		b.Fatal(err)
	}
	ops := []string{auth.OpAddPermission, auth.OpDeletePermission}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Apply(ctx, auth.Change{Op: ops[i%2], Role: "r", Resource: "public:*:*", Action: "r"}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
