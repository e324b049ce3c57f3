package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/model"
)

// decodeBeatRef is the encoding/json implementation DecodeBeat replaced:
// the reference its results are checked against.
func decodeBeatRef(s string, l model.Limits) (*Beat, error) {
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

func sameBeat(a, b *Beat) bool {
	eqF := (a.Weight == nil) == (b.Weight == nil) && (a.Weight == nil || *a.Weight == *b.Weight)
	eqB := (a.Ephemeral == nil) == (b.Ephemeral == nil) && (a.Ephemeral == nil || *a.Ephemeral == *b.Ephemeral)
	return a.IP == b.IP && a.Port == b.Port && a.ServiceName == b.ServiceName && a.Cluster == b.Cluster && eqF && eqB &&
		maps.Equal(a.Metadata, b.Metadata) // nil and empty metadata are the same to every reader
}

var beatSamples = []string{
	`{"cluster":"DEFAULT","ip":"10.0.0.1","metadata":{},"port":8080,"scheduled":false,"serviceName":"DEFAULT_GROUP@@demo","weight":1}`,
	`{"ip":"10.0.0.1","port":"80","metadata":{"a":1,"b":null,"c":true}}`, `{"IP":"10.0.0.2","PORT":81,"Weight":2.5,"EPHEMERAL":true}`,
	`{"ip":"x","port":-1}`, `{"port":1e3}`, `{"port":70000}`, `{"weight":1e999}`, `{"metadata":"k=v"}`, `{"port":""}`,
	`{"metadata":{"a":{}}}`, `{}}`, `{} {}`, `null`, `[]`, `"x"`, `1`, `{"ephemeral":false}`, "{\"ip\":\"\xff\"}",
	`{"weight":1,"weight":null}`, `{"ip":"a","ip":null}`, `{"ip":1}`, `{"ephemeral":"true"}`, `{"port":"8x"}`,
	`{"metadata":{"a":"b"},"metadata":null}`, `{"ſerviceName":"x"}`, ` {"ip" : "10.0.0.3" } `, `{"ip":"a"`, `{"port":8080.0}`,
}

func TestDecodeBeatMatchesReference(t *testing.T) {
	l := model.DefaultLimits()
	for _, s := range beatSamples {
		got, err := DecodeBeat(s, l)
		want, werr := decodeBeatRef(s, l)
		if (err == nil) != (werr == nil) || err == nil && !sameBeat(got, want) {
			t.Errorf("%q: got %+v, %v; reference %+v, %v", s, got, err, want, werr)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = DecodeBeat(beatSamples[0], l)
	})
	if allocs > 2 { // the Beat and its weight
		t.Errorf("%v allocations per beat", allocs)
	}
}

// FuzzDecodeBeatMatchesReference: the hand-written decoder accepts and
// decodes exactly what the encoding/json implementation did.
func FuzzDecodeBeatMatchesReference(f *testing.F) {
	for _, s := range beatSamples {
		f.Add(s)
	}
	l := model.Limits{MaxNameLen: 255, MaxMetadataKeys: 8, MaxMetadataBytes: 512, MaxBodyBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := DecodeBeat(s, l)
		want, werr := decodeBeatRef(s, l)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, reference %v", s, err, werr)
		}
		if err == nil && !sameBeat(got, want) {
			t.Fatalf("%q: %+v, reference %+v", s, got, want)
		}
	})
}
