package member

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// resolveTimeout bounds each hostname lookup in ResolveSelf, so that a broken
// resolver delays startup by seconds, not minutes.
const resolveTimeout = 2 * time.Second

// hostResolver resolves a hostname to addresses; ResolveSelf uses the system
// resolver and tests inject their own.
type hostResolver func(ctx context.Context, host string) ([]netip.Addr, error)

func systemResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// ResolveSelf decides which member-list entry is this node. The answer is the
// node's identity everywhere (ownership, the nodes page, sync), so it must be
// the exact string its peers use for it (hazard H13: a node that does not find
// itself in its own list would claim every key). It therefore never guesses.
//
// With advertise set, it is normalised (a missing port becomes port) and used,
// but it must appear in members when members is non-empty. Otherwise the
// answer is the single entry whose port equals port and whose host is one of
// this host's addresses (localAddrs, loopback included; hostnames are
// resolved with the system resolver). No match, or several, is an error that
// tells the operator to pass --advertise.
func ResolveSelf(advertise string, members []string, port int, localAddrs func() ([]netip.Addr, error)) (string, error) {
	return resolveSelf(advertise, members, port, localAddrs, systemResolve)
}

func resolveSelf(advertise string, members []string, port int, localAddrs func() ([]netip.Addr, error), resolve hostResolver) (string, error) {
	if err := checkPort(port); err != nil {
		return "", fmt.Errorf("member: self identity: HTTP %w", err)
	}
	if advertise != "" {
		self, err := ParseAddress(advertise, port)
		if err != nil {
			return "", fmt.Errorf("member: --advertise: %w", err)
		}
		if len(members) > 0 && !slices.Contains(members, self) {
			return "", fmt.Errorf("member: advertised address %s is not in the member list %v; "+
				"every node must list this node under exactly that address (add it to the member list, or fix --advertise)",
				self, members)
		}
		return self, nil
	}
	if len(members) == 0 {
		return "", errors.New("member: self identity: the member list is empty; pass --advertise ip:port")
	}
	locals, err := localAddrs()
	if err != nil {
		return "", fmt.Errorf("member: self identity: listing local addresses: %w; pass --advertise ip:port", err)
	}
	local := make(map[netip.Addr]bool, len(locals))
	for _, a := range locals {
		local[a.Unmap().WithZone("")] = true
	}

	var matches, candidates, problems []string
	for _, m := range members {
		host, p, err := splitAddress(m)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", m, err))
			continue
		}
		if p != port {
			continue
		}
		candidates = append(candidates, m)
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
			addrs, err = resolve(ctx, host)
			cancel()
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", m, err))
				continue
			}
		}
		if slices.ContainsFunc(addrs, func(a netip.Addr) bool { return local[a.Unmap().WithZone("")] }) {
			matches = append(matches, m)
		}
	}

	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		var b strings.Builder
		fmt.Fprintf(&b, "member: cannot tell which member is this node: no entry with port %d is an address of this host", port)
		fmt.Fprintf(&b, " (entries with port %d: %v; local addresses: %v", port, candidates, locals)
		if len(problems) > 0 {
			fmt.Fprintf(&b, "; unresolved: %s", strings.Join(problems, "; "))
		}
		b.WriteString("); pass --advertise ip:port with this node's exact entry in the member list")
		return "", errors.New(b.String())
	default:
		return "", fmt.Errorf("member: cannot tell which member is this node: %d entries with port %d are addresses of this host (%v); "+
			"pass --advertise ip:port with this node's exact entry in the member list", len(matches), port, matches)
	}
}

// InterfaceAddrs lists this host's interface addresses, loopback included. It
// is the localAddrs argument ResolveSelf takes in production.
func InterfaceAddrs() ([]netip.Addr, error) {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ifas))
	for _, ifa := range ifas {
		var ip net.IP
		switch v := ifa.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}
