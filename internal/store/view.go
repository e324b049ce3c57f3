package store

import (
	"sort"
	"sync"

	"github.com/distro-registry/distro/internal/model"
)

// View is an immutable snapshot of one service, shared by all readers of the
// same revision.
type View struct {
	Key         model.ServiceKey
	Revision    uint64
	LastRefTime int64
	// Meta is the service settings, or nil when none were set explicitly.
	Meta *model.ServiceMeta
	// Instances are the present instances sorted by (ip, port, cluster), with
	// Healthy reflecting heartbeat timeouts. They must not be modified.
	Instances []*model.Instance

	mu    sync.Mutex
	cache map[string][]byte
}

// maxCachedRenders bounds the per-revision render cache (distinct cluster
// filters and output formats of one service).
const maxCachedRenders = 16

// Rendered returns the bytes cached under key for this revision, calling
// build to produce them on a miss. Adapters use it to serve repeated reads of
// an unchanged service without re-encoding.
func (v *View) Rendered(key string, build func() []byte) []byte {
	v.mu.Lock()
	if b, ok := v.cache[key]; ok {
		v.mu.Unlock()
		return b
	}
	v.mu.Unlock()
	b := build()
	v.mu.Lock()
	if v.cache == nil {
		v.cache = make(map[string][]byte)
	}
	if len(v.cache) < maxCachedRenders {
		v.cache[key] = b
	}
	v.mu.Unlock()
	return b
}

// View returns the current snapshot of service k, or nil if it does not
// exist (no present instance and no explicit settings).
func (s *Store) View(k model.ServiceKey) *View {
	return s.view(k, true)
}

// ListView is View for answers that list instances (lists, pushes): it
// also returns a view, with no instances, for a service that was emptied
// but is still remembered, so that its lastRefTime keeps increasing and a
// client sees the empty list as an update (clients drop an update whose
// lastRefTime is not greater than the one they hold). It returns nil only
// for a service this node has never seen or has forgotten.
func (s *Store) ListView(k model.ServiceKey) *View {
	return s.view(k, false)
}

func (s *Store) view(k model.ServiceKey, mustExist bool) *View {
	sh := s.shardOf(k)
	sh.mu.RLock()
	svc := sh.services[k]
	if svc == nil || (mustExist && !svc.exists()) {
		sh.mu.RUnlock()
		return nil
	}
	if v := svc.view.Load(); v != nil {
		sh.mu.RUnlock()
		return v
	}
	v := buildView(svc)
	// Racing readers may build the same view twice; either copy is correct.
	svc.view.Store(v)
	sh.mu.RUnlock()
	return v
}

func buildView(svc *service) *View {
	v := &View{Key: svc.key, Revision: svc.revision, LastRefTime: svc.lastRefTime}
	switch {
	case svc.settings != nil:
		m := *svc.settings
		v.Meta = &m
	case svc.meta != nil && !svc.meta.Deleted:
		m := svc.meta.Meta
		v.Meta = &m
	}
	v.Instances = make([]*model.Instance, 0, svc.live+len(svc.cp))
	for k, in := range svc.cp {
		if svc.cpDown[k] && in.Healthy {
			cp := *in
			cp.Healthy = false
			in = &cp
		}
		v.Instances = append(v.Instances, in)
	}
	for k, e := range svc.recs {
		r := e.rec
		if !r.Alive() {
			continue
		}
		if _, dup := svc.cp[k]; dup {
			continue // a persistent instance with this identity wins
		}
		in := r.Instance
		if r.Kind == KindUnhealthy && in.Healthy {
			cp := *in
			cp.Healthy = false
			in = &cp
		}
		v.Instances = append(v.Instances, in)
	}
	sort.Slice(v.Instances, func(i, j int) bool {
		return v.Instances[i].Key().Less(v.Instances[j].Key())
	})
	return v
}
