package raftcp

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
)

// Extension is a replicated state machine that rides the CP log next to
// the persistent part of the registry and the KV tables: the auth store's
// users, roles and permissions (internal/authcp). Its commands and its
// state are opaque bytes to Raft; the extension decodes and validates them.
//
// Every method runs on Raft's FSM goroutine.
type Extension interface {
	// Apply applies one command, in log order. It must be deterministic:
	// every node applies the same bytes to the same state. A refused
	// command changes nothing and returns a *registry.Error, whose status
	// and message reach the proposer (on the leader or forwarded).
	Apply(cmd []byte) error
	// Snapshot captures the current state and returns the function that
	// encodes it. The function runs later, concurrently with Apply, so the
	// capture must be an immutable value.
	Snapshot() func() ([]byte, error)
	// Restore decodes and validates an encoded state (nil: the snapshot
	// holds none, so the state is empty) and returns the function that
	// installs it. Restore itself changes nothing: a snapshot refused
	// anywhere leaves every part of the state machine as it was.
	Restore(state []byte) (install func(), err error)
}

// MaxExtensionName bounds an extension's name.
const MaxExtensionName = 64

func validExtName(name string) error {
	if name == "" || len(name) > MaxExtensionName {
		return fmt.Errorf("%w: extension name of %d bytes", model.ErrInvalid, len(name))
	}
	return nil
}

// Register adds extension e under name. It must be called before Raft
// starts (Config.Extensions does that for a Node).
func (f *FSM) Register(name string, e Extension) error {
	if err := validExtName(name); err != nil {
		return err
	}
	if _, dup := f.exts[name]; dup {
		return fmt.Errorf("raftcp: extension %q registered twice", name)
	}
	f.exts[name] = e
	return nil
}

// extNames returns the registered extensions' names, sorted (snapshots
// list them in a fixed order).
func (f *FSM) extNames() []string {
	names := make([]string, 0, len(f.exts))
	for n := range f.exts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (f *FSM) applyExt(c *ExtCommand) error {
	e := f.exts[c.Name]
	if e == nil {
		// Every node of one release refuses it alike; a node that knows the
		// extension (a newer release) would apply it, which is why a
		// release only adds extensions once every member runs it.
		return registry.Errorf(http.StatusBadRequest, "unknown state-machine extension %q", c.Name)
	}
	return e.Apply(c.Data)
}
