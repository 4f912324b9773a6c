// Package tracingtest records the spans a component makes, for the
// component's own tests: a Recorder stands for the tracer a component is
// given (Record and Sample, the interface each component defines where it
// uses it) and samples every trace.
package tracingtest

import (
	"sync"

	"github.com/nubo-dev/nubo/internal/tracing"
)

// Recorder keeps every span recorded. Its methods are safe for concurrent
// use: components record from their own goroutines.
type Recorder struct {
	mu    sync.Mutex
	spans []tracing.Span
}

// Record keeps s.
func (r *Recorder) Record(s tracing.Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, s)
}

// Sample samples every trace.
func (r *Recorder) Sample([16]byte) bool { return true }

// Named returns the spans called name, in the order recorded.
func (r *Recorder) Named(name string) []tracing.Span {
	return r.where(func(s tracing.Span) bool { return s.Name == name })
}

// Of returns the spans of service, in the order recorded.
func (r *Recorder) Of(service string) []tracing.Span {
	return r.where(func(s tracing.Span) bool { return s.Service == service })
}

func (r *Recorder) where(keep func(tracing.Span) bool) []tracing.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tracing.Span
	for _, s := range r.spans {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of the span's attribute key, or "".
func Attr(s tracing.Span, key string) string {
	for _, a := range s.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}
