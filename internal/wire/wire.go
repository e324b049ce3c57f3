package wire

import (
	"fmt"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
)

// KeyToPB encodes a service key.
func KeyToPB(k model.ServiceKey) *clusterpb.ServiceKey {
	return &clusterpb.ServiceKey{Namespace: k.Namespace, Group: k.Group, Name: k.Name}
}

// KeyFromPB decodes and validates a service key.
func KeyFromPB(pk *clusterpb.ServiceKey, l model.Limits) (model.ServiceKey, error) {
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

// InstanceToPB encodes an instance.
func InstanceToPB(in *model.Instance) *clusterpb.Instance {
	return &clusterpb.Instance{InstanceId: in.InstanceID, Ip: in.IP, Port: int32(in.Port), Weight: in.Weight,
		Healthy: in.Healthy, Enabled: in.Enabled, Ephemeral: in.Ephemeral, Cluster: in.Cluster, Metadata: in.Metadata}
}

// InstanceFromPB decodes and validates an instance.
func InstanceFromPB(p *clusterpb.Instance, l model.Limits) (*model.Instance, error) {
	return instanceFromPB(p, l, false)
}

// TakeInstanceFromPB is InstanceFromPB for a message the caller discards
// right after: its metadata map is taken over rather than copied, with
// the values interned in place (they repeat over instances; the keys are
// small copies already), and shared with equal maps (model.ShareMetadata:
// the result's map must never be changed). Loading a snapshot decodes
// millions of them.
func TakeInstanceFromPB(p *clusterpb.Instance, l model.Limits) (*model.Instance, error) {
	return instanceFromPB(p, l, true)
}

func instanceFromPB(p *clusterpb.Instance, l model.Limits, take bool) (*model.Instance, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: missing instance", model.ErrInvalid)
	}
	in := &model.Instance{InstanceID: p.GetInstanceId(), IP: p.GetIp(), Port: int(p.GetPort()), Weight: p.GetWeight(),
		Healthy: p.GetHealthy(), Enabled: p.GetEnabled(), Ephemeral: p.GetEphemeral(), Cluster: p.GetCluster()}
	if md := p.GetMetadata(); !take {
		in.Metadata = model.InternMap(md)
	} else if len(md) > 0 {
		for k, v := range md {
			md[k] = model.Intern(v)
		}
		in.Metadata = model.ShareMetadata(md)
	}
	if err := l.ValidateInstance(in); err != nil {
		return nil, err
	}
	// Decoded strings are exact copies; the cluster name repeats over
	// records, so keep one.
	in.Cluster = model.Intern(in.Cluster)
	return in, nil
}

// SettingsToPB encodes service settings, cluster settings included (the
// version fields stay empty).
func SettingsToPB(m *model.ServiceMeta) *clusterpb.ServiceMeta {
	p := &clusterpb.ServiceMeta{ProtectThreshold: m.ProtectThreshold, Metadata: m.Metadata,
		SelectorType: m.Selector.Type, SelectorExpression: m.Selector.Expression}
	if len(m.Clusters) > 0 {
		p.Clusters = make(map[string]*clusterpb.ClusterSettings, len(m.Clusters))
		for name, c := range m.Clusters {
			p.Clusters[name] = ClusterToPB(&c)
		}
	}
	return p
}

// ClusterToPB encodes one cluster's settings.
func ClusterToPB(c *model.ClusterMeta) *clusterpb.ClusterSettings {
	h := &c.HealthChecker
	return &clusterpb.ClusterSettings{CheckPort: int32(c.CheckPort), UseInstancePort: c.UseInstancePort, Metadata: c.Metadata,
		HealthChecker: &clusterpb.HealthChecker{Type: h.Type, Path: h.Path, Headers: h.Headers, ExpectedCode: int32(h.ExpectedCode),
			IntervalMs: h.IntervalMs, TimeoutMs: h.TimeoutMs}}
}

