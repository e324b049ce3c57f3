package authcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/distro-registry/distro/internal/auth"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/raftcp"
	"github.com/distro-registry/distro/internal/registry"
)

// Name is the extension's name in the log and in snapshots: never change it.
const Name = "auth"

// Command tags: the first byte of an extension command. Only append.
const (
	tagChange byte = 'c' // an auth.Change (auth.EncodeChange)
	tagSeed   byte = 's' // a whole auth.State (auth.EncodeState), into an empty store only
)

// Proposer commits a CP command and waits until this node applied it
// (raftcp.Node).
type Proposer interface {
	Propose(ctx context.Context, cmd []byte) error
}

// Store is the auth store on the CP protocol. Reads are this node's
// applied state; changes are answered after commit and local apply.
type Store struct {
	cur  atomic.Pointer[auth.State]
	prop atomic.Pointer[Proposer]

	mu       sync.Mutex
	watchers []func(*auth.State)
}

var _ auth.Store = (*Store)(nil)

// New returns an empty store; register Extension with the Raft node
// before it starts, then Attach the node.
func New() *Store {
	s := &Store{}
	s.cur.Store(&auth.State{})
	return s
}

// Attach sets the proposer (the Raft node). Changes before Attach are
// refused with 503.
func (s *Store) Attach(p Proposer) { s.prop.Store(&p) }

// State implements auth.Store.
func (s *Store) State() *auth.State { return s.cur.Load() }

// Watch implements auth.Store. fn runs on Raft's FSM goroutine.
func (s *Store) Watch(fn func(*auth.State)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, fn)
	s.mu.Unlock()
}

// Apply implements auth.Store: c is committed through Raft and applied on
// every node; the answer is this node's state after it.
func (s *Store) Apply(ctx context.Context, c auth.Change) (*auth.State, error) {
	b, err := auth.EncodeChange(c)
	if err != nil {
		return nil, err
	}
	if err := s.propose(ctx, tagChange, b); err != nil {
		return nil, err
	}
	return s.State(), nil
}

// ErrNotEmpty answers a Seed into a store that already holds auth data.
var ErrNotEmpty = &auth.Error{Status: http.StatusConflict, Msg: "the replicated auth store already holds users, roles or permissions; seed ignored"}

// Seed installs st if the replicated store is empty (no user, role or
// permission). It returns ErrNotEmpty, changing nothing, otherwise.
func (s *Store) Seed(ctx context.Context, st *auth.State) error {
	b, err := auth.EncodeState(st)
	if err != nil {
		return err
	}
	return s.propose(ctx, tagSeed, b)
}

func (s *Store) propose(ctx context.Context, tag byte, payload []byte) error {
	p := s.prop.Load()
	if p == nil {
		return &auth.Error{Status: http.StatusServiceUnavailable, Msg: "the CP store is not open yet"}
	}
	cmd, err := raftcp.EncodeExt(Name, append([]byte{tag}, payload...))
	if err != nil {
		return &auth.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	return authError((*p).Propose(ctx, cmd))
}

// authError maps the CP layer's answers to auth errors: a refused change
// keeps its status and message, "no quorum" is 503 (retry on another node).
func authError(err error) error {
	var re *registry.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		if re.Status == ErrNotEmpty.Status && re.Msg == ErrNotEmpty.Msg {
			return ErrNotEmpty
		}
		return &auth.Error{Status: re.Status, Msg: re.Msg}
	case errors.Is(err, raftcp.ErrNoLeader), errors.Is(err, raftcp.ErrUnknown):
		return &auth.Error{Status: http.StatusServiceUnavailable, Msg: err.Error()}
	case errors.Is(err, model.ErrInvalid):
		return &auth.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	return &auth.Error{Status: http.StatusInternalServerError, Msg: err.Error()}
}

// install makes st current and tells the watchers (FSM goroutine).
func (s *Store) install(st *auth.State) {
	s.cur.Store(st)
	s.mu.Lock()
	ws := s.watchers
	s.mu.Unlock()
	for _, w := range ws {
		w(st)
	}
}

// Extension returns the Raft FSM extension that applies this store's
// commands (register it under Name).
func (s *Store) Extension() raftcp.Extension { return machine{s} }

// machine is the FSM side of a Store.
type machine struct{ s *Store }

// Command is a decoded extension command: exactly one of Change and Seed.
type Command struct {
	Change *auth.Change
	Seed   *auth.State
}

// DecodeCommand decodes and validates an extension command. Errors wrap
// model.ErrInvalid.
func DecodeCommand(data []byte) (*Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty auth command", model.ErrInvalid)
	}
	switch data[0] {
	case tagChange:
		c, err := auth.DecodeChange(data[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: auth change: %v", model.ErrInvalid, err)
		}
		return &Command{Change: &c}, nil
	case tagSeed:
		st, err := auth.DecodeState(data[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: auth seed: %v", model.ErrInvalid, err)
		}
		return &Command{Seed: st}, nil
	}
	return nil, fmt.Errorf("%w: unknown auth command %#x", model.ErrInvalid, data[0])
}

func empty(st *auth.State) bool {
	return len(st.Users) == 0 && len(st.Roles) == 0 && len(st.Permissions) == 0
}

// Apply implements raftcp.Extension.
func (m machine) Apply(data []byte) error {
	cmd, err := DecodeCommand(data)
	if err != nil {
		return &registry.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	cur := m.s.State()
	if cmd.Seed != nil {
		if !empty(cur) {
			return &registry.Error{Status: ErrNotEmpty.Status, Msg: ErrNotEmpty.Msg}
		}
		m.s.install(cmd.Seed)
		return nil
	}
	next, err := cur.Apply(*cmd.Change)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			return &registry.Error{Status: ae.Status, Msg: ae.Msg}
		}
		return &registry.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	if next != cur {
		m.s.install(next)
	}
	return nil
}

// Snapshot implements raftcp.Extension: States are immutable, so the
// capture is a pointer.
func (m machine) Snapshot() func() ([]byte, error) {
	st := m.s.State()
	return func() ([]byte, error) { return auth.EncodeState(st) }
}

// Restore implements raftcp.Extension.
func (m machine) Restore(data []byte) (func(), error) {
	st := &auth.State{}
	if data != nil {
		var err error
		if st, err = auth.DecodeState(data); err != nil {
			return nil, fmt.Errorf("%w: auth state: %v", model.ErrInvalid, err)
		}
	}
	return func() { m.s.install(st) }, nil
}
