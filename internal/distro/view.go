package distro

import (
	"hash/fnv"
	"slices"
	"strings"

	"github.com/distro-registry/distro/internal/model"
)

// State is a member's health as this node sees it.
type State string

// Member states. Ownership is computed over UP and SUSPICIOUS members: a
// peer leaves the owner list only once this node has decided it is DOWN.
const (
	StateUp         State = "UP"
	StateSuspicious State = "SUSPICIOUS"
	StateDown       State = "DOWN"
)

// Member is one cluster member in a View.
type Member struct {
	Addr  string
	State State
}

// View is this node's view of the cluster at one moment. It is immutable.
type View struct {
	Self string
	// Members lists every configured member, self included, sorted.
	Members []Member
	// eligible is self plus every UP or SUSPICIOUS peer, sorted.
	eligible []string
	id       string
}

// NewView builds a view. Self is always eligible, whether or not it is in
// members (a node must serve even while its own entry is being added).
func NewView(self string, members []Member) *View {
	v := &View{Self: self, Members: slices.Clone(members)}
	slices.SortFunc(v.Members, func(a, b Member) int { return strings.Compare(a.Addr, b.Addr) })
	v.eligible = []string{self}
	for _, m := range v.Members {
		if m.Addr != self && (m.State == StateUp || m.State == StateSuspicious) {
			v.eligible = append(v.eligible, m.Addr)
		}
	}
	slices.Sort(v.eligible)
	h := fnv.New64a()
	for _, a := range v.eligible {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	v.id = strings.ToLower(strings.TrimLeft(hex64(h.Sum64()), "0"))
	return v
}

func hex64(x uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[x&15]
		x >>= 4
	}
	return string(b[:])
}

// Eligible returns the members keys are spread over: self plus UP and
// SUSPICIOUS peers, sorted. It must not be modified.
func (v *View) Eligible() []string { return v.eligible }

// ID identifies the eligible list: two nodes with equal IDs compute the same
// owner for every key.
func (v *View) ID() string { return v.id }

// Peers returns every configured member except self.
func (v *View) Peers() []Member {
	out := make([]Member, 0, len(v.Members))
	for _, m := range v.Members {
		if m.Addr != v.Self {
			out = append(out, m)
		}
	}
	return out
}

// StateOf returns a member's state, or "" if it is not a member.
func (v *View) StateOf(addr string) State {
	for _, m := range v.Members {
		if m.Addr == addr {
			return m.State
		}
	}
	return ""
}

// Owner returns the member responsible for key k among eligible members,
// by rendezvous (highest random weight) hashing: every member scores
// hash(member, key) and the highest score wins. The result depends only on
// the key and the set of eligible members, so every node with the same view
// computes the same owner; and when a member joins or leaves, only the keys
// it wins or held move (about 1/N of them), unlike Nacos's hash-mod-N, which
// moves almost all keys. Unlike Nacos, the namespace is part of the key.
func Owner(k model.ServiceKey, eligible []string) string {
	var best string
	var bestScore uint64
	kh := keyHash(k)
	for _, m := range eligible {
		s := score(m, kh)
		if best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

func keyHash(k model.ServiceKey) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k.Namespace))
	h.Write([]byte{0})
	h.Write([]byte(k.Group))
	h.Write([]byte{0})
	h.Write([]byte(k.Name))
	return h.Sum64()
}

// score mixes a member name with a key hash (FNV-1a then a splitmix64
// finalizer, so that similar member names give unrelated scores).
func score(member string, kh uint64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * 1099511628211
	}
	z := h ^ kh
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
