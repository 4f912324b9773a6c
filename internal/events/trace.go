package events

import (
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
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
	tc, ok := tracecontext.Parse(r.Header.Get("Traceparent"))
	if !ok {
		tc = tracecontext.Context{TraceID: tracecontext.NewTraceID()}
		if t.Sample(tc.TraceID) {
			tc.Flags = 1
		}
	}
	s := &tracing.Span{TraceID: tc.TraceID, SpanID: tracecontext.NewSpanID(), Parent: tc.SpanID,
		Name: "publish " + to.String(), Kind: tracing.KindProducer, Service: "events", Start: time.Now().UnixNano()}
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

// endPublishSpan records the publish's outcome.
func (d *Dispatcher) endPublishSpan(s *tracing.Span, err error) {
	if s == nil {
		return
	}
	s.End = time.Now().UnixNano()
	if err != nil {
		s.Status, s.StatusMessage = tracing.StatusError, err.Error()
	}
	d.cfg.Tracer.Record(*s)
}
