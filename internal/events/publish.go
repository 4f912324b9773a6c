package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// DestinationKind is what Publish stores events in.
type DestinationKind string

// The kinds of destination.
const (
	ToQueue DestinationKind = "queue"
	ToTopic DestinationKind = "topic"
	// ToBus is the event bus, which rules (and function event triggers)
	// read; it has no name.
	ToBus DestinationKind = "bus"
)

// Destination is a queue, a topic or the bus.
type Destination struct {
	Kind DestinationKind
	// Name of the queue or topic; empty for the bus.
	Name string
}

func (t Destination) String() string {
	if t.Kind == ToBus {
		return "the event bus"
	}
	return fmt.Sprintf("%s %q", t.Kind, t.Name)
}

// Published is apitype.Published: the wire type lives there, so that the API
// changes only where it is declared.
type Published = apitype.Published

// Errors of Publish that callers branch on (the API's HTTP status).
var (
	// ErrNotFound: no such queue, topic or dead-letter source.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: the event is larger than the broker takes.
	ErrTooLarge = errors.New("event too large")
)

// notFoundError is an ErrNotFound whose message is the whole story.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string        { return e.msg }
func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

func notFoundf(format string, args ...any) error {
	return notFoundError{fmt.Sprintf(format, args...)}
}

// InvalidEventError is a refused event: malformed, or its data breaks the
// JSON Schema of its type.
type InvalidEventError struct {
	// Index of the event in the batch.
	Index int
	// Batch is set when the event came in a batch.
	Batch bool
	// ID and Type of the event, when it has them.
	ID, Type string
	// Reason says what is wrong.
	Reason string
}

func (e *InvalidEventError) Error() string {
	var who []string
	if e.Batch {
		who = append(who, fmt.Sprintf("event %d of the batch", e.Index))
	} else {
		who = append(who, "event")
	}
	if e.Type != "" {
		who = append(who, fmt.Sprintf("type %q", e.Type))
	}
	if e.ID != "" {
		who = append(who, fmt.Sprintf("id %q", e.ID))
	}
	return fmt.Sprintf("%s refused: %s", strings.Join(who, " "), e.Reason)
}

// Publish stores events in a queue, a topic or the bus. It fills the id
// (a UUID), time, specversion (1.0) and source (the type's declared
// source, else "nubo") of each event that has none, and refuses the whole
// batch, storing none of it, if an event is invalid or its data breaks the
// JSON Schema of its type (an *InvalidEventError). It returns once
// JetStream has stored every event.
func (d *Dispatcher) Publish(ctx context.Context, to Destination, evs ...*event.Event) ([]Published, error) {
	subject, err := d.destinationSubject(to)
	if err != nil {
		return nil, err
	}
	for i, ev := range evs {
		if err := d.prepare(ev); err != nil {
			return nil, &InvalidEventError{Index: i, Batch: len(evs) > 1, ID: ev.ID(), Type: ev.Type(), Reason: err.Error()}
		}
	}
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		msgs[i] = encodeEvent(subject(ev), ev)
		msgs[i].Header.Set(jetstream.MsgIDHeader, escapeValue(ev.Source()+" "+ev.ID()))
	}
	out, err := d.store(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", to, err)
	}
	for i := range out {
		out[i].ID = evs[i].ID()
		if !out[i].Duplicate {
			d.metrics.published(to).Inc()
		}
	}
	return out, nil
}

// destinationSubject returns how to pick the NATS subject of an event
// published to a destination.
func (d *Dispatcher) destinationSubject(to Destination) (func(*event.Event) string, error) {
	switch to.Kind {
	case ToQueue:
		q, ok := d.queues[to.Name]
		if !ok {
			return nil, notFoundf("no queue %q%s", to.Name, known("queues", sortedKeys(d.queues)))
		}
		return func(ev *event.Event) string { return q.publishSubject(ev.Subject()) }, nil
	case ToTopic:
		if _, ok := d.app.Topics[to.Name]; !ok {
			return nil, notFoundf("no topic %q%s", to.Name, known("topics", sortedKeys(d.app.Topics)))
		}
		s := d.n.topicSubject(to.Name)
		return func(*event.Event) string { return s }, nil
	case ToBus:
		s := d.n.busSubject()
		return func(*event.Event) string { return s }, nil
	}
	return nil, notFoundf("unknown destination kind %q", to.Kind)
}

