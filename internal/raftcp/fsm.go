package raftcp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/wire"
)

// KV errors, as FSM results.
var (
	ErrExists   = consistency.ErrExists
	ErrNotFound = consistency.ErrNotFound
)

// FSM is the CP state machine: the persistent part of every service (kept
// in the store, which serves reads) and the KV tables. Raft calls Apply,
// Snapshot and Restore from one goroutine; readers of the tables may run
// concurrently.
type FSM struct {
	st  *store.Store
	log *slog.Logger

	mu     sync.RWMutex
	tables map[string]map[string][]byte

	// exts are the state-machine extensions, fixed before Raft starts.
	exts map[string]Extension

	// applied is the index of the last command applied (or restored).
	applied atomic.Uint64
	// appliedCh is closed and replaced on every change of applied.
	chMu      sync.Mutex
	appliedCh chan struct{}
}

// NewFSM returns an empty state machine over st. It has no configurable
// limits: entries and snapshots are decoded with the protocol's fixed
// maxima (see DecodeCommand).
func NewFSM(st *store.Store, log *slog.Logger) *FSM {
	return &FSM{st: st, log: log, tables: map[string]map[string][]byte{}, exts: map[string]Extension{},
		appliedCh: make(chan struct{})}
}

// Applied returns the index of the last command applied.
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// appliedChanged returns a channel closed at the next change of Applied.
func (f *FSM) appliedChanged() <-chan struct{} {
	f.chMu.Lock()
	defer f.chMu.Unlock()
	return f.appliedCh
}

func (f *FSM) setApplied(i uint64) {
	f.applied.Store(i)
	f.chMu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.chMu.Unlock()
}

// Get returns the value of key in table as applied on this node.
func (f *FSM) Get(table, key string) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.tables[table][key]
	return v, ok
}

// List returns the entries of table, sorted by key.
func (f *FSM) List(table string) []KVEntry {
	f.mu.RLock()
	out := make([]KVEntry, 0, len(f.tables[table]))
	for k, v := range f.tables[table] {
		out = append(out, KVEntry{Key: k, Value: v})
	}
	f.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// KVEntry is consistency.KVEntry.
type KVEntry = consistency.KVEntry

// Result is what Apply returns for a command: nil Err on success.
type Result struct {
	Err error
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	defer f.setApplied(l.Index)
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		// Every node refuses the same bytes the same way, so skipping the
		// entry keeps the replicas equal.
		f.log.Error("raft log entry refused", "index", l.Index, "error", err)
		return Result{Err: err}
	}
	switch {
	case cmd.KV != nil:
		return Result{Err: f.applyKV(cmd.KV)}
	case cmd.Ext != nil:
		return Result{Err: f.applyExt(cmd.Ext)}
	}
	return Result{Err: f.applyOp(cmd.Op)}
}

func (f *FSM) applyKV(w *KVWrite) error {
	f.mu.Lock()
	t := f.tables[w.Table]
	_, present := t[w.Key]
	var err error
	switch w.Mode {
	case KVCreate:
		if present {
			err = ErrExists
		}
	case KVUpdate, KVDelete:
		if !present {
			err = ErrNotFound
		}
	}
	if err == nil {
		switch w.Mode {
		case KVDelete, KVDeleteIfPresent:
			delete(t, w.Key)
		default:
			if t == nil {
				t = map[string][]byte{}
				f.tables[w.Table] = t
			}
			t[w.Key] = w.Value
		}
	}
	f.mu.Unlock()
	return err
}

