package events

import (
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// Tracer records a span per publish. Record must not block.
type Tracer interface {
	Record(tracing.Span)
	// Sample decides about a trace a publish starts (one without trace
	// context).
	Sample(traceID [16]byte) bool
}

// traceparentExt is the CloudEvents distributed-tracing extension: it
// carries the trace context with the event through JetStream to whoever
// receives it.
const traceparentExt = "traceparent"

// startPublishSpan makes the PRODUCER span of a publish through the
// platform API, parented by the request's traceparent, and gives each
// event without a traceparent extension the span's context. nil when no
// span is made.
func (d *Dispatcher) startPublishSpan(r *http.Request, to Destination, evs []*event.Event) *tracing.Span {
	t := d.cfg.Tracer
	if t == nil {
		return nil
	}
	tc := tracecontext.Continue(r.Header.Get("Traceparent"), t.Sample)
	s := &tracing.Span{TraceID: tc.TraceID, SpanID: tracecontext.NewSpanID(), Parent: tc.SpanID,
		Name: publishSpanName(to), Kind: tracing.KindProducer, Service: "events", Start: time.Now().UnixNano()}
	parent := tracecontext.Format(tc.TraceID, s.SpanID, tc.Flags)
	for _, ev := range evs {
		if _, ok := ev.Extensions()[traceparentExt]; !ok {
			ev.SetExtension(traceparentExt, parent)
		}
	}
	if !tc.Sampled() {
		return nil
	}
	s.Attrs = append(make([]tracing.Attr, 0, 5),
		tracing.String("messaging.system", "nats"),
		tracing.String("messaging.operation.type", "send"),
		tracing.String("messaging.destination.name", to.Name),
		tracing.String("nubo.events.destination_kind", string(to.Kind)),
		tracing.Int("messaging.batch.message_count", int64(len(evs))))
	return s
}

// publishSpanName is OpenTelemetry's messaging span name, "{operation}
// {destination}": publish bus, publish queue jobs, publish topic news.
func publishSpanName(to Destination) string {
	if to.Kind == ToBus {
		return "publish bus"
	}
	return "publish " + string(to.Kind) + " " + to.Name
}

// endPublishSpan records the publish's outcome.
func (d *Dispatcher) endPublishSpan(s *tracing.Span, err error) { d.endSpan(s, err) }

// endSpan records a span of the dispatcher's with its outcome; nil-safe.
func (d *Dispatcher) endSpan(s *tracing.Span, err error) {
	if s == nil {
		return
	}
	s.End = time.Now().UnixNano()
	if err != nil {
		s.Status, s.StatusMessage = tracing.StatusError, err.Error()
	}
	d.cfg.Tracer.Record(*s)
}

// The spans of an event on its way: a route's CONSUMER span ("process
// rule R") for each event it matched, parented by the event's
// traceparent extension (the publish); under it the delivery to the
// target (CLIENT for a service, URL or function, PRODUCER for a queue or
// topic) and, for an event that failed for good, the dead-lettering. A
// queue's receive is a CONSUMER span of its own. Each hands its context
// on in the event's traceparent extension, so the target's spans are its
// children. With tracing off or the trace unsampled nothing is allocated
// past parsing the traceparent.

// eventParent is the trace context an event carries: its traceparent
// extension, or the stored header when the event did not decode.
func eventParent(ev *event.Event, h nats.Header) string {
	if ev != nil {
		if v, ok := ev.Extensions()[traceparentExt].(string); ok {
			return v
		}
		return ""
	}
	return headerValue(h, cePrefix+traceparentExt)
}

// startEventSpan begins a span of the events service, parented by the
// traceparent parent or else starting a trace the tracer samples; nil
// when tracing is off or the trace is not sampled.
func (d *Dispatcher) startEventSpan(parent, name string, kind tracing.Kind) *tracing.Span {
	t := d.cfg.Tracer
	if t == nil {
		return nil
	}
	tc := tracecontext.Continue(parent, t.Sample)
	if !tc.Sampled() {
		return nil
	}
	return &tracing.Span{TraceID: tc.TraceID, SpanID: tracecontext.NewSpanID(), Parent: tc.SpanID,
		Name: name, Kind: kind, Service: "events", Start: time.Now().UnixNano(), Attrs: make([]tracing.Attr, 0, 10)}
}

// childSpan begins a span under s; nil when s is.
func childSpan(s *tracing.Span, name string, kind tracing.Kind) *tracing.Span {
	if s == nil {
		return nil
	}
	return &tracing.Span{TraceID: s.TraceID, SpanID: tracecontext.NewSpanID(), Parent: s.SpanID,
		Name: name, Kind: kind, Service: "events", Start: time.Now().UnixNano(), Attrs: make([]tracing.Attr, 0, 6)}
}

// traceparent is s as a W3C traceparent (sampled).
func traceparent(s *tracing.Span) string { return tracecontext.Format(s.TraceID, s.SpanID, 1) }

// eventAttrs are OpenTelemetry's CloudEvents and messaging attributes of
// an event.
func eventAttrs(attrs []tracing.Attr, ev *event.Event) []tracing.Attr {
	return append(attrs,
		tracing.String("messaging.system", "nats"),
		tracing.String("messaging.message.id", ev.ID()),
		tracing.String("cloudevents.event_id", ev.ID()),
		tracing.String("cloudevents.event_source", ev.Source()),
		tracing.String("cloudevents.event_type", ev.Type()))
}
