package mesh

import (
	"encoding/hex"
	"github.com/nubo-dev/nubo/internal/tracecontext"
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

// Sampler is a Tracer that decides whether a trace the mesh starts (a
// request without traceparent) is sampled; without it every one is. A
// request with traceparent keeps its sampled flag.
type Sampler interface {
	Sample(traceID [16]byte) bool
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
	// Denied names the authorization policy that denied the request (403).
	Denied string
	// Events are the hop's retries and the ejections it caused.
	Events []SpanEvent
}

// SpanEvent is a retry of a hop or an outlier ejection it caused.
type SpanEvent struct {
	Time time.Time
	// Name is "retry" or "outlier ejection".
	Name string
	// Replica is the address of the replica the attempt went to; Attempt
	// counts from 1.
	Replica string
	Attempt int
	// Status is the failed attempt's response status, 0 without one;
	// Reason its outcome (connect failure, reset, per-try timeout, ...).
	Status int
	Reason string
}

// TraceIDString is the trace ID in hex, as W3C writes it.
func (s *Span) TraceIDString() string { return hex.EncodeToString(s.TraceID[:]) }

// SpanIDString is the span ID in hex.
func (s *Span) SpanIDString() string { return hex.EncodeToString(s.SpanID[:]) }

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
	tc, ok := tracecontext.Parse(r.Header.Get("Traceparent"))
	if ok {
		s.TraceID, s.Parent, s.sampled = tc.TraceID, tc.SpanID, tc.Sampled()
	} else {
		s.TraceID, s.sampled, tc.Flags = tracecontext.NewTraceID(), true, 1
		if smp, ok := th.t.(Sampler); ok && !smp.Sample(s.TraceID) {
			s.sampled, tc.Flags = false, 0
		}
	}
	s.SpanID = tracecontext.NewSpanID()
	r.Header.Set("Traceparent", tracecontext.Format(s.TraceID, s.SpanID, tc.Flags))
	s.Name, s.Start, s.Source, s.Destination = name, start, src, dst
	s.Method, s.Path = r.Method, r.URL.Path
	return s
}

func (m *Mesh) endSpan(s *hopSpan, res *result, end time.Time) {
	if s == nil || !s.sampled {
		return
	}
	th := m.tracer.Load()
	if th == nil || th.t == nil {
		return
	}
	flags := res.flags
	if flags == "" {
		flags = "-"
	}
	s.End, s.Status, s.Flags, s.Upstream = end, res.status, flags, res.upstream
	s.Denied, s.Events = res.denied, res.events
	th.t.ExportSpan(s.Span)
}