// applyOp applies a registry write to the persistent part of a service.
// Its checks use only the replicated state, so every node decides alike;
// checks that need the ephemeral side (a node-local, AP view) are made by
// the node that proposes the command (see Writer).
func (f *FSM) applyOp(op *registry.Op) error {
	return f.st.UpdatePersistent(op.Key, func(p *store.PTx) error {
		k := op.Instance.Key()
		switch op.Kind {
		case registry.OpRegister:
			in := op.Instance
			in.Ephemeral = false
			if cur := p.Instance(k); cur != nil && cur.Equal(&in) {
				return nil
			}
			p.Put(&in)
		case registry.OpDeregister:
			p.Delete(k) // idempotent, as in Nacos
		case registry.OpUpdate, registry.OpPatch:
			cur := p.Instance(k)
			if cur == nil {
				if p.Instances() == 0 && p.Settings() == nil {
					return registry.Errorf(http.StatusBadRequest, "service not found: %s", op.Key.Grouped())
				}
				return registry.Errorf(http.StatusBadRequest, "instance not found: %s in %s", k.String(), op.Key.Grouped())
			}
			next := *cur
			if op.Has(registry.FieldWeight) {
				next.Weight = op.Instance.Weight
			}
			if op.Has(registry.FieldEnabled) {
				next.Enabled = op.Instance.Enabled
			}
			if op.Has(registry.FieldHealthy) {
				next.Healthy = op.Instance.Healthy
			}
			if op.Has(registry.FieldMetadata) {
				next.Metadata = maps.Clone(op.Instance.Metadata)
			}
			if !next.Equal(cur) {
				// An update is not evidence that the instance is up: a
				// health check verdict stays (a registration lifts it).
				down := p.Down(k)
				p.Put(&next)
				p.SetDown(k, down)
			}
		case registry.OpCreateService:
			if p.Settings() != nil || p.Instances() > 0 {
				return registry.Errorf(http.StatusBadRequest, "specified service %s already exists!", op.Key.Grouped())
			}
			m := op.Service
			p.SetSettings(&m)
		case registry.OpUpdateService:
			m := op.Service
			if cur := p.Settings(); cur != nil {
				// Cluster settings have their own operation; a service
				// update keeps them, as in Nacos.
				m.Clusters = cur.Clusters
			}
			p.SetSettings(&m)
		case registry.OpUpdateCluster:
			next, changed, err := p.Settings().WithCluster(op.ClusterName, op.Cluster)
			if err != nil {
				return fmt.Errorf("service %s: %w", op.Key.Grouped(), err)
			}
			if changed {
				p.SetSettings(&next)
			}
		case registry.OpSetHealth:
			// A health check verdict carries the instance as it was
			// checked. It applies only to that instance: one deregistered
			// since is left alone, and one re-registered or changed since
			// (a new target, perhaps a fresh process) keeps its state until
			// the checker judges it again.
			cur := p.Instance(k)
			if cur == nil {
				return nil
			}
			checked := op.Instance
			checked.Healthy, checked.Ephemeral = cur.Healthy, false
			if !cur.Equal(&checked) {
				return nil
			}
			p.SetDown(k, !op.Instance.Healthy)
		case registry.OpDeleteService:
			if p.Instances() > 0 {
				return registry.Errorf(http.StatusBadRequest, "service %s is not empty, can't be delete. Please unregister instance first", op.Key.Grouped())
			}
			if p.Settings() != nil {
				p.SetSettings(nil)
			}
		default:
			return registry.Errorf(http.StatusBadRequest, "%s is not a persistent write", op.Kind)
		}
		return nil
	})
}

// snapshotMagic starts every snapshot file (format version 1).
const snapshotMagic = "distro-cp-snapshot-1\n"

// Snapshot implements raft.FSM: it captures the state (pointers to
// immutable values) on Raft's goroutine; Persist encodes it concurrently
// with later applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	s := &fsmSnapshot{applied: f.applied.Load()}
	f.st.RangePersistent(func(ps store.PersistentService) bool {
		s.services = append(s.services, ps)
		return true
	})
	f.mu.RLock()
	s.tables = make(map[string]map[string][]byte, len(f.tables))
	for name, t := range f.tables {
		s.tables[name] = maps.Clone(t)
	}
	f.mu.RUnlock()
	for _, name := range f.extNames() {
		s.exts = append(s.exts, extCapture{name: name, encode: f.exts[name].Snapshot()})
	}
	return s, nil
}

