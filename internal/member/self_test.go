package member

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func addrs(ss ...string) func() ([]netip.Addr, error) {
	return func() ([]netip.Addr, error) {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

// fakeDNS resolves from a table; unknown names fail.
func fakeDNS(table map[string][]string) hostResolver {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := table[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []netip.Addr
		for _, s := range ips {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func TestResolveSelf(t *testing.T) {
	threeOnLoopback := []string{"127.0.0.1:8848", "127.0.0.1:8858", "127.0.0.1:8868"}
	cluster := []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"}
	dns := fakeDNS(map[string][]string{
		"node-a.svc": {"10.0.0.1"},
		"node-b.svc": {"10.0.0.2"},
		"alias.svc":  {"10.0.0.1"},
		"v6.svc":     {"fd00::1"},
	})
	tests := []struct {
		name      string
		advertise string
		members   []string
		port      int
		local     func() ([]netip.Addr, error)
		want      string
		wantErr   []string // substrings of the error
	}{
		{name: "unique ip match", members: cluster, port: 8848, local: addrs("127.0.0.1", "10.0.0.2"), want: "10.0.0.2:8848"},
		{name: "port picks among loopback nodes", members: threeOnLoopback, port: 8858, local: addrs("127.0.0.1", "::1"), want: "127.0.0.1:8858"},
		{name: "ipv4-mapped local address", members: cluster, port: 8848, local: addrs("::ffff:10.0.0.3"), want: "10.0.0.3:8848"},
		{name: "ipv6 member", members: []string{"[fd00::1]:8848", "[fd00::2]:8848"}, port: 8848, local: addrs("fd00::2"), want: "[fd00::2]:8848"},
		{name: "hostname member", members: []string{"node-a.svc:8848", "node-b.svc:8848"}, port: 8848, local: addrs("127.0.0.1", "10.0.0.2"), want: "node-b.svc:8848"},
		{name: "unresolvable other member is fine", members: []string{"gone.svc:8848", "node-a.svc:8848"}, port: 8848, local: addrs("10.0.0.1"), want: "node-a.svc:8848"},
		{name: "advertise wins", advertise: "10.0.0.3:8848", members: cluster, port: 8848, local: addrs("10.0.0.1"), want: "10.0.0.3:8848"},
		{name: "advertise gets default port", advertise: "10.0.0.3", members: cluster, port: 8848, local: addrs(), want: "10.0.0.3:8848"},
		{name: "advertise with empty member list", advertise: "10.0.0.9:8848", port: 8848, local: addrs(), want: "10.0.0.9:8848"},
		{name: "advertise normalised", advertise: "[::FFFF:10.0.0.1]:8848", members: cluster, port: 8848, local: addrs(), want: "10.0.0.1:8848"},

		{name: "no match", members: cluster, port: 8848, local: addrs("127.0.0.1", "192.168.1.5"),
			wantErr: []string{"cannot tell which member", "--advertise", "192.168.1.5", "10.0.0.1:8848"}},
		{name: "right ip wrong port", members: cluster, port: 8858, local: addrs("10.0.0.1"),
			wantErr: []string{"no entry with port 8858", "--advertise"}},
		{name: "two entries for this host", members: []string{"alias.svc:8848", "node-a.svc:8848", "node-b.svc:8848"}, port: 8848, local: addrs("10.0.0.1"),
			wantErr: []string{"2 entries", "alias.svc:8848", "node-a.svc:8848", "--advertise"}},
		{name: "unresolvable own name", members: []string{"gone.svc:8848"}, port: 8848, local: addrs("10.0.0.1"),
			wantErr: []string{"gone.svc:8848: no such host", "--advertise"}},
		{name: "empty members", port: 8848, local: addrs("10.0.0.1"), wantErr: []string{"empty", "--advertise"}},
		{name: "local addrs fail", members: cluster, port: 8848,
			local: func() ([]netip.Addr, error) { return nil, errors.New("boom") }, wantErr: []string{"boom", "--advertise"}},
		{name: "advertise not in list", advertise: "10.0.0.9:8848", members: cluster, port: 8848, local: addrs(),
			wantErr: []string{"10.0.0.9:8848 is not in the member list"}},
		{name: "advertise invalid", advertise: "10.0.0.1:99999", members: cluster, port: 8848, local: addrs(),
			wantErr: []string{"--advertise", "out of range"}},
		{name: "bad port", members: cluster, port: 0, local: addrs(), wantErr: []string{"port 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveSelf(tt.advertise, tt.members, tt.port, tt.local, dns)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestResolveSelfSystem exercises the exported function with the real
// resolver and interface list; loopback only.
func TestResolveSelfSystem(t *testing.T) {
	locals, err := InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(locals, netip.MustParseAddr("127.0.0.1")) {
		t.Skipf("no 127.0.0.1 among %v", locals)
	}
	got, err := ResolveSelf("", []string{"127.0.0.1:18848", "127.0.0.1:18858", "192.0.2.1:18848"}, 18858, InterfaceAddrs)
	if err != nil || got != "127.0.0.1:18858" {
		t.Fatalf("got %q, %v", got, err)
	}
}
