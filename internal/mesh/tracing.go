package mesh

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"time"
)

// Tracer receives the span of each hop through the mesh once it ends.
//
// The mesh propagates W3C trace context itself (traceparent, with
// tracestate passed through), so that a Tracer only has to store or export
// spans: the engine's trace store, or an adapter to the OpenTelemetry SDK
// (not a dependency of nubo yet; a Span maps onto an OTLP span one to one).
// ExportSpan is called on the request's goroutine and must not block.
type Tracer interface {
	ExportSpan(Span)
}

// TracerFunc adapts a function to Tracer.
type TracerFunc func(Span)

// ExportSpan calls f.
func (f TracerFunc) ExportSpan(s Span) { f(s) }

// Span is one hop through the mesh, a CLIENT span as the caller's sidecar
// reports it in Istio.
type Span struct {
	// TraceID is the trace the hop belongs to; SpanID the hop's own span,
	// which the callee sees as its parent in traceparent.
	TraceID [16]byte
	SpanID  [8]byte
	// Parent is the caller's span, zero for the root of a trace.
	Parent [8]byte
	// Name is Istio's operation name: the destination host, port and "/*".
	Name       string
	Start, End time.Time
	// Source is the calling workload; Destination the service (or host).
	Source, Destination string
	Method, Path        string
	Status              int
	// Flags are Envoy's response flags ("-" for none).
	Flags string
	// Upstream is the replica's address, when one was reached.
	Upstream string
}

// TraceIDString is the trace ID in hex, as W3C writes it.
func (s *Span) TraceIDString() string { return hex.EncodeToString(s.TraceID[:]) }

// SpanIDString is the span ID in hex.
func (s *Span) SpanIDString() string { return hex.EncodeToString(s.SpanID[:]) }

const traceparentLen = 55 // 00-32hex-16hex-2hex

// traceContext is a parsed traceparent.
type traceContext struct {
	traceID [16]byte
	spanID  [8]byte
	flags   byte
}

// parseTraceparent parses a W3C traceparent. A higher version is read by
// its version-00 prefix, as the spec asks; invalid values are ignored.
func parseTraceparent(v string) (tc traceContext, ok bool) {
	if len(v) < traceparentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return tc, false
	}
	if v[:2] == "ff" || (v[:2] == "00" && len(v) != traceparentLen) || (len(v) > traceparentLen && v[traceparentLen] != '-') {
		return tc, false
	}
	if !isLowerHex(v[:2]) || !isLowerHex(v[3:35]) || !isLowerHex(v[36:52]) || !isLowerHex(v[53:55]) {
		return tc, false
	}
	hex.Decode(tc.traceID[:], []byte(v[3:35]))
	hex.Decode(tc.spanID[:], []byte(v[36:52]))
	var f [1]byte
	hex.Decode(f[:], []byte(v[53:55]))
	tc.flags = f[0]
	if tc.traceID == ([16]byte{}) || tc.spanID == ([8]byte{}) {
		return tc, false
	}
	return tc, true
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

func formatTraceparent(traceID [16]byte, spanID [8]byte, flags byte) string {
	var b [traceparentLen]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

func randomID(b []byte) {
	for i := 0; i < len(b); i += 8 {
		u := rand.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(u >> (8 * j))
		}
	}
}

// hopSpan is the span of the request in flight; nil without a Tracer.
type hopSpan struct {
	Span
	sampled bool
}

// startSpan starts the hop's span and rewrites traceparent so that the
// callee's spans are its children. Without a Tracer, trace context passes
// through unchanged and no span is made. A request without a (valid)
// traceparent starts a new sampled trace.
func (m *Mesh) startSpan(r *http.Request, src, dst, name string, start time.Time) *hopSpan {
	th := m.tracer.Load()
	if th == nil || th.t == nil {
		return nil
	}
	s := &hopSpan{}
	tc, ok := parseTraceparent(r.Header.Get("Traceparent"))
	if ok {
		s.TraceID, s.Parent, s.sampled = tc.traceID, tc.spanID, tc.flags&1 == 1
	} else {
		randomID(s.TraceID[:])
		s.sampled = true
		tc.flags = 1
	}
	randomID(s.SpanID[:])
	r.Header.Set("Traceparent", formatTraceparent(s.TraceID, s.SpanID, tc.flags))
	s.Name, s.Start, s.Source, s.Destination = name, start, src, dst
	s.Method, s.Path = r.Method, r.URL.Path
	return s
}

func (m *Mesh) endSpan(s *hopSpan, status int, flags, upstream string, end time.Time) {
	if s == nil || !s.sampled {
		return
	}
	th := m.tracer.Load()
	if th == nil || th.t == nil {
		return
	}
	if flags == "" {
		flags = "-"
	}
	s.End, s.Status, s.Flags, s.Upstream = end, status, flags, upstream
	th.t.ExportSpan(s.Span)
}