type fsmSnapshot struct {
	applied  uint64
	services []store.PersistentService
	tables   map[string]map[string][]byte
	exts     []extCapture
}

// extCapture is an extension's state as captured by Snapshot.
type extCapture struct {
	name   string
	encode func() ([]byte, error)
}

// Persist writes: magic | u64 applied index | length-delimited
// CPSnapshotItems | a zero length.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 256<<10)
	err := s.write(w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) write(w *bufio.Writer) error {
	if _, err := w.WriteString(snapshotMagic); err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], s.applied)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	var lenBuf [binary.MaxVarintLen64]byte
	put := func(it *clusterpb.CPSnapshotItem) error {
		b, err := proto.Marshal(it)
		if err != nil {
			return err
		}
		n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := w.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	for _, ps := range s.services {
		cs := &clusterpb.CPService{Key: wire.KeyToPB(ps.Key)}
		down := make(map[model.InstanceKey]bool, len(ps.Down))
		for _, k := range ps.Down {
			down[k] = true
		}
		for i, in := range ps.Instances {
			cs.Instances = append(cs.Instances, wire.InstanceToPB(in))
			if down[in.Key()] {
				cs.Down = append(cs.Down, uint32(i))
			}
		}
		if ps.Settings != nil {
			cs.Settings = wire.SettingsToPB(ps.Settings)
		}
		if err := put(&clusterpb.CPSnapshotItem{Kind: &clusterpb.CPSnapshotItem_Service{Service: cs}}); err != nil {
			return err
		}
	}
	for name, t := range s.tables {
		for k, v := range t {
			if err := put(&clusterpb.CPSnapshotItem{Kind: &clusterpb.CPSnapshotItem_Kv{Kv: &clusterpb.KVEntry{Table: name, Key: k, Value: v}}}); err != nil {
				return err
			}
		}
	}
	for _, e := range s.exts {
		data, err := e.encode()
		if err != nil {
			return fmt.Errorf("snapshot of extension %s: %w", e.name, err)
		}
		if err := put(&clusterpb.CPSnapshotItem{Kind: &clusterpb.CPSnapshotItem_Ext{Ext: &clusterpb.CPExtension{Name: e.name, Data: data}}}); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte{0})
	return err
}

func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM. The whole snapshot is decoded and validated
// before anything changes: a corrupt snapshot leaves the state as it was.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	applied, services, tables, exts, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	// Extensions validate their states before anything changes; one the
	// snapshot does not hold (written before it existed) restarts empty.
	var installs []func()
	for _, name := range f.extNames() {
		install, err := f.exts[name].Restore(exts[name])
		if err != nil {
			return fmt.Errorf("snapshot of extension %s: %w", name, err)
		}
		installs = append(installs, install)
	}
	for name := range exts {
		if f.exts[name] == nil {
			f.log.Warn("snapshot holds the state of an unknown state-machine extension; ignored", "extension", name)
		}
	}
	f.st.ClearPersistent()
	for _, ps := range services {
		_ = f.st.UpdatePersistent(ps.Key, func(p *store.PTx) error {
			for _, in := range ps.Instances {
				p.Put(in)
			}
			for _, k := range ps.Down {
				p.SetDown(k, true)
			}
			if ps.Settings != nil {
				p.SetSettings(ps.Settings)
			}
			return nil
		})
	}
	f.mu.Lock()
	f.tables = tables
	f.mu.Unlock()
	for _, install := range installs {
		install()
	}
	f.setApplied(applied)
	return nil
}

