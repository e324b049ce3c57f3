package model

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Interning. Decoders return strings that share memory with the request
// they were read from (a substring of the body keeps the whole body
// alive), and most of what an instance carries repeats across instances
// (cluster, namespace, group, metadata keys and values, the node ids of
// versions). What the registry keeps is therefore interned: Intern
// returns a canonical copy of a string, shared by every caller that
// interns an equal one.
//
// The table is a fixed-size, lossy cache (a collision replaces the older
// entry), so it needs no lock and never grows: a string missing from it
// is copied, and is still correct, only not shared.
const internSlots = 1 << 13

var (
	internTab  [internSlots]atomic.Pointer[string]
	internSeed = maphash.MakeSeed()
)

// internMaxLen bounds the strings kept in the table; longer ones are
// copied.
const internMaxLen = 1024

// Intern returns a copy of s that shares no memory with s's source and,
// for strings seen before, is shared with earlier results.
func Intern(s string) string {
	switch s {
	case "":
		return ""
	case DefaultCluster:
		return DefaultCluster
	case DefaultNamespace:
		return DefaultNamespace
	case DefaultGroup:
		return DefaultGroup
	}
	if len(s) > internMaxLen {
		return strings.Clone(s)
	}
	slot := &internTab[maphash.String(internSeed, s)&(internSlots-1)]
	if p := slot.Load(); p != nil && *p == s {
		return *p
	}
	c := strings.Clone(s)
	slot.Store(&c)
	return c
}

// interned reports whether s is already the canonical copy Intern would
// return (so that it need not be replaced).
func interned(s string) bool {
	if s == "" {
		return true
	}
	c := Intern(s)
	return unsafe.StringData(c) == unsafe.StringData(s)
}

// Interned returns the key with interned parts.
func (k ServiceKey) Interned() ServiceKey {
	return ServiceKey{Namespace: Intern(k.Namespace), Group: Intern(k.Group), Name: Intern(k.Name)}
}

// Own makes the instance share no memory with the request it was decoded
// from: its strings are interned, empty metadata becomes nil, and
// metadata with strings that are not interned yet is rebuilt. Call it on
// an instance the registry is about to keep (it owns the instance).
func (in *Instance) Own() {
	if !interned(in.IP) {
		in.IP = Intern(in.IP)
	}
	if !interned(in.Cluster) {
		in.Cluster = Intern(in.Cluster)
	}
	if !interned(in.InstanceID) {
		in.InstanceID = Intern(in.InstanceID)
	}
	if len(in.Metadata) == 0 {
		in.Metadata = nil
		return
	}
	for k, v := range in.Metadata {
		if !interned(k) || !interned(v) {
			in.Metadata = InternMap(in.Metadata)
			break
		}
	}
	in.Metadata = ShareMetadata(in.Metadata)
}

// Metadata maps are shared too: the instances of a service (and of many
// services) often carry the same metadata, and an instance's map is never
// changed once it is stored (an update stores a new map). ShareMetadata
// returns an equal map seen before, or keeps m as the one to share. Like
// Intern, the table is lossy and bounded.
const (
	mapSlots  = 1 << 12
	mapMaxLen = 32
)

var mapTab [mapSlots]atomic.Pointer[map[string]string]

// ShareMetadata returns a map equal to m that other callers may share
// (m itself, the first time). m must not be changed afterwards.
func ShareMetadata(m map[string]string) map[string]string {
	if len(m) == 0 || len(m) > mapMaxLen {
		return m
	}
	var h uint64
	for k, v := range m {
		// Order-independent: map iteration order varies.
		h += maphash.String(internSeed, k)*31 + maphash.String(internSeed, v)
	}
	slot := &mapTab[h&(mapSlots-1)]
	if p := slot.Load(); p != nil && sameMap(*p, m) {
		return *p
	}
	slot.Store(&m)
	return m
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// InternMap returns a copy of m with interned keys and values (nil if m is
// empty).
func InternMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[Intern(k)] = Intern(v)
	}
	return out
}
