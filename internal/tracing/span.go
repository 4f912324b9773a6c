// Package tracing keeps the traces of a system run by nubo up: spans that
// the services' own OpenTelemetry SDKs send to the OTLP/HTTP receiver, and
// spans nubo records itself at every hop it sees (ingress, gateway, mesh,
// events, functions). Spans go to a store on disk under the state folder,
// bounded by age and size and searched through Jaeger's HTTP query API, and
// optionally on to another OTLP endpoint.
package tracing

import (
	"encoding/hex"
	"strconv"
	"time"
)

// Kind is an OpenTelemetry span kind.
type Kind int8

// Span kinds, numbered as OTLP numbers them.
const (
	KindUnspecified Kind = 0
	KindInternal    Kind = 1
	KindServer      Kind = 2
	KindClient      Kind = 3
	KindProducer    Kind = 4
	KindConsumer    Kind = 5
)

// String is the kind as Jaeger's span.kind tag writes it.
func (k Kind) String() string {
	switch k {
	case KindServer:
		return "server"
	case KindClient:
		return "client"
	case KindProducer:
		return "producer"
	case KindConsumer:
		return "consumer"
	case KindInternal:
		return "internal"
	}
	return ""
}

// Status is an OpenTelemetry span status code.
type Status int8

// Status codes, numbered as OTLP numbers them.
const (
	StatusUnset Status = 0
	StatusOK    Status = 1
	StatusError Status = 2
)

// Attr is one attribute. Values keep their OTLP type (string, int64,
// float64, bool) so that they are exported and shown as they came; other
// types (arrays, maps, bytes) are kept as their JSON text.
type Attr struct {
	Key   string `json:"k"`
	Type  string `json:"t,omitempty"` // "" string, "int64", "float64", "bool"
	Value string `json:"v"`
}

// String makes a string attribute.
func String(k, v string) Attr { return Attr{Key: k, Value: v} }

// Int makes an int64 attribute.
func Int(k string, v int64) Attr {
	return Attr{Key: k, Type: "int64", Value: strconv.FormatInt(v, 10)}
}

// Bool makes a bool attribute.
func Bool(k string, v bool) Attr { return Attr{Key: k, Type: "bool", Value: strconv.FormatBool(v)} }

// Event is a timed annotation of a span (a retry, an ejection, an
// exception).
type Event struct {
	Time  int64  `json:"t"` // Unix nanoseconds
	Name  string `json:"n"`
	Attrs []Attr `json:"a,omitempty"`
}

// Span is one operation of a trace, as the store keeps it: one JSON line on
// disk. IDs are W3C's binary IDs; times are Unix nanoseconds.
type Span struct {
	TraceID TraceID `json:"tid"`
	SpanID  SpanID  `json:"sid"`
	// Parent is the parent span; zero for the root of a trace.
	Parent SpanID `json:"pid,omitzero"`
	Name   string `json:"n"`
	Kind   Kind   `json:"k,omitempty"`
	// Service is the resource's service.name: the workload that made it.
	Service string `json:"svc"`
	Start   int64  `json:"s"`
	End     int64  `json:"e"`
	Status  Status `json:"st,omitempty"`
	// StatusMessage says why a span failed.
	StatusMessage string  `json:"sm,omitempty"`
	Attrs         []Attr  `json:"a,omitempty"`
	Events        []Event `json:"ev,omitempty"`
	// Resource are the resource's attributes but service.name.
	Resource []Attr `json:"r,omitempty"`
	// Scope is the instrumentation scope's name.
	Scope string `json:"sc,omitempty"`
}

// Duration is how long the span took.
func (s *Span) Duration() time.Duration { return time.Duration(s.End - s.Start) }

// Attr returns the value of the attribute key, from the span or its
// resource.
func (s *Span) Attr(key string) (string, bool) {
	for _, a := range s.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	for _, a := range s.Resource {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// Failed reports an error status (Jaeger's error tag).
func (s *Span) Failed() bool { return s.Status == StatusError }

// TraceID is a W3C trace ID; JSON writes it as 32 lowercase hex digits.
type TraceID [16]byte

// String is the ID in hex.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports the invalid all-zero ID.
func (id TraceID) IsZero() bool { return id == TraceID{} }

// MarshalText writes hex.
func (id TraceID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads hex.
func (id *TraceID) UnmarshalText(b []byte) error { return decodeID(id[:], b) }

// ParseTraceID reads a trace ID in hex. Shorter IDs (Jaeger's 64-bit ones)
// are padded with zeros on the left, as Jaeger does.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) == 0 || len(s) > 32 {
		return id, &IDError{Value: s}
	}
	for len(s) < 32 {
		s = "0" + s
	}
	if err := decodeID(id[:], []byte(s)); err != nil {
		return id, err
	}
	return id, nil
}

// SpanID is a W3C span ID; JSON writes it as 16 lowercase hex digits.
type SpanID [8]byte

// String is the ID in hex.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports the invalid all-zero ID: no parent.
func (id SpanID) IsZero() bool { return id == SpanID{} }

// MarshalText writes hex.
func (id SpanID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads hex.
func (id *SpanID) UnmarshalText(b []byte) error { return decodeID(id[:], b) }

// IDError is a trace or span ID that is not hex of the right length.
type IDError struct{ Value string }

func (e *IDError) Error() string {
	return "invalid trace or span ID " + strconv.Quote(e.Value) + ": want lowercase hex digits"
}

func decodeID(dst, b []byte) error {
	if len(b) != 2*len(dst) {
		return &IDError{Value: string(b)}
	}
	if _, err := hex.Decode(dst, b); err != nil {
		return &IDError{Value: string(b)}
	}
	return nil
}
