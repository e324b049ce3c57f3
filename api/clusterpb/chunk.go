package clusterpb

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Chunk size bounds for snapshot streaming. A snapshot is never one
// message: it is a stream of SnapshotChunks each at most a few MiB, so its
// total size has no cliff (Nacos #7429, #14492: a 10 MB gRPC limit stopped
// initial load of large registries).
const (
	// DefaultChunkBytes is the chunk budget used when a SnapshotRequest
	// asks for none.
	DefaultChunkBytes = 1 << 20
	// MinChunkBytes is the smallest budget a Chunker accepts; smaller
	// requests are raised to it.
	MinChunkBytes = 64 << 10
	// MaxChunkBytes is the largest budget a Chunker accepts; larger
	// requests are lowered to it. Transports refuse bigger chunks.
	MaxChunkBytes = 4 << 20
)

// ErrEntryTooLarge reports a single Record that cannot fit in a chunk even
// on its own.
var ErrEntryTooLarge = errors.New("clusterpb: record larger than the chunk budget")

// chunkReserve covers SnapshotChunk.last and .seq (tag + up to 10 bytes).
const chunkReserve = 16

// ChunkBudget returns the effective chunk budget for a requested size:
// DefaultChunkBytes for 0, otherwise clamped to [MinChunkBytes, MaxChunkBytes].
func ChunkBudget(requested uint32) int {
	switch {
	case requested == 0:
		return DefaultChunkBytes
	case requested < MinChunkBytes:
		return MinChunkBytes
	case requested > MaxChunkBytes:
		return MaxChunkBytes
	default:
		return int(requested)
	}
}

// Chunker cuts a sequence of KeyRecords into SnapshotChunks whose
// serialized size stays within a budget, numbering them from 0 and marking
// the final one last. A KeyRecords too large for one chunk is split into
// several KeyRecords for the same key (the ServiceMeta travels with the
// first); receivers must therefore merge snapshot entries per record, never
// replace a key's records wholesale. A Chunker is not safe for concurrent
// use.
type Chunker struct {
	budget int
	send   func(*SnapshotChunk) error
	cur    *SnapshotChunk
	size   int // serialized size of cur.Entries
	seq    uint64
	closed bool
}

// NewChunker returns a Chunker that passes each full chunk to send.
// budget is a byte budget as from ChunkBudget (raised to MinChunkBytes if
// smaller).
func NewChunker(budget int, send func(*SnapshotChunk) error) *Chunker {
	budget = max(budget, MinChunkBytes)
	return &Chunker{budget: budget - chunkReserve, send: send, cur: &SnapshotChunk{}}
}

// Add appends kr to the current chunk, flushing first when it would not
// fit. kr is referenced, not copied, until its chunk is sent.
func (c *Chunker) Add(kr *KeyRecords) error {
	if c.closed {
		return errors.New("clusterpb: Chunker used after Close")
	}
	n := entrySize(sizeKeyRecords(kr))
	if n <= c.budget {
		if c.size+n > c.budget {
			if err := c.flush(false); err != nil {
				return err
			}
		}
		c.cur.Entries = append(c.cur.Entries, kr)
		c.size += n
		return nil
	}
	return c.split(kr)
}

// split adds an oversized kr as several KeyRecords for the same key.
func (c *Chunker) split(kr *KeyRecords) error {
	part := &KeyRecords{Key: kr.Key, Meta: kr.Meta}
	partSize := sizeKeyRecords(part)
	if entrySize(partSize) > c.budget {
		return fmt.Errorf("%w: key and meta alone take %d bytes", ErrEntryTooLarge, partSize)
	}
	// Invariant below: part always fits in what is left of the current chunk.
	if entrySize(partSize) > c.budget-c.size {
		if err := c.flush(false); err != nil {
			return err
		}
	}
	for _, r := range kr.Records {
		rs := entrySize(sizeRecord(r))
		if entrySize(partSize+rs) > c.budget-c.size {
			if len(part.Records) > 0 || part.Meta != nil {
				c.cur.Entries = append(c.cur.Entries, part)
				c.size += entrySize(partSize)
				part = &KeyRecords{Key: kr.Key}
				partSize = sizeKeyRecords(part)
			}
			if c.size > 0 {
				if err := c.flush(false); err != nil {
					return err
				}
			}
			if entrySize(partSize+rs) > c.budget {
				return fmt.Errorf("%w: %d bytes", ErrEntryTooLarge, rs)
			}
		}
		part.Records = append(part.Records, r)
		partSize += rs
	}
	if len(part.Records) > 0 || part.Meta != nil {
		c.cur.Entries = append(c.cur.Entries, part)
		c.size += entrySize(partSize)
	}
	return nil
}

// Close sends the remaining entries as the last chunk (possibly empty, so
// the receiver always sees last = true). It must be called exactly once,
// after the final Add.
func (c *Chunker) Close() error {
	if c.closed {
		return errors.New("clusterpb: Chunker closed twice")
	}
	c.closed = true
	return c.flush(true)
}

func (c *Chunker) flush(last bool) error {
	ch := c.cur
	ch.Last, ch.Seq = last, c.seq
	c.seq++
	c.cur, c.size = &SnapshotChunk{}, 0
	return c.send(ch)
}

