package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// fifoPoll bounds one wait of a fifo receiver on JetStream, so that it
// also sees the events released by acknowledgements meanwhile.
const fifoPoll = 500 * time.Millisecond

// ackTimeout bounds an acknowledgement's round trip to JetStream.
const ackTimeout = 5 * time.Second

// Delivery is apitype.Delivery: the wire type lives there, so that the API
// changes only where it is declared.
type Delivery = apitype.Delivery

// DeadLetterInfo is apitype.DeadLetterInfo: the wire type lives there, so that the API
// changes only where it is declared.
type DeadLetterInfo = apitype.DeadLetterInfo

func deadLetterInfo(h nats.Header) *DeadLetterInfo {
	origin := headerValue(h, hdrOrigin)
	if origin == "" {
		return nil
	}
	at, _ := time.Parse(time.RFC3339Nano, h.Get(hdrDeadLettered))
	return &DeadLetterInfo{
		Origin:       origin,
		Subscription: h.Get(hdrSubscription),
		Attempts:     headerInt(h, hdrAttempts),
		LastError:    headerValue(h, hdrLastError),
		At:           at,
	}
}

// queue is one queue of the spec: its stream, its shared consumer and,
// for fifo, the events held back behind the head of their subject.
//
// Fifo works from one rule, which the stream itself checks: an event is
// handed out only when it is the first event of its subject still in the
// stream. A work-queue stream drops an event when it is acknowledged, so
// the head of a subject stays until it succeeds or is dead-lettered; the
// events behind it wait in held, their visibility extended, and move to
// ready once the head is gone. Because the rule reads the stream and not
// memory, it holds across restarts.
type queue struct {
	d          *Dispatcher
	name       string
	spec       *spec.Queue
	fifo       bool
	streamName string
	dlq        *queue // nil without deadLetter
	maxReceive int

	stream jetstream.Stream   // set by setUp
	cons   jetstream.Consumer // set by setUp

	mu    sync.Mutex                 // guards held and ready
	held  map[string][]jetstream.Msg // fifo: NATS subject -> events behind the head, by sequence
	ready []jetstream.Msg            // fifo: released heads no receiver has taken yet
}

func newQueue(d *Dispatcher, name string, s *spec.Queue) *queue {
	q := &queue{
		d: d, name: name, spec: s, fifo: s.Type == "fifo",
		streamName: d.n.queueStream(name),
		held:       map[string][]jetstream.Msg{},
	}
	if s.DeadLetter != nil {
		q.maxReceive = s.DeadLetter.MaxReceive
	}
	return q
}

// visibility is the queue's ack wait.
func (q *queue) visibility() time.Duration {
	if v := q.spec.Visibility.Duration; v > 0 {
		return v
	}
	return 30 * time.Second
}

func (q *queue) setUp(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, q.streamName)
	if err != nil {
		return fmt.Errorf("events: queue %q: %w", q.name, err)
	}
	maxPending := 1000
	if q.fifo {
		maxPending = fifoMaxAckPending
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       queueConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.visibility(),
		MaxDeliver:    -1, // nubo dead-letters itself, with the last error
		MaxAckPending: maxPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("events: queue %q: consumer: %w", q.name, err)
	}
	q.stream, q.cons = s, c
	return nil
}

// publishSubject is where an event with CloudEvents subject ceSubject goes.
func (q *queue) publishSubject(ceSubject string) string {
	return q.d.n.queueSubject(q.name, q.fifo, ceSubject)
}

