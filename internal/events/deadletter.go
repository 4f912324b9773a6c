package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// DeadLetter is apitype.DeadLetter: the wire type lives there, so that the API
// changes only where it is declared.
type DeadLetter = apitype.DeadLetter

// dlSource is where the dead letters of a name are.
type dlSource struct {
	what    string // for messages: `queue "orders"`
	stream  string
	subject string // filter, may end in >
	origin  string // required Nubo-Origin; empty: any
	queue   string // the dead-letter queue, when stream is one
}

// deadLetterSource resolves the name `nubo dlq` takes: a queue (its dead
// letters, in its deadLetter queue; or, for a queue that is only a
// dead-letter queue, everything in it), a topic, a rule or a schedule.
// KIND:NAME picks the kind when names collide; a plain name is looked up
// as a queue, a topic, a rule, then a schedule.
func (d *Dispatcher) deadLetterSource(name string) (dlSource, error) {
	kind, n, explicit := strings.Cut(name, ":")
	if !explicit {
		kind, n = "", name
	}
	if kind == "" || kind == "queue" {
		if q, ok := d.queues[n]; ok {
			if q.dlq != nil {
				return dlSource{what: fmt.Sprintf("queue %q", n), stream: q.dlq.streamName, subject: d.n.queueSubjects(q.dlq.name), origin: "queue:" + n, queue: q.dlq.name}, nil
			}
			if d.isDeadLetterQueue(n) {
				return dlSource{what: fmt.Sprintf("dead-letter queue %q", n), stream: q.streamName, subject: d.n.queueSubjects(n), queue: n}, nil
			}
			if kind == "queue" || !d.hasRouteSource(n) {
				return dlSource{}, notFoundf("queue %q has no deadLetter and is no queue's or function's deadLetter, so it has no dead letters", n)
			}
		}
	}
	if kind == "" || kind == "topic" {
		if _, ok := d.app.Topics[n]; ok {
			return dlSource{what: fmt.Sprintf("topic %q", n), stream: d.n.deadStream(), subject: d.n.deadSubject("topic." + n + ".>")}, nil
		}
	}
	if kind == "" || kind == "rule" {
		if _, ok := d.app.Rules[n]; ok {
			return dlSource{what: fmt.Sprintf("rule %q", n), stream: d.n.deadStream(), subject: d.n.deadSubject("rule." + n)}, nil
		}
	}
	if kind == "" || kind == "schedule" {
		if _, ok := d.app.Schedules[n]; ok {
			return dlSource{what: fmt.Sprintf("schedule %q", n), stream: d.n.deadStream(), subject: d.n.deadSubject("schedule." + n)}, nil
		}
	}
	switch kind {
	case "", "queue", "topic", "rule", "schedule":
	default:
		return dlSource{}, notFoundf("%q: write NAME, or queue:, topic:, rule: or schedule: and a name", name)
	}
	return dlSource{}, notFoundf("no queue, topic, rule or schedule %q has dead letters%s", name, known("queues", sortedKeys(d.queues)))
}

// isDeadLetterQueue reports whether a queue or a function names queue as
// its deadLetter.
func (d *Dispatcher) isDeadLetterQueue(queue string) bool {
	for _, q := range d.queues {
		if q.dlq != nil && q.dlq.name == queue {
			return true
		}
	}
	for _, f := range d.app.Functions {
		if f != nil && f.DeadLetter == queue {
			return true
		}
	}
	return false
}

// hasRouteSource reports whether name is also a topic, rule or schedule.
func (d *Dispatcher) hasRouteSource(name string) bool {
	_, t := d.app.Topics[name]
	_, r := d.app.Rules[name]
	_, s := d.app.Schedules[name]
	return t || r || s
}

// DeadLetters lists up to max dead letters of name, oldest first (max <= 0:
// all of them). See deadLetterSource for the names it takes.
func (d *Dispatcher) DeadLetters(ctx context.Context, name string, max int) ([]DeadLetter, error) {
	src, err := d.deadLetterSource(name)
	if err != nil {
		return nil, err
	}
	s, err := d.stream(ctx, src.stream)
	if err != nil {
		return nil, err
	}
	out := []DeadLetter{}
	for seq := uint64(1); max <= 0 || len(out) < max; {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(src.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dead letters of %s: %w", src.what, err)
		}
		seq = raw.Sequence + 1
		if dl, ok := src.deadLetter(raw); ok {
			out = append(out, dl)
		}
	}
	return out, nil
}

