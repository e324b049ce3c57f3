package clusterpb

import (
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fillRandom sets every field of m (recursively, maps and lists too) to
// random values, zero values included, so that a field added to the
// schema is exercised without changing this test.
func fillRandom(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if r.IntN(4) == 0 {
			continue // some left unset
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range r.IntN(4) {
				var v protoreflect.Value
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v = mp.NewValue()
					if depth < 4 {
						fillRandom(r, v.Message(), depth+1)
					}
				} else {
					v = scalar(r, fd.MapValue(), m, depth)
				}
				mp.Set(protoreflect.ValueOfString(randString(r)).MapKey(), v)
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.IntN(3) {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					if depth < 4 {
						fillRandom(r, e.Message(), depth+1)
					}
					l.Append(e)
				} else {
					l.Append(scalar(r, fd, m, depth))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth < 4 {
				fillRandom(r, m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, scalar(r, fd, m, depth))
		}
	}
}

func randString(r *rand.Rand) string {
	b := make([]byte, []int{0, 1, 5, 130}[r.IntN(4)])
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

func scalar(r *rand.Rand, fd protoreflect.FieldDescriptor, m protoreflect.Message, depth int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(randString(r))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32([]int32{0, 1, 8080, 65535, -1, math.MaxInt32}[r.IntN(6)])
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, 3, 300, math.MaxUint32}[r.IntN(5)])
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64([]int64{0, 1, -5, math.MaxInt64}[r.IntN(4)])
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64([]uint64{0, 1, math.MaxUint64, 1 << 40}[r.IntN(4)])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, 1, 0.5, math.Copysign(0, -1), 1e300}[r.IntN(5)])
	case protoreflect.MessageKind:
		v := m.NewField(fd)
		if depth < 4 {
			fillRandom(r, v.Message(), depth+1)
		}
		return v
	}
	return fd.Default()
}

// TestSizes: the hand-written sizes equal proto.Size for records and key
// records with every field set or not.
func TestSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		rec := &Record{}
		fillRandom(r, rec.ProtoReflect(), 0)
		if got, want := sizeRecord(rec), proto.Size(rec); got != want {
			t.Fatalf("sizeRecord = %d, proto.Size = %d for %v", got, want, rec)
		}
		kr := &KeyRecords{}
		fillRandom(r, kr.ProtoReflect(), 0)
		if got, want := sizeKeyRecords(kr), proto.Size(kr); got != want {
			t.Fatalf("sizeKeyRecords = %d, proto.Size = %d for %v", got, want, kr)
		}
	}
}

// TestMarshalSnapshotChunk: the hand encoding has proto.Size's length and
// decodes to the message it encodes.
func TestMarshalSnapshotChunk(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		c := &SnapshotChunk{}
		fillRandom(r, c.ProtoReflect(), 0)
		b, err := AppendSnapshotChunk(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != proto.Size(c) || SizeSnapshotChunk(c) != len(b) {
			t.Fatalf("encoded %d bytes, size %d, proto.Size %d", len(b), SizeSnapshotChunk(c), proto.Size(c))
		}
		var back SnapshotChunk
		if err := proto.Unmarshal(b, &back); err != nil || !proto.Equal(&back, c) {
			t.Fatalf("round trip: %v\n got  %v\n want %v", err, &back, c)
		}
		rb, err := AppendChunkResponse(nil, c)
		var resp Response
		if err != nil || proto.Unmarshal(rb, &resp) != nil || !proto.Equal(resp.GetChunk(), c) || len(rb) != proto.Size(&Response{Kind: &Response_Chunk{Chunk: c}}) {
			t.Fatalf("response encoding: %v", err)
		}
	}
}
