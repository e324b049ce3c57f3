package member

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultPort is the Nacos HTTP port. A member entry without a port gets the
// default port its caller passes, which is normally this one.
const DefaultPort = 8848

// ParseError reports an invalid entry in a member list, naming the line so
// that an operator can find it in cluster.conf or in an address-server reply.
type ParseError struct {
	Line  int    // 1-based line number
	Entry string // the offending entry, trimmed
	Err   error  // what is wrong with it
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d: invalid member %q: %v", e.Line, e.Entry, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// entry is one parsed member entry. host is normalised (IP in canonical form,
// hostname lower-cased, IPv6 without brackets); port is 0 when the entry did
// not give one.
type entry struct {
	host string
	port int
}

// address renders the entry as the member identity "host:port".
func (e entry) address(defaultPort int) string {
	p := e.port
	if p == 0 {
		p = defaultPort
	}
	return net.JoinHostPort(e.host, strconv.Itoa(p))
}

// String renders the entry as written in a member list: host or host:port,
// IPv6 in brackets.
func (e entry) String() string {
	if e.port != 0 {
		return e.address(0)
	}
	if strings.Contains(e.host, ":") {
		return "[" + e.host + "]"
	}
	return e.host
}

// ParseMembers parses a member list in the Nacos cluster.conf format and
// returns the member identities ("host:port"), sorted and de-duplicated. It is
// the single parser for cluster.conf, address-server replies and --members, so
// that every node renders the same entry as the same identity string (hazard
// H13).
//
// Format: one or more entries per line separated by commas; '#' starts a
// comment that runs to the end of the line; blank lines are ignored. An entry
// is ip, ip:port, hostname, hostname:port, [ipv6] or [ipv6]:port. Entries
// without a port get defaultPort. IPv6 addresses must be bracketed, because
// "fe80::1:8848" is itself a valid address and so would be ambiguous.
// Hostnames are lower-cased and IPs put in canonical form (IPv4-mapped IPv6
// becomes IPv4). An empty list is not an error here; callers decide.
func ParseMembers(text string, defaultPort int) ([]string, error) {
	if err := checkPort(defaultPort); err != nil {
		return nil, fmt.Errorf("default port: %w", err)
	}
	entries, err := parseEntries(text)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.address(defaultPort))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseAddress parses and normalises a single member entry, for flags such as
// --advertise. It accepts the same forms as one cluster.conf entry.
func ParseAddress(s string, defaultPort int) (string, error) {
	if err := checkPort(defaultPort); err != nil {
		return "", fmt.Errorf("default port: %w", err)
	}
	e, err := parseEntry(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("invalid member address %q: %w", s, err)
	}
	return e.address(defaultPort), nil
}

// parseEntries splits text into entries without applying a default port.
func parseEntries(text string) ([]entry, error) {
	var out []entry
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		for tok := range strings.SplitSeq(line, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			e, err := parseEntry(tok)
			if err != nil {
				return nil, &ParseError{Line: i + 1, Entry: tok, Err: err}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

var (
	errIPv6Brackets = errors.New("IPv6 addresses must be written in brackets, e.g. [::1]:8848")
	errEmptyHost    = errors.New("empty host")
)

// parseEntry parses one trimmed, non-empty entry.
func parseEntry(s string) (entry, error) {
	if s == "" {
		return entry{}, errEmptyHost
	}
	var hostPart, portPart string
	hasPort := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return entry{}, errors.New("missing ']'")
		}
		hostPart, portPart = s[1:end], s[end+1:]
		if portPart != "" {
			if portPart[0] != ':' {
				return entry{}, errors.New("unexpected text after ']'")
			}
			portPart, hasPort = portPart[1:], true
		}
		a, err := netip.ParseAddr(hostPart)
		if err != nil || !a.Is6() {
			return entry{}, errors.New("brackets must hold an IPv6 address")
		}
		if a.Zone() != "" {
			return entry{}, errors.New("IPv6 zones are not supported in member addresses")
		}
		hostPart = a.Unmap().String()
	} else {
		switch strings.Count(s, ":") {
		case 0:
			hostPart = s
		case 1:
			i := strings.IndexByte(s, ':')
			hostPart, portPart, hasPort = s[:i], s[i+1:], true
		default:
			return entry{}, errIPv6Brackets
		}
		h, err := normaliseHost(hostPart)
		if err != nil {
			return entry{}, err
		}
		hostPart = h
	}
	port := 0
	if hasPort {
		p, err := parsePort(portPart)
		if err != nil {
			return entry{}, err
		}
		port = p
	}
	return entry{host: hostPart, port: port}, nil
}

// normaliseHost validates an IPv4 address or a hostname.
func normaliseHost(h string) (string, error) {
	if h == "" {
		return "", errEmptyHost
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String(), nil
	}
	if len(h) > 253 {
		return "", errors.New("hostname longer than 253 characters")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("invalid hostname %q: empty or over-long label", h)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("invalid hostname %q: label starts or ends with '-'", h)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return "", fmt.Errorf("invalid hostname %q: character %q not allowed", h, c)
			}
		}
	}
	// A name whose last label is numeric is a mistyped IPv4 address
	// ("10.0.0", "10.0.0.256"), not a hostname.
	if isDigits(labels[len(labels)-1]) {
		return "", fmt.Errorf("invalid IPv4 address %q", h)
	}
	return strings.ToLower(h), nil
}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty port")
	}
	if len(s) > 5 || !isDigits(s) {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	p, _ := strconv.Atoi(s)
	if err := checkPort(p); err != nil {
		return 0, err
	}
	return p, nil
}

func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", p)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// splitAddress splits a member identity into host and numeric port.
func splitAddress(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := parsePort(ps)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	return host, p, nil
}
