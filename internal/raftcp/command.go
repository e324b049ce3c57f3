package raftcp

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/consistency"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/wire"
)

// KV write modes and entries are the consistency seam's.
type (
	// KVMode is consistency.KVMode.
	KVMode = consistency.KVMode
	// KVWrite is consistency.KVWrite.
	KVWrite = consistency.KVWrite
)

// Modes, re-exported for the state machine's switch.
const (
	KVUpsert          = consistency.KVUpsert
	KVCreate          = consistency.KVCreate
	KVUpdate          = consistency.KVUpdate
	KVDelete          = consistency.KVDelete
	KVDeleteIfPresent = consistency.KVDeleteIfPresent
)

// Bounds of KV entries.
const (
	MaxTableLen = 64
	MaxKeyLen   = 512
	MaxValueLen = 64 << 10
	// MaxCommandBytes bounds one encoded command.
	MaxCommandBytes = 1 << 20
)

// Command is one decoded Raft log entry: exactly one of Op, KV and Ext is
// set.
type Command struct {
	Op  *registry.Op
	KV  *KVWrite
	Ext *ExtCommand
}

// ExtCommand is a command of a state-machine extension (see Extension).
type ExtCommand struct {
	Name string
	Data []byte
}

// EncodeOp encodes a registry write on the persistent part of a service.
func EncodeOp(op *registry.Op) ([]byte, error) {
	return proto.Marshal(&clusterpb.CPCommand{Kind: &clusterpb.CPCommand_Op{Op: wire.OpToPB(op)}})
}

// EncodeKV encodes a KV write.
func EncodeKV(w KVWrite) ([]byte, error) {
	if err := validateKV(w.Table, w.Key, w.Value); err != nil {
		return nil, err
	}
	return proto.Marshal(&clusterpb.CPCommand{Kind: &clusterpb.CPCommand_Kv{Kv: &clusterpb.KVWrite{
		Table: w.Table, Key: w.Key, Value: w.Value, Mode: uint32(w.Mode)}}})
}

// EncodeExt encodes a command of extension name.
func EncodeExt(name string, data []byte) ([]byte, error) {
	if err := validExtName(name); err != nil {
		return nil, err
	}
	b, err := proto.Marshal(&clusterpb.CPCommand{Kind: &clusterpb.CPCommand_Ext{Ext: &clusterpb.CPExtension{Name: name, Data: data}}})
	if err == nil && len(b) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: command of %d bytes; the limit is %d", model.ErrInvalid, len(b), MaxCommandBytes)
	}
	return b, err
}

func validateKV(table, key string, value []byte) error {
	switch {
	case table == "" || len(table) > MaxTableLen:
		return fmt.Errorf("%w: table name of %d bytes", model.ErrInvalid, len(table))
	case key == "" || len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes", model.ErrInvalid, len(key))
	case len(value) > MaxValueLen:
		return fmt.Errorf("%w: value of %d bytes; the limit is %d", model.ErrInvalid, len(value), MaxValueLen)
	}
	return nil
}

// DecodeCommand decodes and validates one log entry. Every field is
// checked with the rules client input gets, bounded by the protocol's
// fixed maxima (model.ProtocolLimits), never by this node's configurable
// limits: those are the entry points' policy, checked before a command is
// proposed. So every node decides alike whatever its configuration, and a
// node restarted with lower limits keeps what it had applied; a corrupt
// or hostile entry is still refused instead of reaching the store.
func DecodeCommand(b []byte) (*Command, error) {
	l := model.ProtocolLimits()
	if len(b) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: command of %d bytes", model.ErrInvalid, len(b))
	}
	var pb clusterpb.CPCommand
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: malformed command: %v", model.ErrInvalid, err)
	}
	switch k := pb.GetKind().(type) {
	case *clusterpb.CPCommand_Op:
		op, err := wire.OpFromPB(k.Op, l)
		if err != nil {
			return nil, err
		}
		if op.Kind == registry.OpBeat || op.Conn != "" {
			return nil, fmt.Errorf("%w: %s is not a persistent write", model.ErrInvalid, op.Kind)
		}
		op.Instance.Ephemeral = false
		return &Command{Op: op}, nil
	case *clusterpb.CPCommand_Kv:
		w := KVWrite{Table: k.Kv.GetTable(), Key: k.Kv.GetKey(), Value: k.Kv.GetValue(), Mode: KVMode(k.Kv.GetMode())}
		if err := validateKV(w.Table, w.Key, w.Value); err != nil {
			return nil, err
		}
		if w.Mode < KVUpsert || w.Mode > KVDeleteIfPresent {
			return nil, fmt.Errorf("%w: kv mode %d", model.ErrInvalid, w.Mode)
		}
		return &Command{KV: &w}, nil
	case *clusterpb.CPCommand_Ext:
		if err := validExtName(k.Ext.GetName()); err != nil {
			return nil, err
		}
		return &Command{Ext: &ExtCommand{Name: k.Ext.GetName(), Data: k.Ext.GetData()}}, nil
	}
	return nil, fmt.Errorf("%w: empty or unknown command", model.ErrInvalid)
}
