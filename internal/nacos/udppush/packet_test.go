package udppush

import (
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/nacos/render"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		id   int64
		ok   bool
	}{
		{"go sdk (string)", `{"data":"","lastRefTime":"1735689600000123","type":"push-ack"}`, 1735689600000123, true},
		{"java 1.x (string, spaces)", `{"type": "push-ack", "lastRefTime":"42", "data":""}`, 42, true},
		{"node (number)", `{"type":"push-ack","lastRefTime":1735689600000123,"data":""}`, 1735689600000123, true},
		{"exponent number", `{"type":"push-ack","lastRefTime":1.5e15}`, 1500000000000000, true},
		{"padded string", `{"type":"push-ack","lastRefTime":" 7 "}`, 7, true},
		{"max int64", `{"type":"push-ack","lastRefTime":"9223372036854775807"}`, 9223372036854775807, true},
		{"dump-ack", `{"type":"dump-ack","lastRefTime":"42","data":"{}"}`, 0, false},
		{"unknow-ack", `{"type":"unknow-ack","lastRefTime":"42","data":""}`, 0, false},
		{"missing id", `{"type":"push-ack","data":""}`, 0, false},
		{"null id", `{"type":"push-ack","lastRefTime":null}`, 0, false},
		{"zero", `{"type":"push-ack","lastRefTime":0}`, 0, false},
		{"negative", `{"type":"push-ack","lastRefTime":"-5"}`, 0, false},
		{"fraction", `{"type":"push-ack","lastRefTime":1.5}`, 0, false},
		{"too big", `{"type":"push-ack","lastRefTime":9223372036854775808}`, 0, false},
		{"huge float", `{"type":"push-ack","lastRefTime":1e300}`, 0, false},
		{"NaN string", `{"type":"push-ack","lastRefTime":"NaN"}`, 0, false},
		{"bool", `{"type":"push-ack","lastRefTime":true}`, 0, false},
		{"object", `{"type":"push-ack","lastRefTime":{"a":1}}`, 0, false},
		{"truncated", `{"type":"push-ack","lastRefTime":"4`, 0, false},
		{"not json", `push-ack 42`, 0, false},
		{"array", `["push-ack",42]`, 0, false},
		{"empty", ``, 0, false},
		{"oversized", `{"type":"push-ack","lastRefTime":"42","data":"` + strings.Repeat("x", maxAckLen) + `"}`, 0, false},
	} {
		id, ok := parseAck([]byte(tc.in))
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: got (%d, %v), want (%d, %v)", tc.name, id, ok, tc.id, tc.ok)
		}
	}
}

func FuzzParseAck(f *testing.F) {
	for _, s := range []string{
		`{"type":"push-ack","lastRefTime":"1735689600000123","data":""}`,
		`{"type":"push-ack","lastRefTime":1735689600000123,"data":""}`,
		`{"type":"push-ack","lastRefTime":1.5e15}`,
		`{"type":"dump-ack","lastRefTime":"1","data":"{\"a\":1}"}`,
		`{"type":"push-ack","lastRefTime":"\u0034\u0032"}`,
		`{"type":"push-ack","lastRefTime":-1}`,
		"\x1f\x8b\x08\x00push-ack",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := parseAck(b)
		if !ok {
			if id != 0 {
				t.Fatalf("rejected ack returned id %d", id)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("accepted non-positive id %d", id)
		}
		// Whatever was accepted round-trips through both client forms.
		for _, asString := range []bool{true, false} {
			if got, ok := parseAck(ackBytes(id, asString)); !ok || got != id {
				t.Fatalf("id %d re-encoded (string=%v) parsed as (%d, %v)", id, asString, got, ok)
			}
		}
	})
}

func TestPackRoundTrip(t *testing.T) {
	var pk packer
	for _, n := range []int{10, 900, 5000} {
		// Quotes, backslashes and control characters must survive being
		// embedded as a JSON string.
		info := render.AppendString([]byte(`{"name":"DEFAULT_GROUP@@demo","note":`), strings.Repeat("q\"\\\n", n/4))
		info = append(info, '}')
		pkt := pk.pack(info, 12345)
		p, err := decodePush(pkt)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if p.gzip != (p.plen >= gzipThreshold) {
			t.Errorf("n=%d: gzip=%v at %d bytes", n, p.gzip, p.plen)
		}
		if p.data != string(info) {
			t.Errorf("n=%d: data does not round-trip", n)
		}
		if p.typ != "dom" || p.id != 12345 || p.info.Name != "DEFAULT_GROUP@@demo" {
			t.Errorf("n=%d: decoded %+v", n, p)
		}
	}
	// Each packet is a fresh slice: an earlier one survives a later pack.
	a := pk.pack([]byte(`{"name":"a"}`), 1)
	keep := string(a)
	pk.pack([]byte(`{"name":"b"}`), 2)
	if string(a) != keep {
		t.Fatal("pack reused a returned slice")
	}
}

func TestPushCapable(t *testing.T) {
	for _, tc := range []struct {
		ua   string
		want bool
	}{
		{"Nacos-Go-Client:v1.1.6", true},
		{"Nacos-Go-Client:v2.3.5", true},
		{"Nacos-Go-Client:v0.1.0", true},
		{"Nacos-Go-Client:v0.0.9", false},
		{"Nacos-Go-Client:v1", true},
		{"Nacos-Go-Client:vnext", false},
		{"Nacos-Go-Client", false},
		{"Nacos-Java-Client:v1.0.0", true}, // the Node client
		{"Nacos-Java-Client:v2.5.1", true},
		{"Nacos-Java-Client:v1.4.1-SNAPSHOT", true},
		{"Nacos-Java-Client:v0.0.1", false},
		{" Nacos-Java-Client:v1.0.0 ", true},
		{"Nacos-CSharp-Client:v1.3.4", true},
		{"Nacos-CSharp-Client:v0.8.9", false},
		{"Nacos-C-Client:v1.0.12", true},
		{"Nacos-C-Client:v1.0.11", false},
		{"vip-client4cpp:v1.1.0", true},
		{"Nacos-DNS:v1.0.0", true},
		{"Nacos-DNS:v0.4.2", false},
		{"Nacos-Python-Client:v2.0.0", true},
		{"Nacos-Python-Client:v0.1.9", false},
		{"Nacos-Php-Client:v1.0.0", false},
		{"Nacos-SDK-Java/1.0", false},
		{"nacos-go-client:v1.1.6", false},
		{"Go-http-client/1.1", false},
		{"curl/8.5.0", false},
		{"", false},
	} {
		if got := PushCapable(tc.ua); got != tc.want {
			t.Errorf("PushCapable(%q) = %v, want %v", tc.ua, got, tc.want)
		}
	}
}

func TestParseAgentVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want version
		ok   bool
	}{
		{"X:v1.2.3", version{1, 2, 3}, true},
		{"X:v1.2", version{1, 2, 0}, true},
		{"X:v10.20.30.40", version{10, 20, 30}, true},
		{"X:v1.2.3-beta", version{1, 2, 3}, true},
		{"X:v2-beta.1", version{2, 0, 1}, true},
		{"X:v99999999999999999999.1", version{9_999_999, 1, 0}, true}, // capped, no overflow
		{"X:v", version{}, false},
		{"X/1.2.3", version{}, false},
	} {
		got, ok := parseAgentVersion(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseAgentVersion(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if maxPacketFor("Nacos-Go-Client:v2.3.5") != goClientReadBuffer || maxPacketFor(javaAgent) != maxDatagram {
		t.Error("maxPacketFor")
	}
}
