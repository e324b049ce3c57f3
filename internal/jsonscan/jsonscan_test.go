package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var samples = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e+10`, `true`, `false`, `null`, ` {"a" : [1, 2, {"b": null}], "c": "d"} `,
	`{"a":1,}`, `[1,]`, `[,1]`, `{,"a":1}`, `{"a" 1}`, `{"a":1 "b":2}`, `[1 2]`, `01`, `1.`, `.1`, `1e`, `-`, `+1`,
	`"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"a\x01b"`, "\"\xff\"", `"\'"`, `"\x"`,
	`"\u12"`, `"abc`, `{"a":"b"}}`, `[[[]]]`, `nul`, `truex`, `{"a":tru}`, "\"\u2028\"", `"\/\b\f\n\r\t\\\""`,
	`{"ip":"1.2.3.4","port":80}`, `  `, ``, `{"a":{"b":{"c":[1,{"d":[]}]}}}`, `[1,[2,[3]],4]`, `{"":""}`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, s := range samples {
		if got, want := Valid(s), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if Valid(deep) {
		t.Errorf("nesting beyond MaxDepth accepted")
	}
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if !Valid(ok) {
		t.Errorf("nesting of MaxDepth refused")
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Valid(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	})
}

// FuzzString: every JSON string decodes to what encoding/json makes of it.
func FuzzString(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want string
		werr := json.Unmarshal([]byte(s), &want)
		d := New(s)
		var got string
		ok := false
		switch d.Peek() {
		case String:
			got, ok = d.String()
		case Null: // a no-op for encoding/json
			ok = d.Null()
		}
		err := d.End()
		if !ok && err == nil {
			err = errors.New("not a string")
		}
		if (werr == nil) != (err == nil) {
			t.Fatalf("%q: encoding/json error %v, ours %v", s, werr, err)
		}
		if werr == nil && got != want {
			t.Fatalf("%q: got %q, want %q", s, got, want)
		}
	})
}

func TestObjectWalk(t *testing.T) {
	d := New(` { "a" : "x\n" , "B":[1, "2", {"c":null}], "d": -1.5e3, "e": true } `)
	var keys []string
	if !d.BeginObject() {
		t.Fatal(d.Err())
	}
	for {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		keys = append(keys, k)
		switch k {
		case "a":
			if v, _ := d.String(); v != "x\n" {
				t.Errorf("a = %q", v)
			}
		case "d":
			if v, _ := d.Number(); v != "-1.5e3" {
				t.Errorf("d = %q", v)
			}
		case "e":
			if v, _ := d.Bool(); !v {
				t.Errorf("e = %v", v)
			}
		default:
			if raw, _ := d.Raw(); k == "B" && raw != `[1, "2", {"c":null}]` {
				t.Errorf("B raw = %q", raw)
			}
		}
	}
	if err := d.End(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a,B,d,e" {
		t.Fatalf("keys %v", keys)
	}
	if !Field("serviceName", "serviceName") || !Field("SERVICENAME", "serviceName") || !Field("ſerviceName", "serviceName") || Field("service", "serviceName") {
		t.Fatal("Field does not match as encoding/json does")
	}
}

// TestStringAliases: plain strings are slices of the input, not copies.
func TestStringAliases(t *testing.T) {
	in := `"plain text"`
	d := New(in)
	s, _ := d.String()
	if s != "plain text" || &[]byte(s)[0] == nil {
		t.Fatal(s)
	}
	allocs := testing.AllocsPerRun(100, func() {
		d := New(`{"ip":"10.0.0.1","port":8080,"metadata":{"k":"v"},"w":1.0}`)
		d.BeginObject()
		for {
			if _, ok := d.NextKey(); !ok {
				break
			}
			d.Skip()
		}
		_ = d.End()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations walking a plain object", allocs)
	}
}

// FuzzField: Field matches exactly as bytes.EqualFold (encoding/json's
// rule) for the ASCII field names decoders use.
func FuzzField(f *testing.F) {
	for _, k := range []string{"ip", "IP", "serviceName", "ſerviceName", "K", "k", "port", "Port", "portx", ""} {
		f.Add(k)
	}
	names := []string{"ip", "port", "serviceName", "metadata", "requestId", "k", "s"}
	f.Fuzz(func(t *testing.T, key string) {
		for _, n := range names {
			if got, want := Field(key, n), bytes.EqualFold([]byte(key), []byte(n)); got != want {
				t.Fatalf("Field(%q, %q) = %v, bytes.EqualFold says %v", key, n, got, want)
			}
		}
	})
}
