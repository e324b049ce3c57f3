package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
)

func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		"", "{}", `{"a":"b"}`, `{"n":1,"t":true,"z":null}`, `{"a":{"b":1}}`, `{"a":"b"}}`,
		"k=v,k2=v2", "=v", "k", `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", "k=\x00", `{"":""}`,
	} {
		f.Add(s)
	}
	l := Limits{MaxNameLen: 255, MaxMetadataKeys: 8, MaxMetadataBytes: 256, MaxBodyBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, s string) {
		md, err := l.ParseMetadata(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if md != nil {
				t.Fatalf("error with a non-nil result %v", md)
			}
			return
		}
		if err := l.ValidateMetadata(md); err != nil {
			t.Fatalf("accepted metadata %v does not validate: %v", md, err)
		}
	})
}

func FuzzParseServiceKey(f *testing.F) {
	for _, s := range [][3]string{
		{"", "", "DEFAULT_GROUP@@demo"}, {"ns", "g", "svc"}, {"", "", "a@@b@@c"}, {"", "", "@@x"},
		{" ", " ", " g@@x "}, {"", "", "a\x00b"}, {"", "", ".."}, {"", "", "a/b"}, {"", "", "服务"},
		{"", "", "g@@"}, {"", "", "@@@"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	l := DefaultLimits()
	f.Fuzz(func(t *testing.T, ns, group, name string) {
		k, err := l.ParseServiceKey(ns, group, name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// A canonical key parses back to itself in both forms.
		for _, in := range [][3]string{{k.Namespace, k.Group, k.Name}, {k.Namespace, "", k.Grouped()}} {
			k2, err := l.ParseServiceKey(in[0], in[1], in[2])
			if err != nil || k2 != k {
				t.Fatalf("key %+v from (%q,%q,%q) does not re-validate from %q: %+v, %v", k, ns, group, name, in, k2, err)
			}
		}
		for _, part := range []string{k.Namespace, k.Group, k.Name} {
			if err := l.ValidateName("part", part); err != nil {
				t.Fatalf("key %+v has an invalid part: %v", k, err)
			}
		}
	})
}

// parseMetadataRef is the encoding/json implementation ParseMetadata
// replaced: the reference its results are checked against.
func parseMetadataRef(l Limits, s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || !strings.HasPrefix(s, "{") {
		return l.ParseMetadata(s) // the k=v form did not change
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	if !AtEOF(dec) {
		return nil, errors.New("trailing data")
	}
	md := make(map[string]string, len(raw))
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch v[0] {
		case '"':
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				return nil, err
			}
			md[k] = str
		case '{', '[':
			return nil, errors.New("nested")
		case 'n':
			md[k] = ""
		default:
			md[k] = string(v)
		}
	}
	if err := l.ValidateMetadata(md); err != nil {
		return nil, err
	}
	return md, nil
}

// FuzzParseMetadataMatchesReference: the hand-written JSON path accepts and
// decodes exactly what the encoding/json implementation did.
func FuzzParseMetadataMatchesReference(f *testing.F) {
	for _, s := range []string{
		"{}", `{"a":"b"}`, `{"n":1.50,"t":true,"z":null}`, `{"a":{"b":1}}`, `{"a":{"b":1},"a":"x"}`, `{"a":"x","a":[1]}`,
		`{"a":"b"}}`, `{"a":"b"} {}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"":""}`, `{"k\u00e9":"\n"}`, `{"a":"b",}`,
		`{"a":-0,"b":1e5,"c":false}`, ` { "x" : "y" } `,
	} {
		f.Add(s)
	}
	l := Limits{MaxNameLen: 255, MaxMetadataKeys: 8, MaxMetadataBytes: 256, MaxBodyBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := l.ParseMetadata(s)
		want, werr := parseMetadataRef(l, s)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, reference %v", s, err, werr)
		}
		if err == nil && !maps.Equal(got, want) {
			t.Fatalf("%q: %v, reference %v", s, got, want)
		}
	})
}
