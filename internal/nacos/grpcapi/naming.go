package grpcapi

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/nacos/render"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

// maxPageSize caps ServiceListRequest.pageSize, as the HTTP API does.
const maxPageSize = 10000

// serviceKey validates the naming request's namespace, group and service.
func (s *Server) serviceKey(r *namingRequest) (model.ServiceKey, error) {
	return s.cfg.Limits.ParseServiceKey(r.Namespace, r.GroupName, r.ServiceName)
}

// instanceRequest handles InstanceRequest (ephemeral, held by the
// connection) and PersistentInstanceRequest (persistent, written like an
// HTTP register).
func (s *Server) instanceRequest(ctx context.Context, c *conn, f Frame, persistent bool) (reply, error) {
	var r instanceRequest
	if err := decodeInstanceRequest(f, &r); err != nil {
		return reply{}, err
	}
	key, err := s.serviceKey(&r.namingRequest)
	if err != nil {
		return reply{}, err
	}
	op := &registry.Op{Key: key}
	switch r.Type {
	case opRegisterInstance:
		op.Kind = registry.OpRegister
		if op.Instance, err = s.instanceFrom(&r.Instance, persistent); err != nil {
			return reply{}, err
		}
	case opDeregisterInstance:
		// A connection removes its own instance of the service whatever the
		// payload says (the Go SDK sends weight 0 and enabled false), but
		// the identity must still be well formed.
		op.Kind = registry.OpDeregister
		if op.Instance, err = s.identityFrom(&r.Instance); err != nil {
			return reply{}, err
		}
		op.Instance.Ephemeral = !persistent
	default:
		return reply{}, invalidf("unsupported %s type %q (registerInstance, deregisterInstance)", f.Type, r.Type)
	}
	if persistent {
		// Not connection-held: the write path treats it as an HTTP write
		// (in a cluster it is handed to the service's owner).
		if _, err := s.cfg.Writer.Apply(ctx, op); err != nil {
			return reply{}, err
		}
	} else if err := s.applyConn(ctx, c, op, nil); err != nil {
		return reply{}, err
	}
	return okReply(TypeInstanceResponse, r.RequestID, r.Type), nil
}

// batchRequest handles BatchInstanceRequest: batchRegisterInstance replaces
// the connection's instances of the service with the given set;
// batchDeregisterInstance removes the given ones from it.
func (s *Server) batchRequest(ctx context.Context, c *conn, f Frame) (reply, error) {
	var r batchInstanceRequest
	if err := decodeBatchRequest(f, &r); err != nil {
		return reply{}, err
	}
	key, err := s.serviceKey(&r.namingRequest)
	if err != nil {
		return reply{}, err
	}
	if len(r.Instances) > s.cfg.MaxBatchInstances {
		return reply{}, invalidf("batch has %d instances; the limit is %d", len(r.Instances), s.cfg.MaxBatchInstances)
	}
	ins := make([]model.Instance, 0, len(r.Instances))
	pos := make(map[model.InstanceKey]int, len(r.Instances))
	for i := range r.Instances {
		var in model.Instance
		if r.Type == opBatchDeregisterInstance {
			in, err = s.identityFrom(&r.Instances[i])
		} else {
			in, err = s.instanceFrom(&r.Instances[i], false)
		}
		if err != nil {
			return reply{}, invalidf("instance %d: %v", i, err)
		}
		// One record per (ip, port, cluster): a later duplicate wins.
		if j, dup := pos[in.Key()]; dup {
			ins[j] = in
			continue
		}
		pos[in.Key()] = len(ins)
		ins = append(ins, in)
	}
	op := &registry.Op{Kind: registry.OpBatchRegister, Key: key}
	var build func() error
	switch r.Type {
	case opBatchRegisterInstance:
		op.Instances = ins
	case opBatchDeregisterInstance:
		// Keep what the connection holds now minus the given instances; the
		// read happens under the connection's write lock.
		build = func() error {
			recs, _ := s.st.Records(key, nil)
			for _, rec := range recs {
				if rec.Conn == c.id && rec.Alive() {
					if _, gone := pos[rec.Key()]; !gone {
						op.Instances = append(op.Instances, *rec.Instance)
					}
				}
			}
			return nil
		}
	default:
		return reply{}, invalidf("unsupported %s type %q (batchRegisterInstance, batchDeregisterInstance)", f.Type, r.Type)
	}
	if err := s.applyConn(ctx, c, op, build); err != nil {
		return reply{}, err
	}
	return okReply(TypeBatchInstanceResponse, r.RequestID, r.Type), nil
}

