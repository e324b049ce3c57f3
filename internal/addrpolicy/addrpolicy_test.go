package addrpolicy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDefaultPolicy(t *testing.T) {
	p := Default()
	for addr, allowed := range map[string]bool{
		"169.254.169.254":        false, // AWS, GCP, Azure, OpenStack metadata
		"169.254.0.1":            false,
		"::ffff:169.254.169.254": false, // mapped: checked as IPv4
		"fd00:ec2::254":          false,
		"fe80::1":                false,
		"fe80::1%eth0":           false,
		"100.100.100.200":        false,
		"168.63.129.16":          false,
		"64:ff9b::a9fe:a9fe":     false, // 169.254.169.254 through NAT64
		"127.0.0.1":              true,
		"::1":                    true,
		"0.0.0.0":                true, // loopback, which is allowed
		"10.0.0.5":               true,
		"192.168.1.10":           true,
		"2001:db8::1":            true,
		"100.100.100.201":        true,
	} {
		err := p.Check(netip.MustParseAddr(addr))
		if (err == nil) != allowed {
			t.Errorf("%s: %v, want allowed %v", addr, err, allowed)
		}
	}
}

func TestConfiguredPolicy(t *testing.T) {
	p, err := Parse("127.0.0.0/8, ::1 ,10.9.0.0/16", "10.0.0.0/8,::ffff:192.168.0.0/112")
	if err != nil {
		t.Fatal(err)
	}
	for addr, allowed := range map[string]bool{
		"127.0.0.1":   false,
		"0.0.0.0":     false, // the unspecified address reaches loopback
		"::":          false,
		"10.1.2.3":    true,
		"10.9.1.1":    false, // deny wins over allow
		"192.168.4.4": true,  // the mapped allow prefix is taken as 192.168.0.0/16
		"172.16.0.1":  false, // in no allowed range
		"8.8.8.8":     false,
	} {
		if err := p.Check(netip.MustParseAddr(addr)); (err == nil) != allowed {
			t.Errorf("%s: %v, want allowed %v", addr, err, allowed)
		}
	}
	if err := p.Check(netip.MustParseAddr("10.9.1.1")); err == nil || !strings.Contains(err.Error(), "10.9.0.0/16") {
		t.Errorf("refusal does not name the rule: %v", err)
	}
	if p, err := Parse("", ""); err != nil || p.Check(netip.MustParseAddr("169.254.169.254")) != nil {
		t.Errorf("an empty policy refuses: %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1%eth0", "1.2.3/8"} {
		if _, err := ParseList(bad); err == nil {
			t.Errorf("ParseList(%q) accepted", bad)
		}
	}
}

// FuzzParseList: any text either parses into prefixes that decide every
// address without panicking, or is refused; a parsed list names the same
// prefixes when written back and parsed again.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{DefaultDeny, "", "10.0.0.1", "::ffff:10.0.0.0/104", "fe80::1%eth0", "1.2.3.4/40", ",,", "0.0.0.0/0,::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseList(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for i, p := range ps {
			if !p.IsValid() || p.Addr().Is4In6() {
				t.Fatalf("%q gave %v", s, p)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(p.String())
		}
		again, err := ParseList(b.String())
		if err != nil || len(again) != len(ps) {
			t.Fatalf("%q → %q → %v, %v", s, b.String(), again, err)
		}
		for i := range ps {
			if again[i] != ps[i] {
				t.Fatalf("%q: %v became %v", s, ps[i], again[i])
			}
		}
		pol := Policy{Deny: ps}
		for _, a := range []string{"127.0.0.1", "::", "169.254.169.254", "::ffff:10.1.2.3", "2001:db8::1"} {
			_ = pol.Check(netip.MustParseAddr(a))
		}
	})
}
