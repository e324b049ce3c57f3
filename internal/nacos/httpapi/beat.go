package httpapi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/distro-registry/distro/internal/jsonscan"
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
// scalars become strings. It decodes exactly as encoding/json would into
// a struct of the fields (keys match case-insensitively, the last of a
// repeated key wins, null leaves a field unset), without allocating for
// plain values.
func DecodeBeat(s string, l model.Limits) (*Beat, error) {
	b := &Beat{}
	d := jsonscan.New(s)
	var port, md string
	var weight float64
	var eph bool
	hasWeight, hasEph := false, false
	bad := func(field string) (*Beat, error) {
		return nil, fmt.Errorf("%w: beat is not valid JSON: field %q has the wrong type", model.ErrInvalid, field)
	}
	switch d.Peek() {
	case jsonscan.Null:
		d.Null() // a null beat is an empty one, as for encoding/json
	case jsonscan.Object:
		d.BeginObject()
		for {
			k, ok := d.NextKey()
			if !ok {
				break
			}
			kind := d.Peek()
			f := jsonscan.Match(k, "ip", "serviceName", "cluster", "port", "weight", "ephemeral", "metadata")
			switch {
			case f <= 2 && f >= 0:
				if kind == jsonscan.Null {
					d.Null()
					continue
				}
				if kind != jsonscan.String {
					return bad(k)
				}
				v, _ := d.String()
				switch f {
				case 0:
					b.IP = v
				case 1:
					b.ServiceName = v
				default:
					b.Cluster = v
				}
			case f == 3:
				// A json.Number: a number, or a string holding one.
				switch kind {
				case jsonscan.Null:
					d.Null()
				case jsonscan.Number:
					port, _ = d.Number()
				case jsonscan.String:
					v, _ := d.String()
					if !validNumber(v) {
						return bad(k)
					}
					port = v
				default:
					return bad(k)
				}
			case f == 4:
				switch kind {
				case jsonscan.Null:
					d.Null()
					hasWeight = false
				case jsonscan.Number:
					n, _ := d.Number()
					w, err := strconv.ParseFloat(n, 64)
					if err != nil {
						return bad(k)
					}
					weight, hasWeight = w, true
				default:
					return bad(k)
				}
			case f == 5:
				switch kind {
				case jsonscan.Null:
					d.Null()
					hasEph = false
				case jsonscan.Bool:
					eph, _ = d.Bool()
					hasEph = true
				default:
					return bad(k)
				}
			case f == 6:
				md, _ = d.Raw()
			default:
				d.Skip()
			}
		}
	default:
		if d.Peek() != jsonscan.Invalid {
			// A valid value of another kind does not decode into the beat
			// struct; anything else is a syntax error.
			if d.Skip() && d.End() == nil {
				return nil, fmt.Errorf("%w: beat is not valid JSON: not an object", model.ErrInvalid)
			}
		} else {
			d.Skip()
		}
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: beat is not valid JSON: %v", model.ErrInvalid, err)
	}
	if d.End() != nil {
		return nil, fmt.Errorf("%w: beat has trailing data", model.ErrInvalid)
	}
	b.IP, b.Cluster = strings.TrimSpace(b.IP), strings.TrimSpace(b.Cluster)
	if hasWeight {
		b.Weight = &weight
	}
	if hasEph {
		b.Ephemeral = &eph
	}
	if port != "" {
		p, err := strconv.ParseInt(port, 10, 64)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("%w: beat port %q is out of range 1-65535", model.ErrInvalid, port)
		}
		b.Port = int(p)
	}
	// An empty object (what clients send) leaves Metadata nil: no map.
	if md = strings.TrimSpace(md); md != "" && md != "null" && md != "{}" {
		m, err := l.ParseMetadata(md)
		if err != nil {
			return nil, err
		}
		b.Metadata = m
	}
	return b, nil
}

// validNumber reports whether s is a JSON number literal (what a string
// must hold to decode into json.Number).
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	d := jsonscan.New(s)
	if d.Peek() != jsonscan.Number {
		return false
	}
	_, ok := d.Number()
	return ok && d.End() == nil
}