// applyConn applies a connection-held write. It runs under the
// connection's write lock, so it cannot interleave with the teardown that
// drops the connection's instances, and it records the service so that the
// teardown knows where to look.
func (s *Server) applyConn(ctx context.Context, c *conn, op *registry.Op, build func() error) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.state.Load() != stateRegistered {
		return errUnregistered
	}
	if build != nil {
		if err := build(); err != nil {
			return err
		}
	}
	op.Conn, op.ConnNode = c.id, s.self
	removes := op.Kind == registry.OpDeregister || (op.Kind == registry.OpBatchRegister && len(op.Instances) == 0)
	if !removes {
		if _, known := c.services.get(op.Key); !known {
			if c.services.len() >= s.cfg.MaxServices {
				return invalidf("connection has instances in %d services; the limit is %d", c.services.len(), s.cfg.MaxServices)
			}
			// Recorded before the write, so that even a write whose outcome
			// is unknown is covered by the teardown (interned: it is kept).
			c.services.put(op.Key.Interned(), struct{}{})
		}
	}
	if _, err := s.cfg.Writer.Apply(ctx, op); err != nil {
		return err
	}
	if removes {
		c.services.delete(op.Key)
	}
	return nil
}

// instanceFrom builds and validates an instance to register. Absent fields
// take the Java client's defaults (weight 1, healthy, enabled).
func (s *Server) instanceFrom(w *wireInstance, persistent bool) (model.Instance, error) {
	in, err := s.identityFrom(w)
	if err != nil {
		return in, err
	}
	in.InstanceID = strings.TrimSpace(w.InstanceID)
	in.Weight, in.Healthy, in.Enabled = 1, true, true
	if w.Weight != nil {
		in.Weight = *w.Weight
	}
	if w.Healthy != nil {
		in.Healthy = *w.Healthy
	}
	if w.Enabled != nil {
		in.Enabled = *w.Enabled
	}
	if !persistent && w.Ephemeral != nil && !*w.Ephemeral {
		return in, invalidf("instance %s:%d is not ephemeral: connection-held registrations are ephemeral only; send PersistentInstanceRequest", in.IP, in.Port)
	}
	in.Ephemeral = !persistent
	if in.Metadata, err = s.metadataFrom(w.Metadata); err != nil {
		return in, err
	}
	if err := s.cfg.Limits.ValidateInstance(&in); err != nil {
		return in, err
	}
	return in, nil
}

// identityFrom validates the (ip, port, cluster) of an instance.
func (s *Server) identityFrom(w *wireInstance) (model.Instance, error) {
	var in model.Instance
	ip, err := model.ValidateIP(w.IP)
	if err != nil {
		return in, err
	}
	if w.Port < 1 || w.Port > 65535 {
		return in, invalidf("port %d is out of range 1-65535", w.Port)
	}
	cl, err := s.cfg.Limits.ValidateCluster(w.ClusterName)
	if err != nil {
		return in, err
	}
	in.IP, in.Port, in.Cluster = ip, int(w.Port), cl
	return in, nil
}

// metadataFrom decodes instance metadata: a JSON object whose scalar values
// become strings; null or absent means none.
func (s *Server) metadataFrom(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, invalidf("metadata must be a JSON object")
	}
	return s.cfg.Limits.ParseMetadata(string(raw))
}