// receive hands out up to max events, waiting up to wait for the first.
// It returns as soon as it has one (then it takes what else is there
// without waiting), as a long poll does.
func (q *queue) receive(ctx context.Context, max int, wait time.Duration) ([]Delivery, error) {
	deadline := time.Now().Add(wait)
	for {
		out := q.takeReady(max)
		if len(out) > 0 {
			return out, nil
		}
		out, err := q.fetch(ctx, out, max, 0)
		if err != nil || len(out) > 0 {
			return out, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 || ctx.Err() != nil {
			return nil, nil
		}
		if q.fifo {
			remaining = min(remaining, fifoPoll)
		}
		if out, err = q.fetch(ctx, out, 1, remaining); err != nil {
			return nil, err
		}
		if len(out) > 0 {
			if len(out) < max {
				out, err = q.fetch(ctx, out, max-len(out), 0)
			}
			return out, err
		}
	}
}

// fetch pulls up to n events (waiting up to wait; 0: not at all), and
// appends those it hands out to out. When ctx ends meanwhile (the client
// went away), the events go back at once.
func (q *queue) fetch(ctx context.Context, out []Delivery, n int, wait time.Duration) ([]Delivery, error) {
	var batch jetstream.MessageBatch
	var err error
	if wait <= 0 {
		batch, err = q.cons.FetchNoWait(n)
	} else {
		batch, err = q.cons.Fetch(n, jetstream.FetchMaxWait(wait))
	}
	if err != nil {
		return out, fmt.Errorf("queue %q: fetch: %w", q.name, err)
	}
	for msg := range batch.Messages() {
		if ctx.Err() != nil {
			_ = msg.Nak()
			continue
		}
		if d := q.classify(ctx, msg); d != nil {
			out = append(out, *d)
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return out, fmt.Errorf("queue %q: fetch: %w", q.name, err)
	}
	if ctx.Err() != nil {
		for _, d := range out {
			_ = q.nakReceipt(d.ID, 0)
		}
		return nil, ctx.Err()
	}
	return out, nil
}

// classify decides what happens to a fetched event: dead-lettered (its
// last allowed delivery was not acknowledged in time), held (fifo, not
// the head of its subject), or handed out.
func (q *queue) classify(ctx context.Context, msg jetstream.Msg) *Delivery {
	meta, err := msg.Metadata()
	if err != nil {
		q.d.log.Warn("queue: a message without JetStream metadata", "queue", q.name, "err", err)
		return nil
	}
	seq := meta.Sequence.Stream
	if q.fifo {
		q.forget(msg.Subject(), seq)
	}
	if q.dlq != nil && int(meta.NumDelivered) > q.maxReceive {
		reason := fmt.Sprintf("not acknowledged within the visibility timeout (%s)", q.visibility())
		if err := q.deadLetter(ctx, msg.Headers(), msg.Data(), seq, q.maxReceive, reason, msg.Reply(), msg.Subject()); err != nil {
			q.d.log.Error("queue: dead-letter failed; the event stays", "queue", q.name, "seq", seq, "err", err)
		}
		return nil
	}
	if q.fifo {
		head, err := q.isHead(ctx, msg.Subject(), seq)
		if err != nil {
			q.d.log.Warn("queue: cannot check the order of a fifo event; holding it", "queue", q.name, "seq", seq, "err", err)
		}
		if !head || err != nil {
			q.hold(msg, seq)
			// The head may have gone between the check and the hold, with
			// nobody left to release this event: check once more.
			q.release(ctx, msg.Subject())
			return nil
		}
	}
	return q.deliver(msg, meta)
}

// deliver turns a fetched message into a Delivery.
func (q *queue) deliver(msg jetstream.Msg, meta *jetstream.MsgMetadata) *Delivery {
	ev, err := decodeEvent(msg.Headers(), msg.Data())
	if err != nil {
		// Nothing stored by nubo fails to decode; something else wrote
		// to the stream. Retrying cannot help.
		q.d.log.Error("queue: dropping a message that is not a CloudEvent", "queue", q.name, "seq", meta.Sequence.Stream, "err", err)
		_ = msg.TermWithReason("not a CloudEvent: " + err.Error())
		return nil
	}
	m := q.d.metrics.forQueue(q.name)
	m.delivered.Inc()
	if meta.NumDelivered > 1 {
		m.redelivered.Inc()
	}
	q.receiveSpan(ev, meta)
	return &Delivery{
		ID:         encodeReceipt(msg.Reply(), msg.Subject()),
		Attempt:    int(meta.NumDelivered),
		Event:      ev,
		DeadLetter: deadLetterInfo(msg.Headers()),
	}
}

// receiveSpan records the receive of an event as a CONSUMER span under
// its publish, and gives the event the span's context: what the receiver
// (a function's invocation, a service's SDK) records is its child.
func (q *queue) receiveSpan(ev *event.Event, meta *jetstream.MsgMetadata) {
	sp := q.d.startEventSpan(eventParent(ev, nil), "receive "+q.name, tracing.KindConsumer)
	if sp == nil {
		return
	}
	sp.Attrs = append(eventAttrs(sp.Attrs, ev),
		tracing.String("messaging.operation.type", "receive"),
		tracing.String("messaging.destination.name", q.name),
		tracing.Int("nubo.events.attempt", int64(meta.NumDelivered)))
	ev.SetExtension(traceparentExt, traceparent(sp))
	q.d.endSpan(sp, nil)
}

// isHead reports whether seq is the first event of subject still in the
// stream.
func (q *queue) isHead(ctx context.Context, subject string, seq uint64) (bool, error) {
	first, err := q.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return first.Sequence >= seq, nil
}

// hold keeps a fifo event behind the head of its subject, in order.
func (q *queue) hold(msg jetstream.Msg, seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.held[msg.Subject()]
	i, _ := slices.BinarySearchFunc(list, seq, func(m jetstream.Msg, s uint64) int {
		return cmpSeq(msgSeq(m), s)
	})
	q.held[msg.Subject()] = slices.Insert(list, i, msg)
}

// forget drops a held or ready copy of seq: JetStream delivered it again,
// and the new delivery replaces it.
func (q *queue) forget(subject string, seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if list := q.held[subject]; len(list) > 0 {
		list = slices.DeleteFunc(list, func(m jetstream.Msg) bool { return msgSeq(m) == seq })
		if len(list) == 0 {
			delete(q.held, subject)
		} else {
			q.held[subject] = list
		}
	}
	q.ready = slices.DeleteFunc(q.ready, func(m jetstream.Msg) bool { return msgSeq(m) == seq })
}

// release moves the next held event of subject to ready once it is the
// subject's head.
func (q *queue) release(ctx context.Context, subject string) {
	q.mu.Lock()
	list := q.held[subject]
	if len(list) == 0 {
		q.mu.Unlock()
		return
	}
	next := list[0]
	q.mu.Unlock()
	head, err := q.isHead(ctx, subject, msgSeq(next))
	if err != nil || !head {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	list = q.held[subject]
	if len(list) == 0 || msgSeq(list[0]) != msgSeq(next) {
		return // taken meanwhile
	}
	if len(list) == 1 {
		delete(q.held, subject)
	} else {
		q.held[subject] = list[1:]
	}
	q.ready = append(q.ready, next)
}

// takeReady hands out up to max released fifo events, each with a fresh
// visibility timeout.
func (q *queue) takeReady(max int) []Delivery {
	if !q.fifo {
		return nil
	}
	q.mu.Lock()
	n := min(max, len(q.ready))
	taken := slices.Clone(q.ready[:n])
	q.ready = q.ready[n:]
	q.mu.Unlock()
	var out []Delivery
	for _, msg := range taken {
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		_ = msg.InProgress()
		if d := q.deliver(msg, meta); d != nil {
			out = append(out, *d)
		}
	}
	return out
}

// sweep keeps held and ready fifo events from timing out while they wait,
// and releases subjects whose head went away unseen (retention, a purge).
func (q *queue) sweep(ctx context.Context) {
	every := max(q.visibility()/3, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		var waiting []jetstream.Msg
		subjects := make([]string, 0, len(q.held))
		for s, list := range q.held {
			subjects = append(subjects, s)
			waiting = append(waiting, list...)
		}
		waiting = append(waiting, q.ready...)
		q.mu.Unlock()
		for _, m := range waiting {
			_ = m.InProgress()
		}
		for _, s := range subjects {
			q.release(ctx, s)
		}
	}
}

// ack acknowledges a delivery: the event leaves the queue.
func (q *queue) ack(ctx context.Context, id string) error {
	r, err := q.receipt(id)
	if err != nil {
		return err
	}
	if err := q.d.ackRequest(ctx, r.reply, []byte("+ACK")); err != nil {
		return fmt.Errorf("queue %q: ack: %w", q.name, err)
	}
	m := q.d.metrics.forQueue(q.name)
	m.acked.Inc()
	m.latency.Observe(time.Since(r.stored).Seconds())
	if q.fifo {
		q.release(ctx, r.subject)
	}
	return nil
}

// nack gives a delivery back: it is delivered again after delay, or, if
// it was the last delivery deadLetter.maxReceive allows, dead-lettered
// with reason as its last error.
func (q *queue) nack(ctx context.Context, id, reason string, delay time.Duration) error {
	r, err := q.receipt(id)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "nacked by the worker"
	}
	if q.dlq != nil && r.delivered >= q.maxReceive {
		raw, err := q.stream.GetMsg(ctx, r.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // acknowledged or dead-lettered meanwhile
		}
		if err != nil {
			return fmt.Errorf("queue %q: nack: read event %d: %w", q.name, r.seq, err)
		}
		return q.deadLetter(ctx, raw.Header, raw.Data, r.seq, r.delivered, reason, r.reply, r.subject)
	}
	return q.nakReceipt(id, delay)
}

func (q *queue) nakReceipt(id string, delay time.Duration) error {
	r, err := q.receipt(id)
	if err != nil {
		return err
	}
	payload := []byte("-NAK")
	if delay > 0 {
		payload = fmt.Appendf(nil, `-NAK {"delay": %d}`, delay.Nanoseconds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := q.d.ackRequest(ctx, r.reply, payload); err != nil {
		return fmt.Errorf("queue %q: nack: %w", q.name, err)
	}
	return nil
}

// deadLetter moves an event to the dead-letter queue, then acknowledges
// it here. The publish is deduplicated by the event's place in this
// queue, so that a crash between the two steps leaves one dead letter.
func (q *queue) deadLetter(ctx context.Context, hdr nats.Header, data []byte, seq uint64, attempts int, reason, ackReply, subject string) error {
	h := cloneHeader(hdr)
	h.Set(hdrOrigin, "queue:"+q.name)
	delete(h, hdrSubscription)
	h.Set(hdrAttempts, strconv.Itoa(attempts))
	h.Set(hdrLastError, escapeValue(reason))
	h.Set(hdrDeadLettered, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dead:%s:%d", q.streamName, seq))
	msg := &nats.Msg{Subject: q.dlq.publishSubject(headerValue(hdr, "ce-subject")), Header: h, Data: data}
	if _, err := q.d.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("queue %q: dead-letter event %d to queue %q: %w", q.name, seq, q.dlq.name, err)
	}
	q.d.metrics.published(Destination{Kind: ToQueue, Name: q.dlq.name}).Inc()
	if err := q.d.ackRequest(ctx, ackReply, []byte("+ACK")); err != nil {
		return fmt.Errorf("queue %q: dead-letter event %d: ack: %w", q.name, seq, err)
	}
	q.d.metrics.forQueue(q.name).deadLettered.Inc()
	if sp := q.d.startEventSpan(headerValue(hdr, cePrefix+traceparentExt), "dead-letter queue "+q.name, tracing.KindProducer); sp != nil {
		sp.Attrs = append(sp.Attrs,
			tracing.String("messaging.system", "nats"),
			tracing.String("messaging.operation.type", "send"),
			tracing.String("messaging.destination.name", q.dlq.name),
			tracing.String("messaging.message.id", headerValue(hdr, "ce-id")),
			tracing.Int("nubo.events.attempts", int64(attempts)),
			tracing.String("error.type", "dead_lettered"))
		q.d.endSpan(sp, errors.New("dead-lettered: "+reason))
	}
	q.d.log.Info("event dead-lettered", "queue", q.name, "to", q.dlq.name, "seq", seq, "id", headerValue(hdr, "ce-id"), "attempts", attempts, "error", reason)
	if q.fifo {
		q.release(ctx, subject)
	}
	return nil
}

// receipt parses a delivery ID and checks that it belongs to this queue.
func (q *queue) receipt(id string) (receipt, error) {
	r, err := decodeReceipt(id)
	if err != nil {
		return r, err
	}
	if r.stream != q.streamName || r.consumer != queueConsumer {
		return r, fmt.Errorf("%w: it was not delivered by queue %q", ErrBadReceipt, q.name)
	}
	return r, nil
}

// ackRequest sends an acknowledgement and waits for JetStream to confirm.
func (d *Dispatcher) ackRequest(ctx context.Context, reply string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	_, err := d.nc.RequestWithContext(ctx, reply, payload)
	return err
}

func msgSeq(m jetstream.Msg) uint64 {
	meta, err := m.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// QueueStatus is apitype.Queue: the wire type lives there, so that the API
// changes only where it is declared.
type QueueStatus = apitype.Queue

// Queues returns the depth of every queue, by name.
func (d *Dispatcher) Queues(ctx context.Context) ([]QueueStatus, error) {
	if _, err := d.jetStream(); err != nil {
		return nil, err
	}
	out := make([]QueueStatus, 0, len(d.queues))
	for _, name := range sortedKeys(d.queues) {
		st, err := d.queues[name].status(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (q *queue) status(ctx context.Context) (QueueStatus, error) {
	st := QueueStatus{Name: q.name, Type: q.spec.Type}
	if st.Type == "" {
		st.Type = "standard"
	}
	if q.dlq != nil {
		st.DeadLetterQueue = q.dlq.name
	}
	si, err := q.stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("queue %q: %w", q.name, err)
	}
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("queue %q: %w", q.name, err)
	}
	st.Messages, st.Waiting, st.InFlight = si.State.Msgs, ci.NumPending, ci.NumAckPending
	return st, nil
}