// DeadLetter returns one dead letter of name by its ID.
func (d *Dispatcher) DeadLetter(ctx context.Context, name string, id uint64) (DeadLetter, error) {
	src, err := d.deadLetterSource(name)
	if err != nil {
		return DeadLetter{}, err
	}
	s, err := d.stream(ctx, src.stream)
	if err != nil {
		return DeadLetter{}, err
	}
	return src.get(ctx, s, id)
}

func (src dlSource) get(ctx context.Context, s jetstream.Stream, id uint64) (DeadLetter, error) {
	raw, err := s.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, notFoundf("%s has no dead letter %d", src.what, id)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d of %s: %w", id, src.what, err)
	}
	if !subjectMatches(src.subject, raw.Subject) {
		return DeadLetter{}, notFoundf("%s has no dead letter %d", src.what, id)
	}
	dl, ok := src.deadLetter(raw)
	if !ok {
		return DeadLetter{}, notFoundf("%s has no dead letter %d", src.what, id)
	}
	return dl, nil
}

// deadLetter reads a stored dead letter, and whether it belongs to src.
func (src dlSource) deadLetter(raw *jetstream.RawStreamMsg) (DeadLetter, bool) {
	info := deadLetterInfo(raw.Header)
	if src.origin != "" && (info == nil || info.Origin != src.origin) {
		return DeadLetter{}, false
	}
	ev, err := decodeEvent(raw.Header, raw.Data)
	if err != nil {
		return DeadLetter{}, false
	}
	dl := DeadLetter{ID: raw.Sequence, Queue: src.queue, Event: ev}
	if info != nil {
		dl.DeadLetterInfo = *info
	}
	return dl, true
}

// subjectMatches reports whether subject matches filter, which may end
// in the > wildcard.
func subjectMatches(filter, subject string) bool {
	if prefix, ok := strings.CutSuffix(filter, ">"); ok {
		return strings.HasPrefix(subject, prefix) && len(subject) > len(prefix)
	}
	return filter == subject
}

// RedriveRequest is apitype.RedriveRequest: the wire type lives there, so that the API
// changes only where it is declared.
type RedriveRequest = apitype.RedriveRequest

// Redriven is apitype.Redriven: the wire type lives there, so that the API
// changes only where it is declared.
type Redriven = apitype.Redriven

// Redrive sends dead letters of name back: each is published again (its
// dead-letter headers removed, its attempts starting from 1) and then
// deleted from the dead letters. A crash between the two steps leaves the
// dead letter in place and the publish deduplicated, so a second redrive
// is safe. All IDs are checked before any moves.
func (d *Dispatcher) Redrive(ctx context.Context, name string, req RedriveRequest) ([]Redriven, error) {
	src, err := d.deadLetterSource(name)
	if err != nil {
		return nil, err
	}
	s, err := d.stream(ctx, src.stream)
	if err != nil {
		return nil, err
	}
	var to *queue
	if req.To != "" {
		if to = d.queues[req.To]; to == nil {
			return nil, notFoundf("redrive to: no queue %q%s", req.To, known("queues", sortedKeys(d.queues)))
		}
	}
	var dls []DeadLetter
	switch {
	case req.All:
		if dls, err = d.DeadLetters(ctx, name, 0); err != nil {
			return nil, err
		}
	case len(req.IDs) == 0:
		return nil, badRequest{"redrive: name the dead letters' IDs, or all"}
	default:
		for _, id := range req.IDs {
			dl, err := src.get(ctx, s, id)
			if err != nil {
				return nil, err
			}
			dls = append(dls, dl)
		}
	}
	type move struct {
		dl      DeadLetter
		subject string
		to      string
		dest    *Destination
	}
	moves := make([]move, 0, len(dls))
	for _, dl := range dls {
		m := move{dl: dl}
		switch {
		case to != nil:
			m.subject, m.to, m.dest = to.publishSubject(dl.Event.Subject()), "queue "+to.name, &Destination{Kind: ToQueue, Name: to.name}
		default:
			if m.subject, m.to, m.dest, err = d.redriveTarget(dl); err != nil {
				return nil, badRequest{fmt.Sprintf("redrive dead letter %d of %s: %v", dl.ID, src.what, err)}
			}
		}
		moves = append(moves, m)
	}
	out := []Redriven{}
	for _, m := range moves {
		raw, err := s.GetMsg(ctx, m.dl.ID)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // redriven meanwhile
		}
		if err != nil {
			return out, fmt.Errorf("redrive dead letter %d of %s: %w", m.dl.ID, src.what, err)
		}
		h := cloneHeader(raw.Header)
		dropNuboHeaders(h)
		h.Set(jetstream.MsgIDHeader, fmt.Sprintf("redrive:%s:%d", src.stream, m.dl.ID))
		ack, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: m.subject, Header: h, Data: raw.Data})
		if err != nil {
			return out, fmt.Errorf("redrive dead letter %d of %s to %s: %w", m.dl.ID, src.what, m.to, err)
		}
		if m.dest != nil && !ack.Duplicate {
			d.metrics.published(*m.dest).Inc()
		}
		if err := s.DeleteMsg(ctx, m.dl.ID); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, fmt.Errorf("redrive dead letter %d of %s: delete: %w", m.dl.ID, src.what, err)
		}
		out = append(out, Redriven{ID: m.dl.ID, EventID: m.dl.Event.ID(), To: m.to})
		d.log.Info("dead letter redriven", "from", src.what, "id", m.dl.ID, "event", m.dl.Event.ID(), "to", m.to)
	}
	return out, nil
}

