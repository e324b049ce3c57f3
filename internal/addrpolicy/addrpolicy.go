// Package addrpolicy decides which IP addresses the server may connect to
// on a client's behalf. Server-side health checks connect to whatever
// address a client registered, so without a policy anyone allowed to
// register a persistent instance could make the server scan ports or send
// GETs to internal addresses (a blind SSRF), such as a cloud's instance
// metadata service. The decision is made on the address actually dialled,
// after name resolution, so a host name cannot route around it.
package addrpolicy

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultDeny is the default deny list: link-local addresses (IPv4
// 169.254.0.0/16, which holds the AWS, GCP, Azure and OpenStack metadata
// service 169.254.169.254, and IPv6 fe80::/10), AWS's IPv6 metadata
// address, Alibaba Cloud's metadata address, Azure's WireServer, and
// 169.254.0.0/16 behind NAT64. Loopback is allowed: a health check of a
// local process is legitimate (and tests rely on it).
const DefaultDeny = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,168.63.129.16/32,64:ff9b::a9fe:0/112"

// Policy allows an address unless a Deny prefix contains it, and, when
// Allow is not empty, only if an Allow prefix contains it.
type Policy struct {
	Deny  []netip.Prefix
	Allow []netip.Prefix
}

// Default is the policy with DefaultDeny and no allow list.
func Default() Policy {
	p, err := Parse(DefaultDeny, "")
	if err != nil {
		panic(err) // a constant
	}
	return p
}

// Parse builds a policy from comma-separated lists of CIDR prefixes or
// single addresses.
func Parse(deny, allow string) (Policy, error) {
	d, err := ParseList(deny)
	if err != nil {
		return Policy{}, err
	}
	a, err := ParseList(allow)
	if err != nil {
		return Policy{}, err
	}
	return Policy{Deny: d, Allow: a}, nil
}

// ParseList parses a comma-separated list of CIDR prefixes ("10.0.0.0/8",
// "fd00::/8") or single addresses ("10.1.2.3", a /32 or /128). Blank
// entries are skipped; IPv4-mapped IPv6 forms are taken as IPv4.
func ParseList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", f)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", f)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check returns nil if a may be connected to, else an error naming the
// rule that refuses it. IPv4-mapped IPv6 addresses are checked as IPv4, and
// the unspecified address (which Linux connects to a local listener) as
// loopback.
func (p Policy) Check(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	switch {
	case a == netip.IPv4Unspecified():
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case a == netip.IPv6Unspecified():
		a = netip.IPv6Loopback()
	}
	for _, d := range p.Deny {
		if d.Contains(a) {
			return fmt.Errorf("address %s is in the denied range %s", a, d)
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, al := range p.Allow {
		if al.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("address %s is in no allowed range", a)
}
