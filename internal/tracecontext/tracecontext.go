// Package tracecontext reads and writes W3C Trace Context traceparent headers
// and makes trace and span IDs, for the mesh and the gateway, which propagate
// trace context themselves (a span per hop) without the OpenTelemetry SDK.
package tracecontext

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// headerLen is the length of a version-00 traceparent: 00-32hex-16hex-2hex.
const headerLen = 55

// Context is a parsed traceparent.
type Context struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Sampled reports the sampled flag.
func (c Context) Sampled() bool { return c.Flags&1 == 1 }

// Parse reads a traceparent. A higher version is read by its version-00
// prefix, as the specification asks; an invalid value (wrong length, upper
// case, all-zero IDs, version ff) gives false: the request starts a trace.
func Parse(v string) (c Context, ok bool) {
	if len(v) < headerLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return c, false
	}
	if v[:2] == "ff" || (v[:2] == "00" && len(v) != headerLen) || (len(v) > headerLen && v[headerLen] != '-') {
		return c, false
	}
	if !isLowerHex(v[:2]) || !isLowerHex(v[3:35]) || !isLowerHex(v[36:52]) || !isLowerHex(v[53:55]) {
		return c, false
	}
	hex.Decode(c.TraceID[:], []byte(v[3:35]))
	hex.Decode(c.SpanID[:], []byte(v[36:52]))
	var f [1]byte
	hex.Decode(f[:], []byte(v[53:55]))
	c.Flags = f[0]
	if c.TraceID == ([16]byte{}) || c.SpanID == ([8]byte{}) {
		return c, false
	}
	return c, true
}

// Continue reads the traceparent v, or, when there is none or it is
// invalid, starts a trace that sample decides about: parent-based
// sampling, where the first hop nubo sees decides and every later hop
// keeps that decision.
func Continue(v string, sample func(traceID [16]byte) bool) Context {
	c, ok := Parse(v)
	if !ok {
		c = Context{TraceID: NewTraceID()}
		if sample(c.TraceID) {
			c.Flags = 1
		}
	}
	return c
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Format writes a version-00 traceparent.
func Format(traceID [16]byte, spanID [8]byte, flags byte) string {
	var b [headerLen]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

// NewTraceID returns a random trace ID, never all zero.
func NewTraceID() (id [16]byte) {
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64()|1)
	return id
}

// NewSpanID returns a random span ID, never all zero.
func NewSpanID() (id [8]byte) {
	binary.LittleEndian.PutUint64(id[:], rand.Uint64()|1)
	return id
}
