package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// Tracer receives the span of each request once it is answered. The
// gateway propagates W3C trace context itself: the backend sees the
// request's span as its parent in traceparent (tracestate passes through).
// ExportSpan is called on the request's goroutine and must not block.
type Tracer interface {
	ExportSpan(Span)
}

// TracerFunc adapts a function to Tracer.
type TracerFunc func(Span)

// ExportSpan calls f.
func (f TracerFunc) ExportSpan(s Span) { f(s) }

// Span is one request through the gateway, a SERVER span.
type Span struct {
	// TraceID is the trace; SpanID this request's span, the parent of the
	// backend's; Parent the client's span, zero for the root of a trace.
	TraceID [16]byte
	SpanID  [8]byte
	Parent  [8]byte
	// Name is the method and route template ("GET /users/{id}"), or the
	// method alone when no route matched.
	Name       string
	Start, End time.Time
	Stage      string
	Route      string
	Method     string
	Path       string
	Status     int
	// Authorizer and AuthResult say who checked the credential and how
	// it went (allowed, unauthorized, denied, error); empty on public
	// routes.
	Authorizer, AuthResult string
	// Cache is hit, miss or bypass on cached routes.
	Cache string
	// Integration is the backend's type.
	Integration string
}

// TraceIDString is the trace ID in hex, as W3C writes it.
func (s *Span) TraceIDString() string { return hex.EncodeToString(s.TraceID[:]) }

// SpanIDString is the span ID in hex.
func (s *Span) SpanIDString() string { return hex.EncodeToString(s.SpanID[:]) }

const traceparentLen = 55 // 00-32hex-16hex-2hex

// parseTraceparent reads a W3C traceparent; ok is false for a missing or
// invalid one (the request then starts a trace).
func parseTraceparent(v string) (traceID [16]byte, parent [8]byte, flags byte, ok bool) {
	if len(v) < traceparentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' || v[:2] == "ff" {
		return traceID, parent, 0, false
	}
	if v[:2] == "00" && len(v) != traceparentLen {
		return traceID, parent, 0, false
	}
	var f [1]byte
	if _, err := hex.Decode(traceID[:], []byte(v[3:35])); err != nil {
		return traceID, parent, 0, false
	}
	if _, err := hex.Decode(parent[:], []byte(v[36:52])); err != nil {
		return traceID, parent, 0, false
	}
	if _, err := hex.Decode(f[:], []byte(v[53:55])); err != nil {
		return traceID, parent, 0, false
	}
	if traceID == [16]byte{} || parent == [8]byte{} {
		return traceID, parent, 0, false
	}
	return traceID, parent, f[0], true
}

func formatTraceparent(traceID [16]byte, span [8]byte, flags byte) string {
	var b [traceparentLen]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], span[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

func newTraceID() (id [16]byte) {
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64()|1)
	return id
}

func newSpanID() (id [8]byte) {
	binary.LittleEndian.PutUint64(id[:], rand.Uint64()|1)
	return id
}
