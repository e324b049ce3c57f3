package udppush

import "strings"

// goClientReadBuffer is the read buffer of nacos-sdk-go's push receiver (v1
// and v2). A longer datagram arrives truncated, fails to decompress and is
// never acknowledged, so such pushes are not sent to Go clients at all.
const goClientReadBuffer = 4024

type version [3]int

func (v version) less(o version) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

// pushAgents are the User-Agent prefixes of clients that listen for UDP
// pushes, with the first version that does (Nacos SwitchDomain defaults:
// pushJavaVersion, pushGoVersion 0.1.0; pushCVersion 1.0.12;
// pushCSharpVersion 0.9.0; pushPythonVersion 0.4.3, which Nacos applies to
// Nacos-DNS). Nacos-Python-Client is not recognised by Nacos itself; it is
// accepted here with the Python threshold, and only ever subscribes when it
// reports a udpPort.
var pushAgents = []struct {
	prefix string
	min    version
}{
	{"Nacos-Java-Client", version{0, 1, 0}},
	{"Nacos-Go-Client", version{0, 1, 0}},
	{"Nacos-CSharp-Client", version{0, 9, 0}},
	{"Nacos-C-Client", version{1, 0, 12}},
	{"vip-client4cpp", version{1, 0, 12}},
	{"Nacos-DNS", version{0, 4, 3}},
	{"Nacos-Python-Client", version{0, 4, 3}},
}

// PushCapable reports whether a client with this User-Agent (or
// Client-Version) header listens for UDP pushes, using the rules of Nacos's
// ClientInfo: a known prefix followed by ":v<version>" at or above that
// client's first push-capable version. The Node client identifies itself as
// Nacos-Java-Client:v1.0.0.
func PushCapable(userAgent string) bool {
	ua := strings.TrimSpace(userAgent)
	for _, a := range pushAgents {
		if !strings.HasPrefix(ua, a.prefix) {
			continue
		}
		v, ok := parseAgentVersion(ua)
		return ok && !v.less(a.min)
	}
	return false
}

// maxPacketFor is the largest datagram a client with this User-Agent reads
// whole.
func maxPacketFor(userAgent string) int {
	if strings.HasPrefix(strings.TrimSpace(userAgent), "Nacos-Go-Client") {
		return goClientReadBuffer
	}
	return maxDatagram
}

// parseAgentVersion reads the version after the first ":v" the way Jackson's
// VersionUtil does: parts split on any of "-_./;:", each part's leading
// digits taken as its number (so "1.1.6-beta" is 1.1.6).
func parseAgentVersion(ua string) (version, bool) {
	i := strings.Index(ua, ":v")
	if i < 0 {
		return version{}, false
	}
	s := strings.TrimSpace(ua[i+2:])
	if s == "" || s[0] < '0' || s[0] > '9' {
		return version{}, false
	}
	var v version
	part := 0
	for j := 0; j < len(s) && part < len(v); {
		n := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			if n < 1_000_000 {
				n = n*10 + int(s[j]-'0')
			}
			j++
		}
		v[part] = n
		part++
		// Skip the rest of the part up to the next separator.
		for j < len(s) && !strings.ContainsRune("-_./;:", rune(s[j])) {
			j++
		}
		if j < len(s) {
			j++ // the separator
		}
	}
	return v, true
}
