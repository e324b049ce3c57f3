package udppush

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/distro-registry/distro/internal/model"
)

// SubscriberInfo describes one UDP subscriber (operator view).
type SubscriberInfo struct {
	Addr     netip.AddrPort
	Clusters string
	// LastSeen is the subscriber's last list call; it expires SubscriberTTL
	// after that.
	LastSeen time.Time
	// Pending reports a push awaiting the client's ack.
	Pending bool
}

// Subscribers lists the subscribers of key, by address then clusters.
func (p *Pusher) Subscribers(key model.ServiceKey) []SubscriberInfo {
	p.mu.Lock()
	var out []SubscriberInfo
	for clusters, byAddr := range p.subs[key] {
		for addr, s := range byAddr {
			out = append(out, SubscriberInfo{Addr: addr, Clusters: clusters, LastSeen: s.lastSeen, Pending: s.ackID != 0})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b SubscriberInfo) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Clusters, b.Clusters))
	})
	return out
}