// ReadSnapshot decodes and validates a snapshot file (tests and tools use
// it too). exts holds the extensions' encoded states, by name; they are
// validated by the extensions themselves (Extension.Restore). Like log
// entries, items are checked against the protocol's fixed maxima only: a
// snapshot never fails because of this node's configurable limits.
func ReadSnapshot(r io.Reader) (applied uint64, services []store.PersistentService, tables map[string]map[string][]byte,
	exts map[string][]byte, err error) {
	lim := model.ProtocolLimits()
	br := bufio.NewReaderSize(r, 256<<10)
	m := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, m); err != nil || string(m) != snapshotMagic {
		return 0, nil, nil, nil, fmt.Errorf("%w: not a CP snapshot", model.ErrInvalid)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, nil, nil, nil, fmt.Errorf("snapshot header: %w", err)
	}
	applied = binary.BigEndian.Uint64(hdr[:])
	tables = map[string]map[string][]byte{}
	exts = map[string][]byte{}
	seen := map[model.ServiceKey]bool{}
	buf := make([]byte, 0, 4096)
	for {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, nil, nil, nil, fmt.Errorf("snapshot item length: %w", err)
		}
		if n == 0 {
			return applied, services, tables, exts, nil
		}
		if n > 64<<20 {
			return 0, nil, nil, nil, fmt.Errorf("%w: snapshot item of %d bytes", model.ErrInvalid, n)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return 0, nil, nil, nil, fmt.Errorf("snapshot item: %w", err)
		}
		var it clusterpb.CPSnapshotItem
		if err := proto.Unmarshal(buf, &it); err != nil {
			return 0, nil, nil, nil, fmt.Errorf("%w: snapshot item: %v", model.ErrInvalid, err)
		}
		switch k := it.GetKind().(type) {
		case *clusterpb.CPSnapshotItem_Service:
			key, err := wire.KeyFromPB(k.Service.GetKey(), lim)
			if err != nil {
				return 0, nil, nil, nil, err
			}
			if seen[key] {
				return 0, nil, nil, nil, fmt.Errorf("%w: service %s twice in snapshot", model.ErrInvalid, key)
			}
			seen[key] = true
			ps := store.PersistentService{Key: key}
			ids := map[model.InstanceKey]bool{}
			for _, pi := range k.Service.GetInstances() {
				in, err := wire.InstanceFromPB(pi, lim)
				if err != nil {
					return 0, nil, nil, nil, fmt.Errorf("service %s: %w", key, err)
				}
				in.Ephemeral = false
				if ids[in.Key()] {
					return 0, nil, nil, nil, fmt.Errorf("%w: instance %s twice in %s", model.ErrInvalid, in.Key(), key)
				}
				ids[in.Key()] = true
				ps.Instances = append(ps.Instances, in)
			}
			for _, i := range k.Service.GetDown() {
				if int(i) >= len(ps.Instances) {
					return 0, nil, nil, nil, fmt.Errorf("%w: service %s: verdict of instance %d of %d", model.ErrInvalid, key, i, len(ps.Instances))
				}
				ps.Down = append(ps.Down, ps.Instances[i].Key())
			}
			if s := k.Service.GetSettings(); s != nil {
				m, err := wire.SettingsFromPB(s, lim)
				if err != nil {
					return 0, nil, nil, nil, fmt.Errorf("service %s: %w", key, err)
				}
				ps.Settings = &m
			}
			services = append(services, ps)
		case *clusterpb.CPSnapshotItem_Kv:
			e := k.Kv
			if err := validateKV(e.GetTable(), e.GetKey(), e.GetValue()); err != nil {
				return 0, nil, nil, nil, err
			}
			t := tables[e.GetTable()]
			if t == nil {
				t = map[string][]byte{}
				tables[e.GetTable()] = t
			}
			t[e.GetKey()] = e.GetValue()
		case *clusterpb.CPSnapshotItem_Ext:
			name := k.Ext.GetName()
			if err := validExtName(name); err != nil {
				return 0, nil, nil, nil, err
			}
			if _, dup := exts[name]; dup {
				return 0, nil, nil, nil, fmt.Errorf("%w: extension %s twice in snapshot", model.ErrInvalid, name)
			}
			// An empty state is still a state (not "absent").
			exts[name] = append([]byte{}, k.Ext.GetData()...)
		default:
			return 0, nil, nil, nil, fmt.Errorf("%w: unknown snapshot item", model.ErrInvalid)
		}
	}
}
