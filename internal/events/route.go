package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// route delivers the events of a stream to a target: one per topic
// subscription, rule and schedule. It reads two sources: its durable
// consumer on the topic, bus or schedule stream, and its consumer on the
// redrive stream, where redriven dead letters come back to it alone.
type route struct {
	d         *Dispatcher
	key       string // rule.R, topic.T.N, schedule.S
	kind      string // rule, topic or schedule
	name      string
	sub       string // subscription index, for topics
	what      string // "rule r", "topic t subscription 0"
	match     matcher
	transform *transformer
	target    spec.Target
	send      sender
	batch     int
	sources   []*source
	m         *routeMetrics
}

// source is one durable consumer of a route.
type source struct {
	stream     string
	consumer   string
	filter     string
	deliverNew bool // a new route starts with the events published after it
	cons       jetstream.Consumer
}

// buildRoutes compiles the routes of the spec. A route whose target
// cannot be run yet (function:) is listed in skipped instead.
func (d *Dispatcher) buildRoutes() error {
	add := func(key, kind, name, sub, what string, f *spec.Filter, transform string, target spec.Target, batch int, main *source) error {
		send, err := d.sender(key, target)
		var notRun errNotRun
		if errors.As(err, &notRun) {
			d.skipped = append(d.skipped, Skipped{What: what, Reason: notRun.reason})
			return nil
		}
		if err != nil {
			return fmt.Errorf("events: %s: %w", what, err)
		}
		m, err := compileFilter(f)
		if err != nil {
			return fmt.Errorf("events: %s: filter: %w", what, err)
		}
		tr, err := compileTransform(transform)
		if err != nil {
			return fmt.Errorf("events: %s: %w", what, err)
		}
		r := &route{
			d: d, key: key, kind: kind, name: name, sub: sub, what: what,
			match: m, transform: tr, target: target, send: send, batch: max(batch, 1),
			sources: []*source{main, {
				stream: d.n.redriveStream(), consumer: "redrive-" + consumerName(key), filter: d.n.redriveSubject(key),
			}},
		}
		d.routes = append(d.routes, r)
		return nil
	}
	for _, t := range sortedKeys(d.app.Topics) {
		for i, sub := range d.app.Topics[t].Subscriptions {
			idx := strconv.Itoa(i)
			key := "topic." + t + "." + idx
			main := &source{stream: d.n.topicStream(t), consumer: consumerName(key), filter: d.n.topicSubject(t), deliverNew: true}
			if err := add(key, "topic", t, idx, fmt.Sprintf("topic %s subscription %d", t, i), sub.Filter, "", sub.Endpoint, sub.BatchSize, main); err != nil {
				return err
			}
		}
	}
	for _, name := range sortedKeys(d.app.Rules) {
		rule := d.app.Rules[name]
		if rule.Enabled != nil && !*rule.Enabled {
			continue
		}
		key := "rule." + name
		main := &source{stream: d.n.busStream(), consumer: consumerName(key), filter: d.n.busSubject(), deliverNew: true}
		if err := add(key, "rule", name, "", "rule "+name, rule.Filter, rule.Transform, rule.Target, 1, main); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(d.app.Schedules) {
		s := d.app.Schedules[name]
		if s.Enabled != nil && !*s.Enabled {
			continue
		}
		key := "schedule." + name
		main := &source{stream: d.n.scheduleStream(), consumer: consumerName(key), filter: d.n.scheduleSubject(name), deliverNew: true}
		if err := add(key, "schedule", name, "", "schedule "+name, nil, "", s.Target, 1, main); err != nil {
			return err
		}
	}
	return nil
}

// ackWait is how long JetStream waits for a route's acknowledgement: the
// time to gather a batch and two delivery timeouts, one of them a margin
// for an event that waited for a free worker. It is also how long after a
// crash the events that were in flight are delivered again.
func (r *route) ackWait() time.Duration {
	return 2*r.d.cfg.DeliveryTimeout + r.d.cfg.BatchWait
}

func (r *route) setUp(ctx context.Context, js jetstream.JetStream, src *source) error {
	policy := jetstream.DeliverAllPolicy
	if src.deliverNew {
		policy = jetstream.DeliverNewPolicy
	}
	c, err := js.CreateOrUpdateConsumer(ctx, src.stream, jetstream.ConsumerConfig{
		Durable:       src.consumer,
		FilterSubject: src.filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.ackWait(),
		MaxDeliver:    -1, // nubo dead-letters itself, with the last error
		MaxAckPending: max(1000, 4*r.d.cfg.Concurrency*r.batch),
		DeliverPolicy: policy,
	})
	if err != nil {
		return fmt.Errorf("events: %s: consumer %s on %s: %w", r.what, src.consumer, src.stream, err)
	}
	src.cons = c
	return nil
}

// run delivers a source's events until runCtx ends, Concurrency at a
// time. deliverCtx ends the deliveries in flight (Stop's deadline). Should
// the consumer's iterator close under it (the consumer was deleted, the
// connection lost for good), it opens a new one.
func (r *route) run(runCtx, deliverCtx context.Context, src *source) {
	log := r.d.log.With("route", r.what, "consumer", src.consumer)
	sem := make(chan struct{}, r.d.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for runCtx.Err() == nil {
		it, err := src.cons.Messages(jetstream.PullMaxMessages(2 * r.d.cfg.Concurrency * r.batch))
		if err != nil {
			log.Error("cannot read events; retrying", "err", err)
			sleep(runCtx, time.Second)
			continue
		}
		r.consume(runCtx, deliverCtx, it, sem, &wg, log)
	}
}

// consume reads one iterator until runCtx ends or the iterator closes.
func (r *route) consume(runCtx, deliverCtx context.Context, it jetstream.MessagesContext, sem chan struct{}, wg *sync.WaitGroup, log *slog.Logger) {
	defer func() {
		// Events fetched but not started go back at once rather than
		// after the ack wait, so that a restart delivers them promptly.
		it.Drain()
		for {
			msg, err := it.Next(jetstream.NextMaxWait(time.Second))
			if err != nil {
				break
			}
			_ = msg.Nak()
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(runCtx))
		if err != nil {
			if runCtx.Err() != nil {
				return
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				log.Warn("event iterator closed; reopening", "err", err)
				sleep(runCtx, time.Second)
				return
			}
			log.Warn("reading events", "err", err)
			sleep(runCtx, 100*time.Millisecond)
			continue
		}
		batch := []jetstream.Msg{msg}
		if r.batch > 1 {
			deadline := time.Now().Add(r.d.cfg.BatchWait)
			for len(batch) < r.batch {
				wait := time.Until(deadline)
				if wait <= 0 {
					break
				}
				m, err := it.Next(jetstream.NextMaxWait(wait))
				if err != nil {
					break
				}
				batch = append(batch, m)
			}
		}
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			for _, m := range batch {
				_ = m.Nak()
			}
			return
		}
		wg.Add(1)
		received := time.Now()
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.handle(deliverCtx, batch, received)
		}()
	}
}

