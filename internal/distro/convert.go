package distro

import (
	"fmt"
	"maps"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
)

func keyToPB(k model.ServiceKey) *clusterpb.ServiceKey {
	return &clusterpb.ServiceKey{Namespace: k.Namespace, Group: k.Group, Name: k.Name}
}

// keyFromPB validates a key received from a peer.
func keyFromPB(pk *clusterpb.ServiceKey, l model.Limits) (model.ServiceKey, error) {
	if pk == nil {
		return model.ServiceKey{}, fmt.Errorf("%w: missing service key", model.ErrInvalid)
	}
	k := model.ServiceKey{Namespace: pk.GetNamespace(), Group: pk.GetGroup(), Name: pk.GetName()}
	for _, f := range []struct{ what, v string }{{"namespace", k.Namespace}, {"group", k.Group}, {"service", k.Name}} {
		if err := l.ValidateName(f.what, f.v); err != nil {
			return model.ServiceKey{}, err
		}
	}
	return k, nil
}

func instanceToPB(in *model.Instance) *clusterpb.Instance {
	return &clusterpb.Instance{InstanceId: in.InstanceID, Ip: in.IP, Port: int32(in.Port), Weight: in.Weight,
		Healthy: in.Healthy, Enabled: in.Enabled, Ephemeral: in.Ephemeral, Cluster: in.Cluster, Metadata: in.Metadata}
}

// instanceFromPB validates an instance received from a peer with the same
// rules a client request gets: an authenticated peer can still be buggy.
func instanceFromPB(p *clusterpb.Instance, l model.Limits) (*model.Instance, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: missing instance", model.ErrInvalid)
	}
	in := &model.Instance{InstanceID: p.GetInstanceId(), IP: p.GetIp(), Port: int(p.GetPort()), Weight: p.GetWeight(),
		Healthy: p.GetHealthy(), Enabled: p.GetEnabled(), Ephemeral: p.GetEphemeral(), Cluster: p.GetCluster()}
	if md := p.GetMetadata(); len(md) > 0 {
		in.Metadata = maps.Clone(md)
	}
	if err := l.ValidateInstance(in); err != nil {
		return nil, err
	}
	return in, nil
}

func recordToPB(r *store.Record) *clusterpb.Record {
	return &clusterpb.Record{Instance: instanceToPB(r.Instance), Stamp: uint64(r.Stamp), Origin: r.Origin,
		Kind: uint32(r.Kind), Conn: r.Conn, ConnNode: r.ConnNode}
}

func recordFromPB(p *clusterpb.Record, l model.Limits) (*store.Record, error) {
	in, err := instanceFromPB(p.GetInstance(), l)
	if err != nil {
		return nil, err
	}
	if p.GetKind() > uint32(store.KindDeleted) {
		return nil, fmt.Errorf("%w: record kind %d", model.ErrInvalid, p.GetKind())
	}
	if p.GetOrigin() == "" || p.GetStamp() == 0 {
		return nil, fmt.Errorf("%w: record without version", model.ErrInvalid)
	}
	return &store.Record{Instance: in, Stamp: hlc.Timestamp(p.GetStamp()), Origin: p.GetOrigin(),
		Kind: store.Kind(p.GetKind()), Conn: p.GetConn(), ConnNode: p.GetConnNode()}, nil
}

func metaToPB(m *store.MetaRecord) *clusterpb.ServiceMeta {
	if m == nil {
		return nil
	}
	p := &clusterpb.ServiceMeta{ProtectThreshold: m.Meta.ProtectThreshold, Metadata: m.Meta.Metadata,
		SelectorType: m.Meta.Selector.Type, SelectorExpression: m.Meta.Selector.Expression,
		Stamp: uint64(m.Stamp), Origin: m.Origin, Deleted: m.Deleted}
	if len(m.Meta.Clusters) > 0 {
		p.Clusters = make(map[string]*clusterpb.ClusterSettings, len(m.Meta.Clusters))
		for name, c := range m.Meta.Clusters {
			p.Clusters[name] = clusterToPB(&c)
		}
	}
	return p
}

func clusterToPB(c *model.ClusterMeta) *clusterpb.ClusterSettings {
	h := &c.HealthChecker
	return &clusterpb.ClusterSettings{CheckPort: int32(c.CheckPort), UseInstancePort: c.UseInstancePort, Metadata: c.Metadata,
		HealthChecker: &clusterpb.HealthChecker{Type: h.Type, Path: h.Path, Headers: h.Headers, ExpectedCode: int32(h.ExpectedCode),
			IntervalMs: h.IntervalMs, TimeoutMs: h.TimeoutMs}}
}

// clusterFromPB decodes cluster settings; the caller validates them.
func clusterFromPB(p *clusterpb.ClusterSettings) model.ClusterMeta {
	h := p.GetHealthChecker()
	c := model.ClusterMeta{CheckPort: int(p.GetCheckPort()), UseInstancePort: p.GetUseInstancePort(),
		HealthChecker: model.HealthChecker{Type: h.GetType(), Path: h.GetPath(), Headers: h.GetHeaders(),
			ExpectedCode: int(h.GetExpectedCode()), IntervalMs: h.GetIntervalMs(), TimeoutMs: h.GetTimeoutMs()}}
	if md := p.GetMetadata(); len(md) > 0 {
		c.Metadata = maps.Clone(md)
	}
	return c
}

