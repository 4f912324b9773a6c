package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/cebinding"
	"github.com/nubo-dev/nubo/internal/spec"
)

// sender delivers events to a route's target; nil error means the target
// took them all.
type sender func(ctx context.Context, evs []*event.Event) error

// errNotRun says why a target cannot be run yet; the route is skipped.
type errNotRun struct{ reason string }

func (e errNotRun) Error() string { return e.reason }

// sender returns the sender of a target, or an errNotRun.
func (d *Dispatcher) sender(routeKey string, t spec.Target) (sender, error) {
	switch t.Kind {
	case spec.TargetHTTP:
		url := t.URL
		return func(ctx context.Context, evs []*event.Event) error {
			return d.post(ctx, url, evs)
		}, nil
	case spec.TargetService:
		name, path := t.Name, t.Path
		if path == "" {
			path = "/"
		}
		return func(ctx context.Context, evs []*event.Event) error {
			if d.cfg.Deliverer == nil {
				return fmt.Errorf("service %q: nubo up cannot reach services here (no deliverer)", name)
			}
			base, err := d.cfg.Deliverer.ServiceURL(name)
			if err != nil {
				return fmt.Errorf("service %q: %w", name, err)
			}
			return d.post(ctx, strings.TrimSuffix(base, "/")+path, evs)
		}, nil
	case spec.TargetFunction:
		fd, ok := d.cfg.Deliverer.(FunctionDeliverer)
		if !ok {
			return nil, errNotRun{fmt.Sprintf("target %s: functions are not run by nubo up yet", t.Text)}
		}
		name := t.Name
		return func(ctx context.Context, evs []*event.Event) error {
			if err := fd.DeliverToFunction(ctx, name, evs); err != nil {
				return fmt.Errorf("function %q: %w", name, err)
			}
			return nil
		}, nil
	case spec.TargetQueue:
		q, ok := d.queues[t.Name]
		if !ok {
			return nil, fmt.Errorf("target %s: no queue %q%s", t.Text, t.Name, known("queues", sortedKeys(d.queues)))
		}
		return func(ctx context.Context, evs []*event.Event) error {
			return d.forward(ctx, routeKey, evs, func(ev *event.Event) string { return q.publishSubject(ev.Subject()) }, Destination{Kind: ToQueue, Name: q.name})
		}, nil
	case spec.TargetTopic:
		if _, ok := d.app.Topics[t.Name]; !ok {
			return nil, fmt.Errorf("target %s: no topic %q%s", t.Text, t.Name, known("topics", sortedKeys(d.app.Topics)))
		}
		subject := d.n.topicSubject(t.Name)
		dest := Destination{Kind: ToTopic, Name: t.Name}
		return func(ctx context.Context, evs []*event.Event) error {
			return d.forward(ctx, routeKey, evs, func(*event.Event) string { return subject }, dest)
		}, nil
	}
	return nil, errNotRun{fmt.Sprintf("target %s: events cannot be delivered to a %s", t.Text, t.Kind)}
}

// forward stores events a route delivers to a queue or topic. The publish
// is deduplicated by route and event, so that a redelivery of the same
// event through the same route (after a crash) is not stored twice,
// while two routes to one queue each deliver.
func (d *Dispatcher) forward(ctx context.Context, routeKey string, evs []*event.Event, subject func(*event.Event) string, dest Destination) error {
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		msgs[i] = encodeEvent(subject(ev), ev)
		msgs[i].Header.Set(jetstream.MsgIDHeader, escapeValue(routeKey+" "+ev.Source()+" "+ev.ID()))
	}
	out, err := d.store(ctx, msgs)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", dest, err)
	}
	for _, p := range out {
		if !p.Duplicate {
			d.metrics.published(dest).Inc()
		}
	}
	return nil
}

// maxErrorBody is how much of a failed target's answer goes into the
// error, and so into a dead letter.
const maxErrorBody = 512

// post sends events to an HTTP target: one in binary mode, several as a
// JSON array in structured mode (application/cloudevents-batch+json).
// Any 2xx answer is success.
func (d *Dispatcher) post(ctx context.Context, url string, evs []*event.Event) error {
	var req *http.Request
	var err error
	if len(evs) == 1 {
		req, err = cehttp.NewHTTPRequestFromEvent(ctx, url, *evs[0])
	} else {
		batch := make([]event.Event, len(evs))
		for i, ev := range evs {
			batch[i] = *ev
		}
		req, err = cehttp.NewHTTPRequestFromEvents(ctx, url, batch)
	}
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	cebinding.EncodeHeaders(req.Header)
	if len(evs) == 1 {
		// The delivery's trace context as the request's too, so that the
		// mesh's hop and the service's own spans join the event's trace.
		if tp, ok := evs[0].Extensions()[traceparentExt].(string); ok {
			req.Header.Set("Traceparent", tp)
		}
	}
	resp, err := d.client.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) && uerr.Unwrap() != nil {
			err = uerr.Unwrap()
		}
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // keep the connection reusable
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return fmt.Errorf("POST %s: %s: %s", url, resp.Status, msg)
}