// sleep waits for d or ctx.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pending is an event on its way to the target.
type pending struct {
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	attempt int
	ev      *event.Event
	span    *tracing.Span // the route's span of the event; nil when not traced
}

// handle filters, transforms and delivers a batch, then acknowledges,
// retries or dead-letters each event.
func (r *route) handle(ctx context.Context, msgs []jetstream.Msg, received time.Time) {
	if time.Since(received) > r.ackWait()/4 {
		// The events waited for a free worker: give them a full ack wait.
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
	var out []pending
	for _, msg := range msgs {
		meta, err := msg.Metadata()
		if err != nil {
			_ = msg.TermWithReason("no JetStream metadata")
			continue
		}
		p := pending{msg: msg, meta: meta, attempt: int(meta.NumDelivered)}
		r.m.delivered.Inc()
		if p.attempt > 1 {
			r.m.redelivered.Inc()
		}
		ev, err := decodeEvent(msg.Headers(), msg.Data())
		if err != nil {
			r.deadLetter(ctx, p, "not a CloudEvent: "+err.Error())
			continue
		}
		doc := &eventDoc{ev: ev}
		if r.match != nil {
			ok, err := r.match(ctx, doc)
			if err != nil {
				p.span = r.startSpan(p, ev)
				r.deadLetter(ctx, p, err.Error())
				continue
			}
			if !ok {
				r.m.filtered.Inc()
				_ = msg.Ack()
				continue
			}
		}
		p.span = r.startSpan(p, ev)
		if r.transform != nil {
			tev, err := r.transform.apply(ctx, doc)
			if err != nil {
				r.deadLetter(ctx, p, err.Error())
				continue
			}
			if tev == nil {
				r.m.filtered.Inc()
				_ = msg.Ack()
				if p.span != nil {
					p.span.Attrs = append(p.span.Attrs, tracing.Bool("nubo.events.dropped_by_transform", true))
				}
				r.d.endSpan(p.span, nil)
				continue
			}
			ev = tev
		}
		p.ev = ev
		out = append(out, p)
	}
	if len(out) == 0 {
		return
	}
	evs := make([]*event.Event, len(out))
	deliveries := r.startDeliverySpans(out)
	for i, p := range out {
		evs[i] = p.ev
	}
	err := r.send(ctx, evs)
	for _, s := range deliveries {
		r.d.endSpan(s, err)
	}
	if err == nil {
		now := time.Now()
		for _, p := range out {
			_ = p.msg.Ack()
			r.m.acked.Inc()
			r.m.latency.Observe(now.Sub(p.meta.Timestamp).Seconds())
			r.d.endSpan(p.span, nil)
		}
		return
	}
	if ctx.Err() != nil {
		// Stopping: not the target's failure.
		for _, p := range out {
			_ = p.msg.Nak()
			r.d.endSpan(p.span, ctx.Err())
		}
		return
	}
	for _, p := range out {
		if p.attempt >= r.d.cfg.Retry.Attempts {
			r.deadLetter(ctx, p, err.Error())
			continue
		}
		delay := r.d.cfg.Retry.delay(p.attempt)
		r.d.log.Debug("delivery failed; retrying", "route", r.what, "id", p.ev.ID(), "attempt", p.attempt, "in", delay, "err", err)
		_ = p.msg.NakWithDelay(delay)
		if p.span != nil {
			p.span.Events = append(p.span.Events, tracing.Event{Time: time.Now().UnixNano(), Name: "retry scheduled",
				Attrs: []tracing.Attr{tracing.Int("nubo.events.retry_in_ms", delay.Milliseconds())}})
		}
		r.d.endSpan(p.span, err)
	}
}

// startSpan begins the route's CONSUMER span of an event it matched
// (for a rule, the match), parented by the event's publish; nil when not
// traced.
func (r *route) startSpan(p pending, ev *event.Event) *tracing.Span {
	s := r.d.startEventSpan(eventParent(ev, nil), "process "+r.what, tracing.KindConsumer)
	if s == nil {
		return nil
	}
	s.Attrs = append(eventAttrs(s.Attrs, ev),
		tracing.String("messaging.operation.type", "process"),
		tracing.String("messaging.destination.name", p.meta.Stream),
		tracing.String("messaging.consumer.group.name", p.meta.Consumer),
		tracing.String("nubo.events.route", r.what),
		tracing.Int("nubo.events.attempt", int64(p.attempt)))
	if r.kind == "rule" {
		s.Attrs = append(s.Attrs, tracing.String("nubo.events.rule", r.name), tracing.Bool("nubo.events.matched", true))
	}
	return s
}

// startDeliverySpans begins the delivery span of each traced event and
// gives the event its context, so that what the target records is its
// child.
func (r *route) startDeliverySpans(out []pending) []*tracing.Span {
	var spans []*tracing.Span
	kind := tracing.KindClient
	if r.target.Kind == spec.TargetQueue || r.target.Kind == spec.TargetTopic {
		kind = tracing.KindProducer
	}
	for _, p := range out {
		s := childSpan(p.span, "deliver "+r.target.Text, kind)
		if s == nil {
			continue
		}
		s.Attrs = append(s.Attrs, tracing.String("nubo.events.target", r.target.Text),
			tracing.String("messaging.message.id", p.ev.ID()))
		if kind == tracing.KindProducer {
			s.Attrs = append(s.Attrs, tracing.String("messaging.system", "nats"),
				tracing.String("messaging.operation.type", "send"), tracing.String("messaging.destination.name", r.target.Name))
		}
		if len(out) > 1 {
			s.Attrs = append(s.Attrs, tracing.Int("messaging.batch.message_count", int64(len(out))))
		}
		p.ev.SetExtension(traceparentExt, traceparent(s))
		spans = append(spans, s)
	}
	return spans
}

// deadLetter moves an event that failed for good to the app's dead-letter
// stream, the event as it was published (before any transform), with
// headers naming the route, the attempts and the error.
func (r *route) deadLetter(ctx context.Context, p pending, reason string) {
	h := cloneHeader(p.msg.Headers())
	h.Set(hdrOrigin, r.kind+":"+r.name)
	if r.sub != "" {
		h.Set(hdrSubscription, r.sub)
	} else {
		delete(h, hdrSubscription)
	}
	h.Set(hdrAttempts, strconv.Itoa(p.attempt))
	h.Set(hdrLastError, escapeValue(reason))
	h.Set(hdrDeadLettered, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dead:%s:%d", p.meta.Stream, p.meta.Sequence.Stream))
	msg := &nats.Msg{Subject: r.d.n.deadSubject(r.key), Header: h, Data: p.msg.Data()}
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if _, err := r.d.js.PublishMsg(pubCtx, msg); err != nil {
		r.d.log.Error("dead-letter failed; retrying the event", "route", r.what, "err", err)
		_ = p.msg.NakWithDelay(r.d.cfg.Retry.MaxBackoff)
		r.d.endSpan(p.span, err)
		return
	}
	_ = p.msg.Ack()
	r.m.deadLettered.Inc()
	r.deadLetterSpan(p, msg.Subject, reason)
	r.d.log.Warn("event dead-lettered", "route", r.what, "id", headerValue(p.msg.Headers(), "ce-id"), "attempts", p.attempt, "error", reason)
}

// deadLetterSpan records the dead-lettering of an event as an error span
// under the route's span of it (or, for an event that did not decode,
// under its publish), and ends the route's span.
func (r *route) deadLetterSpan(p pending, subject, reason string) {
	var s *tracing.Span
	if p.span != nil {
		s = childSpan(p.span, "dead-letter "+r.what, tracing.KindProducer)
	} else {
		s = r.d.startEventSpan(eventParent(nil, p.msg.Headers()), "dead-letter "+r.what, tracing.KindProducer)
	}
	if s != nil {
		s.Attrs = append(s.Attrs,
			tracing.String("messaging.system", "nats"),
			tracing.String("messaging.operation.type", "send"),
			tracing.String("messaging.destination.name", subject),
			tracing.String("nubo.events.route", r.what),
			tracing.Int("nubo.events.attempts", int64(p.attempt)),
			tracing.String("error.type", "dead_lettered"))
	}
	err := errors.New("dead-lettered: " + reason)
	r.d.endSpan(s, err)
	r.d.endSpan(p.span, err)
}
