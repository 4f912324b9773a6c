package functions

import (
	"net/http"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// Tracer records a span per invocation. Record must not block.
type Tracer interface {
	Record(tracing.Span)
	// Sample decides about a trace an invocation starts (one without
	// trace context).
	Sample(traceID [16]byte) bool
}

// ceTraceparent is the CloudEvents distributed-tracing extension as an
// HTTP header of a binary-mode event.
const ceTraceparent = "Ce-Traceparent"

// invocationSpan is the SERVER span of an invocation in flight; nil when
// no span is made.
type invocationSpan struct {
	tracing.Span
}

// startSpan gives the invocation a span, parented by the event's
// traceparent extension or the request's traceparent, and returns the
// payload whose Traceparent names it, so that the function's own spans
// are its children. An unsampled parent makes no span.
func (p *pool) startSpan(pl payload) (payload, *invocationSpan) {
	t := p.f.cfg.Tracer
	if t == nil {
		return pl, nil
	}
	parent := pl.header.Get("Traceparent")
	trigger := "http"
	if v := pl.header.Get(ceTraceparent); v != "" {
		parent, trigger = v, "pubsub"
	} else if pl.header.Get("Ce-Id") != "" || strings.HasPrefix(pl.header.Get("Content-Type"), "application/cloudevents") {
		trigger = "pubsub"
	}
	tc := tracecontext.Continue(parent, t.Sample)
	if !tc.Sampled() {
		return pl, nil
	}
	s := &invocationSpan{Span: tracing.Span{TraceID: tc.TraceID, SpanID: tracecontext.NewSpanID(), Parent: tc.SpanID,
		Name: p.name, Kind: tracing.KindServer, Service: p.name, Start: time.Now().UnixNano()}}
	s.Attrs = append(make([]tracing.Attr, 0, 8), tracing.String("faas.invoked_name", p.name), tracing.String("faas.trigger", trigger))
	if id := pl.header.Get("Ce-Id"); id != "" {
		s.Attrs = append(s.Attrs, tracing.String("faas.invocation_id", id))
	}
	h := make(http.Header, len(pl.header)+1)
	for k, v := range pl.header {
		h[k] = v
	}
	h.Set("Traceparent", tracecontext.Format(tc.TraceID, s.SpanID, tc.Flags))
	return payload{header: h, body: pl.body}, s
}

// endSpan records the invocation's outcome: its status, cold start and
// instance.
func (p *pool) endSpan(s *invocationSpan, res Result, err error) {
	if s == nil {
		return
	}
	s.End = time.Now().UnixNano()
	s.Attrs = append(s.Attrs, tracing.Bool("faas.coldstart", res.ColdStart), tracing.Int("faas.instance", int64(res.Instance)))
	if res.Status != 0 {
		s.Attrs = append(s.Attrs, tracing.Int("http.response.status_code", int64(res.Status)))
	}
	if res.ColdStart {
		s.Events = append(s.Events, tracing.Event{Time: s.Start, Name: "cold start",
			Attrs: []tracing.Attr{tracing.Int("faas.init_duration_ms", res.InitDuration.Milliseconds())}})
	}
	if err != nil {
		s.Status, s.StatusMessage = tracing.StatusError, err.Error()
	} else if res.Status >= 500 {
		s.Status = tracing.StatusError
	}
	p.f.cfg.Tracer.Record(s.Span)
}
