package grpcapi

import "iter"

// smallMapMax is how many entries a smallMap keeps in its slice before it
// moves them to a map.
const smallMapMax = 8

// smallMap is a map for the per-connection sets (subscriptions, services,
// pending pushes), which hold one or a few entries for nearly every
// client: up to smallMapMax entries live in a slice searched linearly (one
// allocation of a few dozen bytes, where a Go map costs a 500–600-byte
// group for its first entry); beyond that, a map. The zero value is empty
// and ready to use; it is not safe for concurrent use.
type smallMap[K comparable, V any] struct {
	list []smallEntry[K, V]
	m    map[K]V
}

type smallEntry[K comparable, V any] struct {
	k K
	v V
}

func (s *smallMap[K, V]) len() int {
	if s.m != nil {
		return len(s.m)
	}
	return len(s.list)
}

func (s *smallMap[K, V]) get(k K) (V, bool) {
	if s.m != nil {
		v, ok := s.m[k]
		return v, ok
	}
	for i := range s.list {
		if s.list[i].k == k {
			return s.list[i].v, true
		}
	}
	var zero V
	return zero, false
}

func (s *smallMap[K, V]) put(k K, v V) {
	if s.m != nil {
		s.m[k] = v
		return
	}
	for i := range s.list {
		if s.list[i].k == k {
			s.list[i].v = v
			return
		}
	}
	if len(s.list) < smallMapMax {
		if s.list == nil {
			s.list = make([]smallEntry[K, V], 0, 1)
		}
		s.list = append(s.list, smallEntry[K, V]{k, v})
		return
	}
	s.m = make(map[K]V, 2*smallMapMax)
	for _, e := range s.list {
		s.m[e.k] = e.v
	}
	s.m[k] = v
	s.list = nil
}

func (s *smallMap[K, V]) delete(k K) {
	if s.m != nil {
		delete(s.m, k)
		return
	}
	for i := range s.list {
		if s.list[i].k == k {
			last := len(s.list) - 1
			s.list[i] = s.list[last]
			s.list[last] = smallEntry[K, V]{}
			s.list = s.list[:last]
			return
		}
	}
}

// all yields every entry; the set must not change meanwhile.
func (s *smallMap[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if s.m != nil {
			for k, v := range s.m {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		for _, e := range s.list {
			if !yield(e.k, e.v) {
				return
			}
		}
	}
}

// keys returns the keys in a new slice.
func (s *smallMap[K, V]) keys() []K {
	out := make([]K, 0, s.len())
	for k := range s.all() {
		out = append(out, k)
	}
	return out
}
