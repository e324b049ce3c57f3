package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distro-registry/distro/internal/model"
)

// Beat is the beat JSON clients send with a full heartbeat.
type Beat struct {
	IP          string
	Port        int
	Weight      *float64
	ServiceName string
	Cluster     string
	Ephemeral   *bool
	Metadata    map[string]string
}

// DecodeBeat decodes and bounds the beat JSON parameter. Unknown fields
// (scheduled, period, load, cpu, ...) are ignored as Nacos does; metadata
// scalars become strings.
func DecodeBeat(s string, l model.Limits) (*Beat, error) {
	var raw struct {
		IP          string          `json:"ip"`
		Port        json.Number     `json:"port"`
		Weight      *float64        `json:"weight"`
		ServiceName string          `json:"serviceName"`
		Cluster     string          `json:"cluster"`
		Ephemeral   *bool           `json:"ephemeral"`
		Metadata    json.RawMessage `json:"metadata"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: beat is not valid JSON: %v", model.ErrInvalid, err)
	}
	if !model.AtEOF(dec) {
		return nil, fmt.Errorf("%w: beat has trailing data", model.ErrInvalid)
	}
	b := &Beat{IP: strings.TrimSpace(raw.IP), Weight: raw.Weight, ServiceName: raw.ServiceName,
		Cluster: strings.TrimSpace(raw.Cluster), Ephemeral: raw.Ephemeral}
	if raw.Port != "" {
		p, err := raw.Port.Int64()
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("%w: beat port %q is out of range 1-65535", model.ErrInvalid, raw.Port)
		}
		b.Port = int(p)
	}
	if m := bytes.TrimSpace(raw.Metadata); len(m) > 0 && !bytes.Equal(m, []byte("null")) {
		md, err := l.ParseMetadata(string(m))
		if err != nil {
			return nil, err
		}
		b.Metadata = md
	}
	return b, nil
}
