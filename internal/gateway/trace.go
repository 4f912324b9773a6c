package gateway

import (
	"encoding/hex"
	"time"
)

// Tracer receives the span of each request once it is answered. The
// gateway propagates W3C trace context itself: the backend sees the
// request's span as its parent in traceparent (tracestate passes through).
// ExportSpan is called on the request's goroutine and must not block.
type Tracer interface {
	ExportSpan(Span)
}

// Sampler is a Tracer that decides whether a trace the gateway starts (a
// request without traceparent) is sampled; without it every one is. A
// request with traceparent keeps its sampled flag, and an unsampled
// request makes no span.
type Sampler interface {
	Sample(traceID [16]byte) bool
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