// entrySize is the encoded size of a length-delimited field of n bytes with
// a one-byte tag.
func entrySize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// Sizes of the snapshot's messages, computed by hand: proto.Size walks a
// map with reflection, and a snapshot sizes every record's metadata once
// here and once again when the chunk is marshaled. TestSizes checks them
// against proto.Size for every field.

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func sizeMessage(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeServiceKey(k *ServiceKey) int {
	if k == nil {
		return 0
	}
	return sizeString(1, k.GetNamespace()) + sizeString(2, k.GetGroup()) + sizeString(3, k.GetName())
}

func sizeInstance(in *Instance) int {
	n := sizeString(1, in.GetInstanceId()) + sizeString(2, in.GetIp()) + sizeString(8, in.GetCluster())
	if p := in.GetPort(); p != 0 {
		n += protowire.SizeTag(3) + protowire.SizeVarint(uint64(int64(p)))
	}
	if w := in.GetWeight(); math.Float64bits(w) != 0 {
		n += protowire.SizeTag(4) + protowire.SizeFixed64()
	}
	for _, b := range []bool{in.GetHealthy(), in.GetEnabled(), in.GetEphemeral()} {
		if b {
			n += 2 // tags 5, 6, 7 take one byte, the value one
		}
	}
	for k, v := range in.GetMetadata() {
		// A map entry is a message of key (1) and value (2), both always
		// written.
		e := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
		n += sizeMessage(9, e)
	}
	return n
}

func sizeRecord(r *Record) int {
	n := sizeString(3, r.GetOrigin()) + sizeString(5, r.GetConn()) + sizeString(6, r.GetConnNode())
	if in := r.GetInstance(); in != nil {
		n += sizeMessage(1, sizeInstance(in))
	}
	if r.GetStamp() != 0 {
		n += protowire.SizeTag(2) + protowire.SizeFixed64()
	}
	if k := r.GetKind(); k != 0 {
		n += protowire.SizeTag(4) + protowire.SizeVarint(uint64(k))
	}
	if sk := r.GetSuspected(); sk != 0 {
		n += protowire.SizeTag(7) + protowire.SizeVarint(uint64(sk))
	}
	return n
}

func sizeKeyRecords(kr *KeyRecords) int {
	n := 0
	if k := kr.GetKey(); k != nil {
		n += sizeMessage(1, sizeServiceKey(k))
	}
	for _, r := range kr.GetRecords() {
		n += sizeMessage(2, sizeRecord(r))
	}
	if m := kr.GetMeta(); m != nil {
		n += sizeMessage(3, proto.Size(m)) // rare: settings, not per record
	}
	return n
}

// Encoding of snapshot chunks by hand, with the sizes above: proto.Marshal
// sizes and writes every record's metadata map through reflection, which
// made up most of serving a snapshot. MarshalSnapshotChunk's output
// decodes to the same message (TestMarshalSnapshotChunk).

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendInstance(b []byte, in *Instance) []byte {
	b = appendString(b, 1, in.GetInstanceId())
	b = appendString(b, 2, in.GetIp())
	if p := in.GetPort(); p != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(p)))
	}
	if w := in.GetWeight(); math.Float64bits(w) != 0 {
		b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(w))
	}
	for i, v := range []bool{in.GetHealthy(), in.GetEnabled(), in.GetEphemeral()} {
		if v {
			b = protowire.AppendTag(b, protowire.Number(5+i), protowire.VarintType)
			b = append(b, 1)
		}
	}
	b = appendString(b, 8, in.GetCluster())
	for k, v := range in.GetMetadata() {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(1)+protowire.SizeBytes(len(k))+protowire.SizeTag(2)+protowire.SizeBytes(len(v))))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

func appendRecord(b []byte, r *Record) []byte {
	if in := r.GetInstance(); in != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeInstance(in)))
		b = appendInstance(b, in)
	}
	if st := r.GetStamp(); st != 0 {
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, st)
	}
	b = appendString(b, 3, r.GetOrigin())
	if k := r.GetKind(); k != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k))
	}
	b = appendString(b, 5, r.GetConn())
	b = appendString(b, 6, r.GetConnNode())
	if sk := r.GetSuspected(); sk != 0 {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sk))
	}
	return b
}

func appendKeyRecords(b []byte, kr *KeyRecords) ([]byte, error) {
	if k := kr.GetKey(); k != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeServiceKey(k)))
		b = appendString(b, 1, k.GetNamespace())
		b = appendString(b, 2, k.GetGroup())
		b = appendString(b, 3, k.GetName())
	}
	for _, r := range kr.GetRecords() {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeRecord(r)))
		b = appendRecord(b, r)
	}
	if m := kr.GetMeta(); m != nil {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(proto.Size(m)))
		var err error
		if b, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(b, m); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// SizeSnapshotChunk is the encoded size of c.
func SizeSnapshotChunk(c *SnapshotChunk) int {
	n := 0
	for _, kr := range c.GetEntries() {
		n += sizeMessage(1, sizeKeyRecords(kr))
	}
	if c.GetLast() {
		n += 2
	}
	if s := c.GetSeq(); s != 0 {
		n += protowire.SizeTag(3) + protowire.SizeVarint(s)
	}
	return n
}

// AppendSnapshotChunk appends the protobuf encoding of c to b.
func AppendSnapshotChunk(b []byte, c *SnapshotChunk) ([]byte, error) {
	for _, kr := range c.GetEntries() {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeKeyRecords(kr)))
		var err error
		if b, err = appendKeyRecords(b, kr); err != nil {
			return nil, err
		}
	}
	if c.GetLast() {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = append(b, 1)
	}
	if s := c.GetSeq(); s != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, s)
	}
	return b, nil
}

// responseChunkField is Response.chunk's field number.
const responseChunkField = 7

// AppendChunkResponse appends the encoding of Response{Kind: chunk c}, as
// proto.Marshal writes it.
func AppendChunkResponse(b []byte, c *SnapshotChunk) ([]byte, error) {
	n := SizeSnapshotChunk(c)
	if b == nil {
		b = make([]byte, 0, sizeMessage(responseChunkField, n))
	}
	b = protowire.AppendTag(b, responseChunkField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	return AppendSnapshotChunk(b, c)
}