func metaFromPB(p *clusterpb.ServiceMeta, l model.Limits) (*store.MetaRecord, error) {
	if p == nil {
		return nil, nil
	}
	if p.GetOrigin() == "" || p.GetStamp() == 0 {
		return nil, fmt.Errorf("%w: service settings without version", model.ErrInvalid)
	}
	m := &store.MetaRecord{Stamp: hlc.Timestamp(p.GetStamp()), Origin: p.GetOrigin(), Deleted: p.GetDeleted()}
	m.Meta.ProtectThreshold = p.GetProtectThreshold()
	if md := p.GetMetadata(); len(md) > 0 {
		m.Meta.Metadata = maps.Clone(md)
	}
	m.Meta.Selector = model.Selector{Type: p.GetSelectorType(), Expression: p.GetSelectorExpression()}
	if m.Meta.ProtectThreshold < 0 || m.Meta.ProtectThreshold > 1 || m.Meta.ProtectThreshold != m.Meta.ProtectThreshold {
		return nil, fmt.Errorf("%w: protect threshold %v", model.ErrInvalid, m.Meta.ProtectThreshold)
	}
	if err := l.ValidateMetadata(m.Meta.Metadata); err != nil {
		return nil, err
	}
	if pc := p.GetClusters(); len(pc) > 0 {
		m.Meta.Clusters = make(map[string]model.ClusterMeta, len(pc))
		for name, c := range pc {
			m.Meta.Clusters[name] = clusterFromPB(c)
		}
		if err := l.ValidateClusters(m.Meta.Clusters); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// keyRecordsToPB encodes records and settings of one key.
func keyRecordsToPB(k model.ServiceKey, recs []*store.Record, meta *store.MetaRecord) *clusterpb.KeyRecords {
	kr := &clusterpb.KeyRecords{Key: keyToPB(k), Meta: metaToPB(meta), Records: make([]*clusterpb.Record, len(recs))}
	for i, r := range recs {
		kr.Records[i] = recordToPB(r)
	}
	return kr
}

// decoded is one validated KeyRecords.
type decoded struct {
	key  model.ServiceKey
	recs []*store.Record
	meta *store.MetaRecord
}

// decodeKeyRecords validates every entry; one bad entry rejects the whole
// message so that a corrupt peer changes nothing.
func decodeKeyRecords(entries []*clusterpb.KeyRecords, l model.Limits) ([]decoded, error) {
	out := make([]decoded, 0, len(entries))
	for _, e := range entries {
		k, err := keyFromPB(e.GetKey(), l)
		if err != nil {
			return nil, err
		}
		d := decoded{key: k, recs: make([]*store.Record, 0, len(e.GetRecords()))}
		for _, pr := range e.GetRecords() {
			r, err := recordFromPB(pr, l)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", k, err)
			}
			d.recs = append(d.recs, r)
		}
		if d.meta, err = metaFromPB(e.GetMeta(), l); err != nil {
			return nil, fmt.Errorf("service %s: %w", k, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func opToPB(op *registry.Op) *clusterpb.WriteOp {
	w := &clusterpb.WriteOp{Kind: uint32(op.Kind), Key: keyToPB(op.Key), Instance: instanceToPB(&op.Instance),
		LightBeat: op.LightBeat, Conn: op.Conn}
	for _, f := range op.Fields {
		w.Fields = append(w.Fields, string(f))
	}
	switch op.Kind {
	case registry.OpCreateService, registry.OpUpdateService:
		w.Service = metaToPB(&store.MetaRecord{Meta: op.Service, Stamp: 1, Origin: "op"})
	case registry.OpUpdateCluster:
		w.ClusterName, w.Cluster = op.ClusterName, clusterToPB(&op.Cluster)
	}
	return w
}

// opFromPB rebuilds a handed-on write. Instance identity fields are
// validated; beats and deregistrations may carry partial instances.
func opFromPB(w *clusterpb.WriteOp, l model.Limits) (*registry.Op, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: missing op", model.ErrInvalid)
	}
	k, err := keyFromPB(w.GetKey(), l)
	if err != nil {
		return nil, err
	}
	op := &registry.Op{Kind: registry.OpKind(w.GetKind()), Key: k, LightBeat: w.GetLightBeat(), Conn: w.GetConn()}
	// OpBatchRegister is never handed on: connection-held writes stay
	// with the node holding the connection.
	if op.Kind < registry.OpRegister || op.Kind > registry.OpSetHealth || op.Kind == registry.OpBatchRegister {
		return nil, fmt.Errorf("%w: op kind %d", model.ErrInvalid, w.GetKind())
	}
	for _, f := range w.GetFields() {
		switch registry.Field(f) {
		case registry.FieldWeight, registry.FieldEnabled, registry.FieldHealthy, registry.FieldMetadata:
			op.Fields = append(op.Fields, registry.Field(f))
		default:
			return nil, fmt.Errorf("%w: field %q", model.ErrInvalid, f)
		}
	}
	switch op.Kind {
	case registry.OpCreateService, registry.OpUpdateService, registry.OpDeleteService:
		if m, err := metaFromPB(w.GetService(), l); err != nil {
			return nil, err
		} else if m != nil {
			op.Service = m.Meta
		}
		return op, nil
	case registry.OpUpdateCluster:
		if w.GetCluster() == nil {
			return nil, fmt.Errorf("%w: update-cluster without settings", model.ErrInvalid)
		}
		if err := l.ValidateName("clusterName", w.GetClusterName()); err != nil {
			return nil, err
		}
		op.ClusterName, op.Cluster = w.GetClusterName(), clusterFromPB(w.GetCluster())
		return op, l.ValidateClusterMeta(&op.Cluster)
	}
	in, err := instanceFromPB(w.GetInstance(), l)
	if err != nil {
		return nil, err
	}
	op.Instance = *in
	return op, nil
}
