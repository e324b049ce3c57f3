package udppush

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math"
	"strconv"

	"github.com/distro-registry/distro/internal/nacos/render"
)

const (
	// gzipThreshold: packets of this size or more are compressed, as Nacos
	// does; clients recognise gzip by its magic bytes 1f 8b.
	gzipThreshold = 1024
	// maxDatagram is the largest UDP payload over IPv4.
	maxDatagram = 65507
	// maxAckLen bounds what the reader bothers to decode: a push-ack is
	// about 70 bytes; dump-acks carry a client's whole cache and are ignored.
	maxAckLen = 512
)

// packer builds push packets. It keeps reusable buffers, so each packer
// belongs to one goroutine (the dispatcher).
type packer struct {
	plain []byte
	zbuf  bytes.Buffer
	zw    *gzip.Writer
}

// pack wraps a rendered ServiceInfo into a push packet with ack id id,
// compressing it when large. The result is a fresh slice that the caller may
// keep (it is shared by every pending push of the round).
func (pk *packer) pack(info []byte, id int64) []byte {
	b := append(pk.plain[:0], `{"type":"dom","data":`...)
	b = render.AppendString(b, string(info))
	b = append(b, `,"lastRefTime":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, '}')
	pk.plain = b
	if len(b) < gzipThreshold {
		return bytes.Clone(b)
	}
	pk.zbuf.Reset()
	if pk.zw == nil {
		pk.zw = gzip.NewWriter(&pk.zbuf)
	} else {
		pk.zw.Reset(&pk.zbuf)
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = pk.zw.Write(b)
	_ = pk.zw.Close()
	return bytes.Clone(pk.zbuf.Bytes())
}

// ackMsg is a client's reply. Go and Java send lastRefTime as a string,
// Node as a number.
type ackMsg struct {
	Type        string          `json:"type"`
	LastRefTime json.RawMessage `json:"lastRefTime"`
}

var pushAckType = []byte("push-ack")

// parseAck returns the ack id of a push-ack datagram. Anything else (other
// reply types, garbage, ids that are not positive integers) reports false.
func parseAck(b []byte) (int64, bool) {
	if len(b) > maxAckLen || !bytes.Contains(b, pushAckType) {
		return 0, false
	}
	var m ackMsg
	if err := json.Unmarshal(b, &m); err != nil || m.Type != "push-ack" {
		return 0, false
	}
	raw := bytes.TrimSpace(m.LastRefTime)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if id, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		if id <= 0 {
			return 0, false
		}
		return id, true
	}
	// A JavaScript client could print a large id in exponent form.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f <= 0 || f >= math.MaxInt64 || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}
