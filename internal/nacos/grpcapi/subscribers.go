package grpcapi

import (
	"cmp"
	"slices"

	"github.com/distro-registry/distro/internal/model"
)

// SubscriberInfo describes one gRPC subscription to a service (operator view).
type SubscriberInfo struct {
	ConnID        string
	RemoteAddr    string
	ClientIP      string
	ClientVersion string
	Clusters      string
	// Pending reports a push awaiting the client's ack.
	Pending bool
}

// Subscribers lists the subscriptions to key held by this node's client
// connections, by connection then clusters.
func (s *Server) Subscribers(key model.ServiceKey) []SubscriberInfo {
	s.mu.Lock()
	var out []SubscriberInfo
	if ss := s.subs[key]; ss != nil {
		for sub := range ss.subs {
			c := sub.c
			out = append(out, SubscriberInfo{ConnID: c.id, RemoteAddr: c.remote, ClientIP: c.info.clientIP,
				ClientVersion: c.info.clientVersion, Clusters: sub.clusters, Pending: sub.reqID != ""})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b SubscriberInfo) int {
		return cmp.Or(cmp.Compare(a.ConnID, b.ConnID), cmp.Compare(a.Clusters, b.Clusters))
	})
	return out
}
