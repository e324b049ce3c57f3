// Package jsonscan is a small pull decoder for JSON texts, for the request
// shapes on the hot paths (heartbeats, metadata, Nacos 2 requests). It
// reads a string in place and allocates only for strings that carry
// escapes or invalid UTF-8.
//
// It accepts exactly the texts encoding/json accepts, decodes strings the
// same way (invalid UTF-8 and lone surrogates become U+FFFD), and leaves
// field matching (encoding/json matches keys case-insensitively) and
// duplicate keys (the last one wins) to its callers, which the package's
// tests check against encoding/json.
//
// Strings returned may share memory with the input: a caller that keeps
// one beyond the life of the input should copy it.
package jsonscan

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the kind of the next value.
type Kind uint8

// Value kinds.
const (
	Invalid Kind = iota
	Object
	Array
	String
	Number
	Bool
	Null
)

// MaxDepth is the deepest nesting accepted, as in encoding/json.
const MaxDepth = 10000

// SyntaxError is a malformed text, with the offset of the offending byte.
type SyntaxError struct {
	Msg    string
	Offset int
}

func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// ErrType is returned (wrapped) when a value has the wrong kind for the
// field being read.
var ErrType = errors.New("wrong JSON type")

// TypeError is a value of the wrong kind for a field.
type TypeError struct {
	Field string
	Want  string
	Got   Kind
}

func (e *TypeError) Error() string {
	return "field " + strconv.Quote(e.Field) + ": want " + e.Want + ", got " + e.Got.String()
}

// Unwrap makes errors.Is(err, ErrType) hold.
func (e *TypeError) Unwrap() error { return ErrType }

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Object:
		return "object"
	case Array:
		return "array"
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "boolean"
	case Null:
		return "null"
	}
	return "invalid"
}

// Decoder reads one JSON text. The zero value is not usable; use New or
// Reset. After the first error every method fails and Err reports it.
type Decoder struct {
	s     string
	i     int
	depth int
	err   error
	// first is set right after a '{' or '[' (its first member or element
	// takes no ',').
	first bool
}

// New returns a decoder of s.
func New(s string) Decoder { return Decoder{s: s} }

// Reset makes d read s.
func (d *Decoder) Reset(s string) { *d = Decoder{s: s} }

// Err returns the first error.
func (d *Decoder) Err() error { return d.err }

// Fail records err (the first one wins) and returns false.
func (d *Decoder) Fail(err error) bool {
	if d.err == nil {
		d.err = err
	}
	return false
}

func (d *Decoder) syntax(msg string) bool {
	return d.Fail(&SyntaxError{Msg: msg, Offset: d.i})
}

func (d *Decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// Peek returns the kind of the next value without consuming it (Invalid
// at the end of input or after an error).
func (d *Decoder) Peek() Kind {
	if d.err != nil {
		return Invalid
	}
	d.ws()
	if d.i >= len(d.s) {
		return Invalid
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == '-' || c >= '0' && c <= '9':
		return Number
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	}
	return Invalid
}

// BeginObject consumes '{'. Read the members with NextKey and a value
// reader each, until NextKey reports the end.
func (d *Decoder) BeginObject() bool {
	if d.Peek() != Object {
		return d.syntax("expected an object")
	}
	return d.open()
}

func (d *Decoder) open() bool {
	d.i++
	d.depth++
	d.first = true
	if d.depth > MaxDepth {
		return d.syntax("exceeded max depth")
	}
	return true
}

// NextKey reads the key of the next member of the object being read and
// the colon after it. It returns false at the end of the object (the
// closing brace is consumed) or on error (see Err). The key is unescaped.
func (d *Decoder) NextKey() (string, bool) {
	if d.err != nil {
		return "", false
	}
	d.ws()
	if d.i >= len(d.s) {
		return "", d.syntax("unexpected end of input in object")
	}
	first := d.first
	d.first = false
	switch c := d.s[d.i]; {
	case c == '}':
		d.i++
		d.depth--
		return "", false
	case first && c == '"':
	case !first && c == ',':
		d.i++
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return "", d.syntax("expected a key after ','")
		}
	default:
		return "", d.syntax("expected a key or the end of the object")
	}
	k, ok := d.str()
	if !ok {
		return "", false
	}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != ':' {
		return "", d.syntax("expected ':' after a key")
	}
	d.i++
	return k, true
}

// BeginArray consumes '['. Read the elements with NextElem and a value
// reader each.
func (d *Decoder) BeginArray() bool {
	if d.Peek() != Array {
		return d.syntax("expected an array")
	}
	return d.open()
}

// NextElem reports whether another element of the array being read
// follows (consuming the ',' before it); false at the end (the ']' is
// consumed) or on error.
func (d *Decoder) NextElem() bool {
	if d.err != nil {
		return false
	}
	d.ws()
	if d.i >= len(d.s) {
		return d.syntax("unexpected end of input in array")
	}
	first := d.first
	d.first = false
	switch c := d.s[d.i]; {
	case c == ']':
		d.i++
		d.depth--
		return false
	case first:
		return true
	case c == ',':
		d.i++
		return true
	}
	return d.syntax("expected ',' or ']'")
}

// String reads a string value (unescaped).
func (d *Decoder) String() (string, bool) {
	if d.Peek() != String {
		return "", d.syntax("expected a string")
	}
	return d.str()
}

// plain marks the bytes a string holds as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads the string at the cursor.
func (d *Decoder) str() (string, bool) {
	s := d.s
	start := d.i + 1
	i := start
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i < len(s) && s[i] == '"' {
		d.i = i + 1
		return s[start:i], true
	}
	if i < len(s) {
		return d.slowStr(start, i)
	}
	d.i = i
	return "", d.syntax("unterminated string")
}