// redriveTarget is where a dead letter goes back to without --to: its
// queue, or the redrive subject of its route.
func (d *Dispatcher) redriveTarget(dl DeadLetter) (string, string, *Destination, error) {
	kind, name, _ := strings.Cut(dl.Origin, ":")
	if kind == "queue" {
		q := d.queues[name]
		if q == nil {
			return "", "", nil, fmt.Errorf("its queue %q is no longer in the spec: redrive it to another queue", name)
		}
		return q.publishSubject(dl.Event.Subject()), "queue " + name, &Destination{Kind: ToQueue, Name: name}, nil
	}
	key := kind + "." + name
	if dl.Subscription != "" {
		key += "." + dl.Subscription
	}
	for _, r := range d.routes {
		if r.key == key {
			return d.n.redriveSubject(key), r.what, nil, nil
		}
	}
	if dl.Origin == "" {
		return "", "", nil, errors.New("it does not say where it failed: redrive it to a queue")
	}
	if kind == "function" {
		return "", "", nil, fmt.Errorf("it failed in %s, which is invoked by its triggers: redrive it to a queue (one a trigger reads)", dl.Origin)
	}
	return "", "", nil, fmt.Errorf("%s no longer runs: redrive it to a queue", strings.Replace(key, ".", " ", 1))
}

// stream returns a handle on one of the app's streams.
func (d *Dispatcher) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	js, err := d.jetStream()
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// DeadLetterEvent stores ev in queue as a dead letter, with the headers
// nubo's own dead letters have: origin says where it failed (e.g.
// "function:send-welcome"), attempts how often, lastErr why. It is how
// other components (functions) dead-letter into a queue of the spec, so
// that `nubo dlq` shows their dead letters too. Repeating it for the same
// event and origin within two minutes stores it once.
func (d *Dispatcher) DeadLetterEvent(ctx context.Context, queue, origin string, ev *event.Event, attempts int, lastErr string) error {
	q, err := d.queue(queue)
	if err != nil {
		return err
	}
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("dead-letter to queue %q: %w", queue, err)
	}
	msg := encodeEvent(q.publishSubject(ev.Subject()), ev)
	h := msg.Header
	h.Set(hdrOrigin, escapeValue(origin))
	h.Set(hdrAttempts, strconv.Itoa(attempts))
	h.Set(hdrLastError, escapeValue(lastErr))
	h.Set(hdrDeadLettered, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(jetstream.MsgIDHeader, escapeValue("dead:"+origin+" "+ev.Source()+" "+ev.ID()))
	out, err := d.store(ctx, []*nats.Msg{msg})
	if err != nil {
		return fmt.Errorf("dead-letter to queue %q: %w", queue, err)
	}
	if !out[0].Duplicate {
		d.metrics.published(Destination{Kind: ToQueue, Name: queue}).Inc()
	}
	return nil
}
