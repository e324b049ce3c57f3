package distro

import (
	"fmt"

	"github.com/distro-registry/distro/api/clusterpb"
	"github.com/distro-registry/distro/internal/hlc"
	"github.com/distro-registry/distro/internal/model"
	"github.com/distro-registry/distro/internal/registry"
	"github.com/distro-registry/distro/internal/store"
	"github.com/distro-registry/distro/internal/wire"
)

func keyToPB(k model.ServiceKey) *clusterpb.ServiceKey { return wire.KeyToPB(k) }

func keyFromPB(pk *clusterpb.ServiceKey, l model.Limits) (model.ServiceKey, error) {
	return wire.KeyFromPB(pk, l)
}

func instanceToPB(in *model.Instance) *clusterpb.Instance { return wire.InstanceToPB(in) }

func instanceFromPB(p *clusterpb.Instance, l model.Limits) (*model.Instance, error) {
	return wire.TakeInstanceFromPB(p, l) // every caller discards the message
}

func recordToPB(r *store.Record) *clusterpb.Record {
	return &clusterpb.Record{Instance: instanceToPB(r.Instance), Stamp: uint64(r.Stamp), Origin: r.Origin,
		Kind: uint32(r.Kind), Conn: r.Conn, ConnNode: r.ConnNode, Suspected: uint32(r.Suspected)}
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
	var suspected store.Kind
	if sk := store.Kind(p.GetSuspected()); sk == store.KindUnhealthy || sk == store.KindExpired {
		suspected = sk // anything else is ignored: it is advice, not data
	}
	return &store.Record{Instance: in, Stamp: hlc.Timestamp(p.GetStamp()), Origin: model.Intern(p.GetOrigin()),
		Kind: store.Kind(p.GetKind()), Conn: model.Intern(p.GetConn()), ConnNode: model.Intern(p.GetConnNode()), Suspected: suspected}, nil
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
			p.Clusters[name] = wire.ClusterToPB(&c)
		}
	}
	return p
}

func metaFromPB(p *clusterpb.ServiceMeta, l model.Limits) (*store.MetaRecord, error) {
	if p == nil {
		return nil, nil
	}
	if p.GetOrigin() == "" || p.GetStamp() == 0 {
		return nil, fmt.Errorf("%w: service settings without version", model.ErrInvalid)
	}
	m := &store.MetaRecord{Stamp: hlc.Timestamp(p.GetStamp()), Origin: p.GetOrigin(), Deleted: p.GetDeleted()}
	var err error
	if m.Meta, err = wire.SettingsFromPB(p, l); err != nil {
		return nil, err
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

func opToPB(op *registry.Op) *clusterpb.WriteOp { return wire.OpToPB(op) }

func opFromPB(w *clusterpb.WriteOp, l model.Limits) (*registry.Op, error) { return wire.OpFromPB(w, l) }
