package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Handlers reaches the handlers of projections and snapshots: functions
// through their pools (or Knative), services through the mesh (or their
// Kubernetes Services).
type Handlers interface {
	// DeliverToFunction invokes function name with a batch of CloudEvents;
	// nil means the function took them all.
	DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error
	// Invoke invokes function name with one CloudEvent and returns its
	// answer.
	Invoke(ctx context.Context, name string, ev event.Event) (functions.Result, error)
	// ServiceURL is the base URL service name is reached at.
	ServiceURL(name string) (string, error)
}

// handlerTimeout bounds one delivery to a handler.
const handlerTimeout = 30 * time.Second

// CloudEvents extension attributes of a delivered event: its stream, its
// version in it and its global position.
const (
	ceStream   = "nubostream"
	ceVersion  = "nuboversion"
	cePosition = "nuboposition"
)

// cloudEvent is a stored event as the CloudEvent a function gets: the
// event's id and type, source /eventstore/STREAM, subject STREAM.
func cloudEvent(ev apitype.RecordedEvent) (*event.Event, error) {
	ce := event.New()
	ce.SetID(ev.ID)
	ce.SetType(ev.Type)
	ce.SetSource("/eventstore/" + ev.Stream)
	ce.SetSubject(ev.Stream)
	ce.SetTime(ev.Time)
	ce.SetExtension(ceStream, ev.Stream)
	ce.SetExtension(ceVersion, strconv.FormatInt(ev.Version, 10))
	ce.SetExtension(cePosition, strconv.FormatUint(ev.Position, 10))
	if len(ev.Data) > 0 {
		// A json.RawMessage, not []byte: the SDK writes bytes as
		// data_base64, JSON as data.
		if err := ce.SetData(event.ApplicationJSON, ev.Data); err != nil {
			return nil, err
		}
	}
	return &ce, nil
}

// deliver hands a batch to target as CloudEvents: a function gets them
// through its pool, a service a POST of a JSON array of structured
// CloudEvents (application/cloudevents-batch+json, the CloudEvents HTTP
// binding's batch mode). Only a full success is nil.
func (s *Store) deliver(ctx context.Context, target spec.Target, evs []apitype.RecordedEvent) error {
	if s.cfg.Handlers == nil {
		return fmt.Errorf("no handlers to deliver to %s", target)
	}
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	ces := make([]*event.Event, len(evs))
	tp := traceparentFrom(ctx) // the delivery's span, for the handler's
	for i, ev := range evs {
		ce, err := cloudEvent(ev)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if tp != "" {
			ce.SetExtension("traceparent", tp)
		}
		ces[i] = ce
	}
	switch target.Kind {
	case spec.TargetFunction:
		return s.cfg.Handlers.DeliverToFunction(ctx, target.Name, ces)
	case spec.TargetService:
		body, err := json.Marshal(ces)
		if err != nil {
			return err
		}
		_, _, err = s.postService(ctx, target, http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, body)
		return err
	}
	return fmt.Errorf("handler %s: not a function or a service", target)
}

// maxHandlerAnswer bounds what a handler's answer may hold.
const maxHandlerAnswer = 16 << 20

// postService POSTs body with header to a service handler and returns its
// 2xx answer's headers and body.
func (s *Store) postService(ctx context.Context, target spec.Target, header http.Header, body []byte) (http.Header, []byte, error) {
	base, err := s.cfg.Handlers.ServiceURL(target.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("service %q: %w", target.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+target.Path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header = header
	if tp := traceparentFrom(ctx); tp != "" {
		req.Header.Set("Traceparent", tp)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("POST %s: %w", target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHandlerAnswer))
	if err != nil {
		return nil, nil, fmt.Errorf("POST %s: read the answer: %w", target, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := string(data)
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return nil, nil, fmt.Errorf("POST %s: %s: %s", target, resp.Status, msg)
	}
	return resp.Header, data, nil
}
