package grpcapi

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// TestSmallMap runs random puts and deletes on a smallMap and a Go map
// side by side, across the move from the slice to the map, and compares
// every read.
func TestSmallMap(t *testing.T) {
	for _, keys := range []int{1, 3, smallMapMax, smallMapMax + 1, 40} {
		r := rand.New(rand.NewPCG(1, uint64(keys)))
		var s smallMap[int, int]
		want := map[int]int{}
		for step := range 2000 {
			k := r.IntN(keys)
			switch r.IntN(3) {
			case 0, 1:
				s.put(k, step)
				want[k] = step
			case 2:
				s.delete(k)
				delete(want, k)
			}
			if s.len() != len(want) {
				t.Fatalf("keys %d step %d: len %d, want %d", keys, step, s.len(), len(want))
			}
			for k := range keys {
				v, ok := s.get(k)
				wv, wok := want[k]
				if v != wv || ok != wok {
					t.Fatalf("keys %d step %d: get(%d) = %d %v, want %d %v", keys, step, k, v, ok, wv, wok)
				}
			}
			got := maps.Collect(s.all())
			if !maps.Equal(got, want) {
				t.Fatalf("keys %d step %d: all() = %v, want %v", keys, step, got, want)
			}
			if ks := s.keys(); len(ks) != len(want) {
				t.Fatalf("keys %d step %d: keys() = %v", keys, step, ks)
			}
		}
	}
}

// TestSmallMapStaysSmall: a set that never holds more than smallMapMax
// entries never allocates a map.
func TestSmallMapStaysSmall(t *testing.T) {
	var s smallMap[string, struct{}]
	for i := range 100 {
		s.put(string(rune('a'+i%smallMapMax)), struct{}{})
		if i%3 == 0 {
			s.delete(string(rune('a' + (i+1)%smallMapMax)))
		}
	}
	if s.m != nil {
		t.Fatalf("a map was allocated for at most %d keys", smallMapMax)
	}
	for i := range smallMapMax + 1 {
		s.put(string(rune('A'+i)), struct{}{})
	}
	if s.m == nil || s.list != nil {
		t.Fatalf("%d keys: still a slice", s.len())
	}
}