// queryRequest handles ServiceQueryRequest.
func (s *Server) queryRequest(f Frame) (reply, error) {
	var r serviceQueryRequest
	if err := decodeQueryRequest(f, &r); err != nil {
		return reply{}, err
	}
	key, err := s.serviceKey(&r.namingRequest)
	if err != nil {
		return reply{}, err
	}
	if len(r.Cluster) > maxClustersLen {
		return reply{}, invalidf("cluster is too long")
	}
	info := s.renderInfo(key, s.st.ListView(key), r.Cluster, r.HealthyOnly)
	return infoReply(TypeQueryServiceResponse, r.RequestID, info), nil
}

// subscribeRequest handles SubscribeServiceRequest. The subscription is
// recorded before the view is read, so a change that lands in between is
// pushed rather than missed; the answer carries the current ServiceInfo
// either way.
//
// who is the caller the Guard identified (pushes check it again).
func (s *Server) subscribeRequest(c *conn, f Frame, who string) (reply, error) {
	var r subscribeServiceRequest
	if err := decodeSubscribeRequest(f, &r); err != nil {
		return reply{}, err
	}
	key, err := s.serviceKey(&r.namingRequest)
	if err != nil {
		return reply{}, err
	}
	if len(r.Clusters) > maxClustersLen {
		return reply{}, invalidf("clusters is too long")
	}
	if r.Subscribe {
		if err := s.addSub(c, key, r.Clusters, who); err != nil {
			return reply{}, err
		}
	} else {
		s.unsubscribe(c, key, r.Clusters)
	}
	info := s.renderInfo(key, s.st.ListView(key), r.Clusters, false)
	return infoReply(TypeSubscribeServiceResponse, r.RequestID, info), nil
}

// serviceListRequest handles ServiceListRequest: bare names of the
// services of one group, paged from 1.
func (s *Server) serviceListRequest(f Frame) (reply, error) {
	var r serviceListRequest
	if err := decodeBody(f, &r); err != nil {
		return reply{}, err
	}
	ns := strings.TrimSpace(r.Namespace)
	if ns == "" {
		ns = model.DefaultNamespace
	}
	if err := s.cfg.Limits.ValidateName("namespace", ns); err != nil {
		return reply{}, err
	}
	group := strings.TrimSpace(r.GroupName)
	if group == "" {
		group = model.DefaultGroup
	}
	if err := s.cfg.Limits.ValidateName("groupName", group); err != nil {
		return reply{}, err
	}
	var names []string
	for _, k := range s.st.ServiceKeys(ns) {
		if k.Group == group {
			names = append(names, k.Name)
		}
	}
	no, size := max(r.PageNo, 1), min(max(r.PageSize, 0), maxPageSize)
	var page []string
	if size > 0 && no-1 < int64(len(names))/size+1 {
		start := (no - 1) * size
		if start < int64(len(names)) {
			page = names[start:min(start+size, int64(len(names)))]
		}
	}
	return simpleReply(TypeServiceListResponse, serviceListBody(r.RequestID, len(names), page)), nil
}

// renderInfo renders the v2 ServiceInfo of a response from a ListView
// (which also covers emptied services, so lastRefTime keeps increasing).
// Renderings of a view are cached on it, so every reader of one revision
// shares one encoding. A service the store never saw renders empty with
// lastRefTime 0, below every real revision's, so that the client accepts
// the first push when the service appears (clients drop an update whose
// lastRefTime is not above the one they hold).
func (s *Server) renderInfo(key model.ServiceKey, v *store.View, clusters string, healthyOnly bool) []byte {
	q := render.Query{Clusters: clusters, HealthyOnly: healthyOnly, Style: render.V2, CacheMillis: s.cfg.CacheMillis}
	var info []byte
	if v != nil {
		info = v.Rendered(q.CacheKey(), func() []byte {
			return render.ServiceInfo(make([]byte, 0, 256+200*len(v.Instances)), key, v, q, 0)
		})
	} else {
		info = render.ServiceInfo(nil, key, nil, q, 0)
	}
	return echoClusters(info, clusters)
}
