package clusterpb

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func rec(i, pad int) *Record {
	return &Record{
		Instance: &Instance{InstanceId: fmt.Sprintf("10.0.%d.%d#8080", i/256, i%256), Ip: "10.0.0.1", Port: 8080,
			Metadata: map[string]string{"pad": strings.Repeat("m", pad)}},
		Stamp: uint64(i), Origin: "n1:8848",
	}
}

func keyRecords(name string, n, pad int) *KeyRecords {
	kr := &KeyRecords{Key: &ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: name},
		Meta: &ServiceMeta{ProtectThreshold: 0.5, Stamp: 1}}
	for i := range n {
		kr.Records = append(kr.Records, rec(i, pad))
	}
	return kr
}

func TestChunkerBoundsAndOrder(t *testing.T) {
	const budget = MinChunkBytes
	var chunks []*SnapshotChunk
	total := 0
	c := NewChunker(budget, func(ch *SnapshotChunk) error {
		if got := proto.Size(&Response{Kind: &Response_Chunk{Chunk: ch}}); got > budget+8 {
			t.Fatalf("chunk %d is %d bytes, budget %d", ch.Seq, got, budget)
		}
		chunks = append(chunks, ch)
		total += proto.Size(ch)
		return nil
	})
	in := map[string]int{}
	for i := range 300 {
		n := 1 + i%7
		if i == 150 {
			n = 3000 // one key far larger than a chunk: must be split
		}
		name := fmt.Sprintf("svc-%d", i)
		in[name] = n
		if err := c.Add(keyRecords(name, n, 40)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 2 || len(chunks) > 2*total/budget+1 {
		t.Fatalf("%d chunks for %d bytes at budget %d", len(chunks), total, budget)
	}
	out := map[string]int{}
	metas := map[string]int{}
	for i, ch := range chunks {
		if ch.Seq != uint64(i) || ch.Last != (i == len(chunks)-1) {
			t.Fatalf("chunk %d: seq %d last %v", i, ch.Seq, ch.Last)
		}
		for _, e := range ch.Entries {
			out[e.Key.Name] += len(e.Records)
			if e.Meta != nil {
				metas[e.Key.Name]++
			}
		}
	}
	for name, n := range in {
		if out[name] != n || metas[name] != 1 {
			t.Fatalf("%s: %d records (want %d), meta %d times", name, out[name], n, metas[name])
		}
	}
}

func TestChunkerEmptyAndErrors(t *testing.T) {
	var got []*SnapshotChunk
	c := NewChunker(0, func(ch *SnapshotChunk) error { got = append(got, ch); return nil })
	if err := c.Close(); err != nil || len(got) != 1 || !got[0].Last {
		t.Fatalf("empty snapshot: %v %v", err, got)
	}
	if c.Close() == nil || c.Add(keyRecords("x", 1, 0)) == nil {
		t.Fatal("use after Close accepted")
	}
	c = NewChunker(0, func(*SnapshotChunk) error { return nil })
	if err := c.Add(keyRecords("huge", 1, MinChunkBytes)); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	boom := errors.New("boom")
	c = NewChunker(0, func(*SnapshotChunk) error { return boom })
	if err := c.Close(); !errors.Is(err, boom) {
		t.Fatalf("send error not returned: %v", err)
	}
}

func TestChunkBudget(t *testing.T) {
	for in, want := range map[uint32]int{0: DefaultChunkBytes, 1: MinChunkBytes, 1 << 30: MaxChunkBytes, 200 << 10: 200 << 10} {
		if got := ChunkBudget(in); got != want {
			t.Errorf("ChunkBudget(%d) = %d, want %d", in, got, want)
		}
	}
}
