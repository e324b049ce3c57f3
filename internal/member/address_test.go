package member

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseMembers(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		defaultPort int
		want        []string
		wantErr     string // substring; "" means no error
		wantLine    int
	}{
		{name: "empty", text: "", want: []string{}},
		{name: "blank and comment lines", text: "\n  \n# comment\n\t# indented comment\n", want: []string{}},
		{name: "one per line default port", text: "10.0.0.2\n10.0.0.1\n", want: []string{"10.0.0.1:8848", "10.0.0.2:8848"}},
		{name: "explicit ports", text: "10.0.0.1:8848\n10.0.0.1:8858", want: []string{"10.0.0.1:8848", "10.0.0.1:8858"}},
		{name: "custom default port", text: "10.0.0.1\n10.0.0.2:80", defaultPort: 9000, want: []string{"10.0.0.1:9000", "10.0.0.2:80"}},
		{name: "comma separated", text: "10.0.0.1, 10.0.0.2:8849 ,10.0.0.3", want: []string{"10.0.0.1:8848", "10.0.0.2:8849", "10.0.0.3:8848"}},
		{name: "trailing comma", text: "10.0.0.1,", want: []string{"10.0.0.1:8848"}},
		{name: "rest of line comment", text: "10.0.0.1 # first node\n10.0.0.2#second", want: []string{"10.0.0.1:8848", "10.0.0.2:8848"}},
		{name: "comment hides entries", text: "10.0.0.1 # ,10.0.0.9", want: []string{"10.0.0.1:8848"}},
		{name: "crlf", text: "10.0.0.1\r\n10.0.0.2\r\n", want: []string{"10.0.0.1:8848", "10.0.0.2:8848"}},
		{name: "duplicates removed", text: "10.0.0.1\n10.0.0.1:8848\n10.0.0.1", want: []string{"10.0.0.1:8848"}},
		{name: "same host default and explicit differ", text: "10.0.0.1\n10.0.0.1:8849", want: []string{"10.0.0.1:8848", "10.0.0.1:8849"}},
		{name: "hostnames lower-cased", text: "Nacos-0.Nacos.default.svc.cluster.local:8848\nnode_1", want: []string{"nacos-0.nacos.default.svc.cluster.local:8848", "node_1:8848"}},
		{name: "localhost", text: "localhost", want: []string{"localhost:8848"}},
		{name: "ipv6 bracketed", text: "[::1]:8848\n[fe80::1]\n[2001:DB8::1]:9000", want: []string{"[2001:db8::1]:9000", "[::1]:8848", "[fe80::1]:8848"}},
		{name: "ipv4-mapped ipv6 unmapped", text: "[::ffff:10.0.0.1]:8848", want: []string{"10.0.0.1:8848"}},
		{name: "port leading zeros normalised", text: "10.0.0.1:08848", want: []string{"10.0.0.1:8848"}},
		{name: "port max", text: "10.0.0.1:65535", want: []string{"10.0.0.1:65535"}},

		{name: "port zero", text: "10.0.0.1:0", wantErr: "out of range", wantLine: 1},
		{name: "port too big", text: "10.0.0.1\n10.0.0.2:65536", wantErr: "out of range", wantLine: 2},
		{name: "port not numeric", text: "10.0.0.1:http", wantErr: "invalid port", wantLine: 1},
		{name: "port signed", text: "10.0.0.1:+80", wantErr: "invalid port", wantLine: 1},
		{name: "port empty", text: "10.0.0.1:", wantErr: "empty port", wantLine: 1},
		{name: "host empty", text: ":8848", wantErr: "empty host", wantLine: 1},
		{name: "bare ipv6", text: "\n\n::1", wantErr: "brackets", wantLine: 3},
		{name: "bare ipv6 with port is ambiguous", text: "fe80::1:8848", wantErr: "brackets", wantLine: 1},
		{name: "unclosed bracket", text: "[::1:8848", wantErr: "missing ']'", wantLine: 1},
		{name: "ipv4 in brackets", text: "[10.0.0.1]:8848", wantErr: "IPv6", wantLine: 1},
		{name: "junk after bracket", text: "[::1]8848", wantErr: "after ']'", wantLine: 1},
		{name: "ipv6 zone", text: "[fe80::1%eth0]:8848", wantErr: "zones", wantLine: 1},
		{name: "bad ipv4 octet", text: "10.0.0.256", wantErr: "invalid IPv4", wantLine: 1},
		{name: "short ipv4", text: "10.0.0", wantErr: "invalid IPv4", wantLine: 1},
		{name: "space inside entry", text: "10.0.0.1 10.0.0.2", wantErr: "not allowed", wantLine: 1},
		{name: "garbage", text: "10.0.0.1\nhello world!", wantErr: "not allowed", wantLine: 2},
		{name: "label with hyphen edge", text: "-bad.example", wantErr: "'-'", wantLine: 1},
		{name: "empty label", text: "a..b", wantErr: "empty or over-long label", wantLine: 1},
		{name: "long label", text: strings.Repeat("a", 64) + ".com", wantErr: "over-long", wantLine: 1},
		{name: "bad default port", text: "10.0.0.1", defaultPort: 70000, wantErr: "default port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dp := tt.defaultPort
			if dp == 0 {
				dp = DefaultPort
			}
			got, err := ParseMembers(tt.text, dp)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseMembers(%q) = %v, want error containing %q", tt.text, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if tt.wantLine != 0 {
					var pe *ParseError
					if !errors.As(err, &pe) {
						t.Fatalf("error %v is not a *ParseError", err)
					}
					if pe.Line != tt.wantLine {
						t.Fatalf("error names line %d, want %d", pe.Line, tt.wantLine)
					}
					if !strings.Contains(err.Error(), "line "+strconv.Itoa(tt.wantLine)) {
						t.Fatalf("error %q does not name line %d", err, tt.wantLine)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMembers(%q): %v", tt.text, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseMembers(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in, want string
		port     int
		wantErr  bool
	}{
		{in: "10.0.0.1:8848", port: 8848, want: "10.0.0.1:8848"},
		{in: " 10.0.0.1 ", port: 8858, want: "10.0.0.1:8858"},
		{in: "[::1]", port: 8848, want: "[::1]:8848"},
		{in: "Host.Example:80", port: 8848, want: "host.example:80"},
		{in: "", port: 8848, wantErr: true},
		{in: "a,b", port: 8848, wantErr: true},
		{in: "10.0.0.1:99999", port: 8848, wantErr: true},
		{in: "10.0.0.1", port: 0, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.in, tt.port)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAddress(%q, %d) = %q, %v; want %q, error %v", tt.in, tt.port, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseMembers checks that the parser never panics and that what it
// accepts is canonical: sorted, unique, every address splits into a valid
// host and port, and re-parsing the output gives the output back.
func FuzzParseMembers(f *testing.F) {
	for _, s := range []string{
		"",
		"10.0.0.1\n10.0.0.2:8849",
		"10.0.0.1, 10.0.0.2 # comment\n# whole line\n",
		"[::1]:8848,[fe80::1]",
		"nacos-0.nacos.svc:8848\r\nNODE_1",
		"[::ffff:1.2.3.4]:1",
		"10.0.0.1:08848",
		"fe80::1:8848",
		"[::1",
		"a..b:1",
		"1.2.3.4.5",
		"host:65536",
	} {
		f.Add(s, DefaultPort)
	}
	f.Add("10.0.0.1", 1)
	f.Add("10.0.0.1", 65535)
	f.Fuzz(func(t *testing.T, text string, defaultPort int) {
		got, err := ParseMembers(text, defaultPort)
		if err != nil {
			return
		}
		if !slices.IsSorted(got) {
			t.Fatalf("not sorted: %q", got)
		}
		if len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("duplicates: %q", got)
		}
		for _, a := range got {
			if _, _, err := splitAddress(a); err != nil {
				t.Fatalf("output %q does not split: %v", a, err)
			}
			if n, err := ParseAddress(a, defaultPort); err != nil || n != a {
				t.Fatalf("ParseAddress(%q) = %q, %v; want it unchanged", a, n, err)
			}
		}
		again, err := ParseMembers(strings.Join(got, "\n"), defaultPort)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", got, err)
		}
		if !slices.Equal(again, got) {
			t.Fatalf("re-parse changed the list: %q -> %q", got, again)
		}
	})
}
