package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
)

// Store keeps the auth State durable (and, in a cluster, replicated). It is
// the seam where the CP (Raft) layer plugs in (internal/authcp, which
// distrod uses): such a store replicates the encoded Change through its
// log, and every node's state machine calls State.Apply and then the
// watchers.
type Store interface {
	// State returns the current State (never nil).
	State() *State
	// Apply makes c durable (in a cluster: committed) and applies it,
	// returning the new State, or an *Error if the change is refused.
	Apply(ctx context.Context, c Change) (*State, error)
	// Watch calls fn with every later State, including states made by
	// changes applied elsewhere (replication). fn runs on the goroutine that
	// applied the change and must not call Apply.
	Watch(fn func(*State))
}

// fileVersion is the format version of FileStore files.
const fileVersion = 1

// fileDoc is the JSON document of a FileStore.
type fileDoc struct {
	Version int `json:"version"`
	State
}

// FileStore keeps the State in one JSON file, rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) on every change.
// It was distrod's store before the auth data moved to Raft; its file is
// what an upgraded node seeds the replicated store with.
type FileStore struct {
	path string

	mu       sync.Mutex
	cur      *State
	watchers []func(*State)
}

// OpenFileStore loads path (an absent file is an empty State).
func OpenFileStore(path string) (*FileStore, error) {
	st, err := ReadStateFile(path)
	if err != nil {
		return nil, err
	}
	return &FileStore{path: path, cur: st}, nil
}

// ReadStateFile reads and checks a FileStore file; an absent file is an
// empty State.
func ReadStateFile(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth store: %w", err)
	}
	st, err := DecodeState(data)
	if err != nil {
		return nil, fmt.Errorf("auth store %s: %w", path, err)
	}
	return st, nil
}

// DecodeState decodes and checks a stored State (the FileStore format; a
// CP store's snapshot can use it too). Unknown fields, another format
// version or any invalid entry refuse the whole document.
func DecodeState(data []byte) (*State, error) {
	var doc fileDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the document")
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("format version %d, want %d", doc.Version, fileVersion)
	}
	if err := doc.State.Normalize(); err != nil {
		return nil, err
	}
	return &doc.State, nil
}

// EncodeState is the inverse of DecodeState.
func EncodeState(s *State) ([]byte, error) {
	return json.MarshalIndent(fileDoc{Version: fileVersion, State: *s}, "", "  ")
}

// EncodeChange and DecodeChange are a Change's log entry form (JSON), for a
// store that replicates changes.
func EncodeChange(c Change) ([]byte, error) { return json.Marshal(c) }

// DecodeChange decodes a log entry; unknown fields are refused.
func DecodeChange(data []byte) (Change, error) {
	var c Change
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&c)
	return c, err
}

// State returns the current State.
func (f *FileStore) State() *State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// Watch registers fn for later states.
func (f *FileStore) Watch(fn func(*State)) {
	f.mu.Lock()
	f.watchers = append(f.watchers, fn)
	f.mu.Unlock()
}

// Apply applies c and writes the file before it returns; on a write error
// nothing changes.
func (f *FileStore) Apply(_ context.Context, c Change) (*State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next, err := f.cur.Apply(c)
	if err != nil {
		return nil, err
	}
	if next == f.cur {
		return next, nil
	}
	if err := WriteStateFile(f.path, next); err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Msg: "cannot store the change: " + err.Error()}
	}
	f.cur = next
	for _, w := range f.watchers {
		w(next)
	}
	return next, nil
}

// WriteStateFile writes s to path atomically with mode 0600 (the file
// holds password hashes).
func WriteStateFile(path string, s *State) error {
	data, err := EncodeState(s)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'), 0o600)
}

// WriteFileAtomic replaces path with data: a reader sees the old or the
// new content, never a mix, also across a crash.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after the rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