// ClusterFromPB decodes one cluster's settings; the caller validates them.
func ClusterFromPB(p *clusterpb.ClusterSettings) model.ClusterMeta {
	h := p.GetHealthChecker()
	c := model.ClusterMeta{CheckPort: int(p.GetCheckPort()), UseInstancePort: p.GetUseInstancePort(),
		HealthChecker: model.HealthChecker{Type: h.GetType(), Path: h.GetPath(), Headers: h.GetHeaders(),
			ExpectedCode: int(h.GetExpectedCode()), IntervalMs: h.GetIntervalMs(), TimeoutMs: h.GetTimeoutMs()}}
	c.Metadata = model.InternMap(p.GetMetadata())
	return c
}

// SettingsFromPB decodes and validates service settings.
func SettingsFromPB(p *clusterpb.ServiceMeta, l model.Limits) (model.ServiceMeta, error) {
	var m model.ServiceMeta
	m.ProtectThreshold = p.GetProtectThreshold()
	m.Metadata = model.InternMap(p.GetMetadata())
	m.Selector = model.Selector{Type: p.GetSelectorType(), Expression: p.GetSelectorExpression()}
	if m.ProtectThreshold < 0 || m.ProtectThreshold > 1 || m.ProtectThreshold != m.ProtectThreshold {
		return m, fmt.Errorf("%w: protect threshold %v", model.ErrInvalid, m.ProtectThreshold)
	}
	if err := l.ValidateMetadata(m.Metadata); err != nil {
		return m, err
	}
	if pc := p.GetClusters(); len(pc) > 0 {
		m.Clusters = make(map[string]model.ClusterMeta, len(pc))
		for name, c := range pc {
			m.Clusters[name] = ClusterFromPB(c)
		}
		if err := l.ValidateClusters(m.Clusters); err != nil {
			return m, err
		}
	}
	return m, nil
}

// OpToPB encodes a client write.
func OpToPB(op *registry.Op) *clusterpb.WriteOp {
	w := &clusterpb.WriteOp{Kind: uint32(op.Kind), Key: KeyToPB(op.Key), Instance: InstanceToPB(&op.Instance),
		LightBeat: op.LightBeat, Conn: op.Conn}
	for _, f := range op.Fields {
		w.Fields = append(w.Fields, string(f))
	}
	switch op.Kind {
	case registry.OpCreateService, registry.OpUpdateService:
		w.Service = SettingsToPB(&op.Service)
	case registry.OpUpdateCluster:
		w.ClusterName, w.Cluster = op.ClusterName, ClusterToPB(&op.Cluster)
	}
	return w
}

// OpFromPB decodes and validates a client write. Instance identity fields
// are validated; beats and deregistrations may carry partial instances.
func OpFromPB(w *clusterpb.WriteOp, l model.Limits) (*registry.Op, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: missing op", model.ErrInvalid)
	}
	k, err := KeyFromPB(w.GetKey(), l)
	if err != nil {
		return nil, err
	}
	op := &registry.Op{Kind: registry.OpKind(w.GetKind()), Key: k, LightBeat: w.GetLightBeat(), Conn: w.GetConn()}
	// OpBatchRegister never crosses the wire: connection-held writes stay
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
		if w.GetService() != nil {
			if op.Service, err = SettingsFromPB(w.GetService(), l); err != nil {
				return nil, err
			}
		}
		return op, nil
	case registry.OpUpdateCluster:
		if w.GetCluster() == nil {
			return nil, fmt.Errorf("%w: update-cluster without settings", model.ErrInvalid)
		}
		if err := l.ValidateName("clusterName", w.GetClusterName()); err != nil {
			return nil, err
		}
		op.ClusterName, op.Cluster = w.GetClusterName(), ClusterFromPB(w.GetCluster())
		return op, l.ValidateClusterMeta(&op.Cluster)
	}
	in, err := InstanceFromPB(w.GetInstance(), l)
	if err != nil {
		return nil, err
	}
	op.Instance = *in
	return op, nil
}