// slowStr decodes a string with escapes, control characters or non-ASCII
// bytes from s[start:], s[start:i] being plain ASCII.
func (d *Decoder) slowStr(start, i int) (string, bool) {
	s := d.s
	var b []byte
	clean := true // s[start:i] needs no rewriting so far
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			if clean {
				return s[start:i], true
			}
			return string(b), true
		case c < ' ':
			d.i = i
			return "", d.syntax("control character in string")
		case c < utf8.RuneSelf && c != '\\':
			if !clean {
				b = append(b, c)
			}
			i++
		case c == '\\':
			if clean {
				b = append(make([]byte, 0, len(s)-start), s[start:i]...)
				clean = false
			}
			if i+1 >= len(s) {
				d.i = i
				return "", d.syntax("unterminated string")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				i += 2
			case 'b':
				b = append(b, '\b')
				i += 2
			case 'f':
				b = append(b, '\f')
				i += 2
			case 'n':
				b = append(b, '\n')
				i += 2
			case 'r':
				b = append(b, '\r')
				i += 2
			case 't':
				b = append(b, '\t')
				i += 2
			case 'u':
				r := hex4(s, i+2)
				if r < 0 {
					d.i = i
					return "", d.syntax("invalid \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair needs a second \u escape; encoding/json's scanner
					// validates it independently, so check it is well formed
					// before combining.
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r1 := hex4(s, i+2); r1 >= 0 {
							if dec := utf16.DecodeRune(r, r1); dec != unicode.ReplacementChar {
								b = utf8.AppendRune(b, dec)
								i += 6
								break
							}
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
			default:
				d.i = i
				return "", d.syntax("invalid escape in string")
			}
		default: // non-ASCII
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				if clean {
					b = append(make([]byte, 0, len(s)-start+8), s[start:i]...)
					clean = false
				}
				b = utf8.AppendRune(b, utf8.RuneError)
			} else if !clean {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	d.i = i
	return "", d.syntax("unterminated string")
}

func hex4(s string, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// Number reads a number and returns its literal text.
func (d *Decoder) Number() (string, bool) {
	if d.Peek() != Number {
		return "", d.syntax("expected a number")
	}
	s, start, i := d.s, d.i, d.i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		d.i = i
		return "", d.syntax("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			return "", d.syntax("invalid number")
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			return "", d.syntax("invalid number")
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	return s[start:i], true
}

// Bool reads true or false.
func (d *Decoder) Bool() (bool, bool) {
	if d.Peek() != Bool {
		return false, d.syntax("expected a boolean")
	}
	if d.lit("true") {
		return true, true
	}
	if d.lit("false") {
		return false, true
	}
	return false, d.syntax("invalid literal")
}

// Null reads null.
func (d *Decoder) Null() bool {
	if d.Peek() != Null || !d.lit("null") {
		return d.syntax("invalid literal")
	}
	return true
}

func (d *Decoder) lit(w string) bool {
	if len(d.s)-d.i >= len(w) && d.s[d.i:d.i+len(w)] == w {
		d.i += len(w)
		return true
	}
	return false
}

// Skip reads any value and discards it.
func (d *Decoder) Skip() bool {
	_, ok := d.Raw()
	return ok
}

// Raw reads any value and returns its text (without surrounding white
// space), validated.
func (d *Decoder) Raw() (string, bool) {
	k := d.Peek()
	start := d.i
	var ok bool
	switch k {
	case Object:
		ok = d.BeginObject()
		for ok {
			if _, more := d.NextKey(); !more {
				break
			}
			ok = d.Skip()
		}
	case Array:
		ok = d.BeginArray()
		for ok && d.NextElem() {
			ok = d.Skip()
		}
	case String:
		_, ok = d.str()
	case Number:
		_, ok = d.Number()
	case Bool:
		_, ok = d.Bool()
	case Null:
		ok = d.Null()
	default:
		if d.err == nil {
			if d.i >= len(d.s) {
				return "", d.syntax("unexpected end of input")
			}
			return "", d.syntax("invalid character")
		}
		return "", false
	}
	if !ok || d.err != nil {
		return "", false
	}
	return d.s[start:d.i], true
}

// End checks that only white space follows the value read and returns
// the first error of the decoder.
func (d *Decoder) End() error {
	if d.err != nil {
		return d.err
	}
	d.ws()
	if d.i != len(d.s) {
		d.syntax("invalid character after top-level value")
	}
	return d.err
}

// Valid reports whether s is one valid JSON text, as json.Valid does.
func Valid(s string) bool {
	d := New(s)
	if !d.Skip() {
		return false
	}
	return d.End() == nil
}

// Field reports whether the key matches a field name as encoding/json
// matches them: exactly, or else case-insensitively (bytes.EqualFold).
func Field(key, name string) bool {
	if len(key) == len(name) {
		return key == name || strings.EqualFold(key, name)
	}
	// A rune folds to runes of at most as many bytes (non-ASCII ones to
	// ASCII ones in the case that matters here), so a key that folds to a
	// name of another length is longer and holds non-ASCII bytes.
	return len(key) > len(name) && !isASCII(key) && strings.EqualFold(key, name)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Match returns the index of the first name key matches as encoding/json
// matches a field (an exact match first, then a case-insensitive one), or
// -1: one call per key instead of a Field call per candidate.
func Match(key string, names ...string) int {
	for i, n := range names {
		if key == n {
			return i
		}
	}
	for i, n := range names {
		if Field(key, n) {
			return i
		}
	}
	return -1
}
