// Package h1lex holds the byte-level rules of HTTP/1.1 field syntax
// (RFC 9110 section 5, RFC 9112 section 5) that nubo's two fast parsers
// share: h1server's plain request parser and upstream's plain response
// parser. Each rule is written to agree with what net/http and textproto
// accept, which those parsers' differential tests and fuzz targets check;
// anything a rule refuses goes to net/http's own parser.
package h1lex

import "bytes"

// Tokens reports whether b is made of RFC 9110 token bytes (tchar).
func Tokens(b []byte) bool {
	for _, c := range b {
		if !isTokenByte[c] {
			return false
		}
	}
	return true
}

// PlainValue reports whether b has no byte net/http refuses in a field
// value (controls but HTAB, and DEL) and so no CR or LF.
func PlainValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// IsCanonical reports whether a token field name is in textproto's
// canonical form already: upper case at the start and after each '-',
// lower case elsewhere.
func IsCanonical(b []byte) bool {
	upper := true
	for _, c := range b {
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// TrimLeftOWS trims the spaces and tabs (RFC 9110's OWS) at the start.
func TrimLeftOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// TrimOWS trims spaces and tabs at both ends, as textproto does to a
// field's value.
func TrimOWS(b []byte) []byte {
	b = TrimLeftOWS(b)
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenByte is RFC 9110's tchar, as a table: a lookup per byte on the
// parsers' path. It is built once and never written.
var isTokenByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			t[c] = true
		default:
			t[c] = c < 128 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(c)) >= 0
		}
	}
	return t
}()
