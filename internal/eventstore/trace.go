package eventstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// Tracer records the store's spans: an append through the API (a
// PRODUCER span, parented by the request's traceparent) and each delivery
// of a batch to a projection's handler (a CONSUMER span, parented by the
// append of the batch's first event, whose context each event keeps in a
// header). Record must not block.
type Tracer interface {
	Record(tracing.Span)
	// Sample decides about a trace the store starts (a request without
	// traceparent).
	Sample(traceID [16]byte) bool
}

// hdrTraceparent keeps, with each stored event, the context of the span
// that appended it, so that its deliveries join the append's trace.
const hdrTraceparent = "Nubo-Traceparent"

// traceKey carries a traceparent in a context: the append's to the
// stored events, a delivery's to the handler's request.
type traceKey struct{}

func withTraceparent(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, traceKey{}, tp)
}

func traceparentFrom(ctx context.Context) string {
	tp, _ := ctx.Value(traceKey{}).(string)
	return tp
}

// startSpan begins a span of the event store under parent (a
// traceparent), or of a trace the tracer samples; nil when tracing is off
// or the trace is not sampled.
func (s *Store) startSpan(parent, name string, kind tracing.Kind) *tracing.Span {
	t := s.cfg.Tracer
	if t == nil {
		return nil
	}
	tc := tracecontext.Continue(parent, t.Sample)
	if !tc.Sampled() {
		return nil
	}
	return &tracing.Span{TraceID: tc.TraceID, SpanID: tracecontext.NewSpanID(), Parent: tc.SpanID, Name: name, Kind: kind,
		Service: "eventstore", Start: time.Now().UnixNano(), Attrs: make([]tracing.Attr, 0, 8)}
}

func (s *Store) endSpan(sp *tracing.Span, err error) {
	if sp == nil {
		return
	}
	sp.End = time.Now().UnixNano()
	if err != nil {
		sp.Status, sp.StatusMessage = tracing.StatusError, err.Error()
	}
	s.cfg.Tracer.Record(*sp)
}

func spanContext(sp *tracing.Span) string { return tracecontext.Format(sp.TraceID, sp.SpanID, 1) }

// appendSpan begins the span of an append through the API; the stored
// events keep its context.
func (s *Store) appendSpan(ctx context.Context, traceparent, stream string, n int) (context.Context, *tracing.Span) {
	sp := s.startSpan(traceparent, "append", tracing.KindProducer)
	if sp == nil {
		return ctx, nil
	}
	sp.Attrs = append(sp.Attrs,
		tracing.String("messaging.system", "nats"),
		tracing.String("messaging.operation.type", "send"),
		tracing.String("nubo.eventstore.stream", stream),
		tracing.Int("messaging.batch.message_count", int64(n)))
	return withTraceparent(ctx, spanContext(sp)), sp
}

// endAppendSpan records the append's outcome.
func (s *Store) endAppendSpan(sp *tracing.Span, res apitype.AppendResponse, err error) {
	if sp == nil {
		return
	}
	if err == nil {
		sp.Attrs = append(sp.Attrs,
			tracing.Int("nubo.eventstore.first_version", res.FirstVersion),
			tracing.Int("nubo.eventstore.last_version", res.LastVersion),
			tracing.String("nubo.eventstore.last_position", strconv.FormatUint(res.LastPosition, 10)),
			tracing.Bool("nubo.eventstore.duplicate", res.Duplicate))
	}
	var wrong *WrongVersionError
	if errors.As(err, &wrong) {
		sp.Attrs = append(sp.Attrs, tracing.String("error.type", "wrong_expected_version"))
	}
	s.endSpan(sp, err)
}

// deliverySpan begins the span of one attempt to deliver batch to a
// projection's handler, under the append of its first event.
func (p *projection) deliverySpan(ctx context.Context, batch []apitype.RecordedEvent) (context.Context, *tracing.Span) {
	sp := p.ps.s.startSpan(batch[0].Traceparent, "deliver projection "+p.name, tracing.KindConsumer)
	if sp == nil {
		return ctx, nil
	}
	sp.Attrs = append(sp.Attrs,
		tracing.String("messaging.system", "nats"),
		tracing.String("messaging.operation.type", "process"),
		tracing.String("messaging.consumer.group.name", p.name),
		tracing.String("nubo.eventstore.projection", p.name),
		tracing.String("nubo.eventstore.handler", p.spec.Handler.String()),
		tracing.String("nubo.eventstore.first_position", strconv.FormatUint(batch[0].Position, 10)),
		tracing.Int("messaging.batch.message_count", int64(len(batch))))
	return withTraceparent(ctx, spanContext(sp)), sp
}