// known is " (queues: a, b)" or " (the spec has no queues)", for messages.
func known(what string, names []string) string {
	if len(names) == 0 {
		return fmt.Sprintf(" (the spec has no %s)", what)
	}
	return fmt.Sprintf(" (%s: %s)", what, strings.Join(names, ", "))
}

// store publishes messages and waits for JetStream to store them all.
func (d *Dispatcher) store(ctx context.Context, msgs []*nats.Msg) ([]Published, error) {
	js, err := d.jetStream()
	if err != nil {
		return nil, err
	}
	limit := d.nc.MaxPayload()
	for i, m := range msgs {
		if size := int64(len(m.Data) + headerSize(m.Header)); size > limit {
			return nil, fmt.Errorf("%w: event %d is %d bytes; the broker takes at most %d", ErrTooLarge, i, size, limit)
		}
	}
	out := make([]Published, len(msgs))
	if len(msgs) == 1 {
		ack, err := js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return nil, err
		}
		out[0] = Published{Sequence: ack.Sequence, Duplicate: ack.Duplicate}
		return out, nil
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			out[i] = Published{Sequence: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-f.Err():
			return nil, fmt.Errorf("event %d: %w", i, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

func headerSize(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + 12
}

// prepare fills what an event may leave out, then validates it and its
// data.
func (d *Dispatcher) prepare(ev *event.Event) error {
	if ev.SpecVersion() == "" {
		ev.SetSpecVersion(event.CloudEventsVersionV1)
	}
	if ev.ID() == "" {
		ev.SetID(uuid.NewString())
	}
	if ev.Time().IsZero() {
		ev.SetTime(time.Now().UTC())
	}
	if ev.Source() == "" {
		ev.SetSource(d.defaultSource(ev.Type()))
	}
	if err := ev.Validate(); err != nil {
		return errors.New(strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
	}
	return d.validateData(ev)
}

// defaultSource is the source an event of typ gets when it has none.
func (d *Dispatcher) defaultSource(typ string) string {
	if e := d.app.Events[typ]; e != nil && e.Source != "" {
		return e.Source
	}
	return "nubo"
}

// validateData checks data against the JSON Schema of the event's type.
func (d *Dispatcher) validateData(ev *event.Event) error {
	sch := d.schemas[ev.Type()]
	if sch == nil {
		return nil
	}
	if ct := ev.DataContentType(); !isJSON(ct) {
		return fmt.Errorf("type %q has a JSON Schema, so its data must be JSON, not %s", ev.Type(), ct)
	}
	var doc any
	if data := ev.Data(); len(bytes.TrimSpace(data)) > 0 {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("data is not valid JSON: %v", err)
		}
		doc = v
	}
	if err := sch.Validate(doc); err != nil {
		return fmt.Errorf("data does not match the schema of %s: %s", ev.Type(), schemaErrors(err))
	}
	return nil
}

// isJSON reports whether a datacontenttype is JSON; none means JSON, as
// the CloudEvents JSON format says.
func isJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// schemaErrors turns a validation error into one line: the leaves of its
// tree, each at its place in the data.
func schemaErrors(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	p := message.NewPrinter(language.English)
	var msgs []string
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := "/" + strings.Join(e.InstanceLocation, "/")
		msg := fmt.Sprintf("at %s: %s", at, e.ErrorKind.LocalizedString(p))
		if !seen[msg] {
			seen[msg] = true
			msgs = append(msgs, msg)
		}
	}
	walk(ve)
	if len(msgs) == 0 {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return strings.Join(msgs, "; ")
}
