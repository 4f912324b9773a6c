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
		if err := ce.SetData(event.ApplicationJSON, []byte(ev.Data)); err != nil {
			return nil, err
		}
	}
	return &ce, nil
}

// Delivery is the body POSTed to a service handler of a projection (and
// of replay): the events of one batch, in order.
type Delivery struct {
	// Projection names the projection; "replay" for nubo eventstore replay.
	Projection string                  `json:"projection"`
	Events     []apitype.RecordedEvent `json:"events"`
}

// deliver hands a batch to target: a function gets the CloudEvents, a
// service a POST of a Delivery. Only a full success is nil.
func (s *Store) deliver(ctx context.Context, target spec.Target, who string, evs []apitype.RecordedEvent) error {
	if s.cfg.Handlers == nil {
		return fmt.Errorf("no handlers to deliver to %s", target)
	}
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	switch target.Kind {
	case spec.TargetFunction:
		ces := make([]*event.Event, len(evs))
		for i, ev := range evs {
			ce, err := cloudEvent(ev)
			if err != nil {
				return fmt.Errorf("event %s: %w", ev.ID, err)
			}
			ces[i] = ce
		}
		return s.cfg.Handlers.DeliverToFunction(ctx, target.Name, ces)
	case spec.TargetService:
		body, err := json.Marshal(Delivery{Projection: who, Events: evs})
		if err != nil {
			return err
		}
		_, err = s.postService(ctx, target, body)
		return err
	}
	return fmt.Errorf("handler %s: not a function or a service", target)
}

// maxHandlerAnswer bounds what a handler's answer may hold.
const maxHandlerAnswer = 16 << 20

// postService POSTs JSON to a service handler and returns its 2xx answer.
func (s *Store) postService(ctx context.Context, target spec.Target, body []byte) ([]byte, error) {
	base, err := s.cfg.Handlers.ServiceURL(target.Name)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", target.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+target.Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHandlerAnswer))
	if err != nil {
		return nil, fmt.Errorf("POST %s: read the answer: %w", target, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := string(data)
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return nil, fmt.Errorf("POST %s: %s: %s", target, resp.Status, msg)
	}
	return data, nil
}
