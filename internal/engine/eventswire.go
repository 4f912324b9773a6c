package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
)

// eventsCaller is the principal the dispatcher's deliveries carry in the
// mesh: in Kubernetes they come from the nubo-events Deployment.
const eventsCaller = "nubo-events"

func (e *Engine) startBroker(ctx context.Context, app *spec.App) (*broker.Broker, error) {
	cfg := broker.Config{StateDir: app.StatePath(), Logger: e.log.With("component", "broker")}
	if app.Local.Broker.Embedded != nil && !*app.Local.Broker.Embedded {
		cfg.URL = app.Local.Broker.URL
	}
	b, err := broker.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

// newDispatcher builds the events component over the spec with its
// functions' triggers added as the routes they amount to.
func (e *Engine) newDispatcher(app *spec.App, b *broker.Broker) (*events.Dispatcher, error) {
	d, err := events.New(events.Config{
		App:       withFunctionTriggers(app),
		Broker:    b,
		Deliverer: engineDeliverer{e},
		Logger:    e.log.With("component", "events"),
		Metrics:   e.metrics.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return d, nil
}

// engineDeliverer reaches services through the mesh and functions through
// their pools.
type engineDeliverer struct{ e *Engine }

func (d engineDeliverer) ServiceURL(name string) (string, error) {
	m := d.e.meshOf()
	if m == nil {
		return "", errors.New("the mesh is not running")
	}
	return m.ServiceURL(eventsCaller, name)
}

func (d engineDeliverer) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	d.e.mu.Lock()
	fns := d.e.fns
	d.e.mu.Unlock()
	if fns == nil {
		return errors.New("functions are not running")
	}
	err := fns.DeliverToFunction(ctx, name, evs)
	if errors.Is(err, functions.ErrDeadLettered) {
		return nil // the function's own retries ended in its dead-letter queue
	}
	return err
}

// withFunctionTriggers returns app with each enabled trigger of a function
// turned into what it means for the dispatcher: a topic trigger is a
// subscription, a schedule trigger a schedule, an event trigger a rule on the
// bus. (Queue triggers are pull workers: see runQueueTriggers.) The spec
// itself is not changed.
func withFunctionTriggers(app *spec.App) *spec.App {
	out := *app
	out.Topics = maps.Clone(app.Topics)
	out.Schedules = maps.Clone(app.Schedules)
	out.Rules = maps.Clone(app.Rules)
	if out.Topics == nil {
		out.Topics = map[string]*spec.Topic{}
	}
	if out.Schedules == nil {
		out.Schedules = map[string]*spec.Schedule{}
	}
	if out.Rules == nil {
		out.Rules = map[string]*spec.Rule{}
	}
	for _, fname := range keys(app.Functions) {
		f := app.Functions[fname]
		if f.Run == "" {
			continue
		}
		target := spec.Target{Kind: spec.TargetFunction, Name: fname, Text: "function:" + fname}
		for i, t := range f.Triggers {
			if t.Enabled != nil && !*t.Enabled {
				continue
			}
			name := triggerName(fname, i)
			switch {
			case t.Topic != "":
				topic := *out.Topics[t.Topic]
				topic.Subscriptions = append(append([]*spec.Subscription(nil), topic.Subscriptions...),
					&spec.Subscription{Endpoint: target, Filter: t.Filter, Protocol: "function", BatchSize: max(t.BatchSize, 1)})
				out.Topics[t.Topic] = &topic
			case t.Schedule != "":
				out.Schedules[name] = &spec.Schedule{Expression: t.Schedule, Target: target, Enabled: ptrTrue()}
			case t.Event != nil:
				f := &spec.Filter{Exact: map[string]string{}}
				if t.Event.Source != "" {
					f.Exact["source"] = t.Event.Source
				}
				if t.Event.Type != "" {
					f.Exact["type"] = t.Event.Type
				}
				if t.Filter != nil {
					f = &spec.Filter{All: []*spec.Filter{f, t.Filter}}
				}
				if len(f.Exact) == 0 && f.All == nil {
					f = nil
				}
				out.Rules[name] = &spec.Rule{Filter: f, Target: target, Enabled: ptrTrue()}
			}
		}
	}
	return &out
}

// triggerName names the route a trigger becomes: a DNS label, unique per
// function and trigger, short enough even for long function names.
func triggerName(function string, i int) string {
	name := fmt.Sprintf("fn-%s-trigger-%d", function, i)
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(function))
	return fmt.Sprintf("fn-%.40s-%08x-%d", function, h.Sum32(), i)
}

func ptrTrue() *bool { t := true; return &t }

// runQueueTriggers starts a worker per queue trigger: it receives up to
// batchSize events, invokes the function, and acknowledges them when it
// took them, or gives them back with the error (the queue's visibility and
// deadLetter then apply).
func (e *Engine) runQueueTriggers(ctx context.Context, app *spec.App, d *events.Dispatcher, fns *functions.Functions) {
	for _, fname := range keys(app.Functions) {
		f := app.Functions[fname]
		if f.Run == "" {
			continue
		}
		for _, t := range f.Triggers {
			if t.Queue == "" || (t.Enabled != nil && !*t.Enabled) {
				continue
			}
			queue, batch := t.Queue, max(t.BatchSize, 1)
			e.bg.Add(1)
			go func() {
				defer e.bg.Done()
				e.queueWorker(ctx, d, fns, fname, queue, batch)
			}()
		}
	}
}

func (e *Engine) queueWorker(ctx context.Context, d *events.Dispatcher, fns *functions.Functions, fname, queue string, batch int) {
	for ctx.Err() == nil {
		ds, err := d.Receive(ctx, queue, batch, 5*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				e.out.event(fname, fmt.Sprintf("function %s: queue %s: %v", fname, queue, err))
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		if len(ds) == 0 {
			continue
		}
		evs := make([]*event.Event, len(ds))
		for i, dl := range ds {
			evs[i] = dl.Event
		}
		// The functions component a reload may have replaced.
		e.mu.Lock()
		if e.fns != nil {
			fns = e.fns
		}
		e.mu.Unlock()
		err = fns.DeliverToFunction(ctx, fname, evs)
		for _, dl := range ds {
			if err == nil || errors.Is(err, functions.ErrDeadLettered) {
				_ = d.Ack(ctx, queue, dl.ID)
			} else {
				_ = d.Nack(ctx, queue, dl.ID, err.Error(), 0)
			}
		}
	}
}

// swapHandler serves through a handler that a reload replaces.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, `{"error":"events are not running"}`, http.StatusServiceUnavailable)
}

// startEvents starts the dispatcher, connects the functions' dead letters to
// it and starts the queue triggers' workers.
func (e *Engine) startEvents(ctx context.Context, app *spec.App, d *events.Dispatcher) error {
	if err := d.Start(ctx); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.events, e.eventsCancel = d, cancel
	fns := e.fns
	e.deadLetters = func(ctx context.Context, dl functions.DeadLetter) error {
		return d.DeadLetterEvent(ctx, dl.Queue, "function:"+dl.Function, &dl.Event, dl.Attempts, dl.Error)
	}
	e.mu.Unlock()
	for _, s := range d.Skipped() {
		e.out.event("", fmt.Sprintf("skipping %s: %s", s.What, s.Reason))
	}
	if fns != nil {
		e.runQueueTriggers(wctx, app, d, fns)
	}
	return nil
}

// eventsChanged reports whether a reload touches what the dispatcher runs.
func eventsChanged(old, next *spec.App) bool {
	return !reflect.DeepEqual(old.Events, next.Events) || !reflect.DeepEqual(old.Rules, next.Rules) ||
		!reflect.DeepEqual(old.Queues, next.Queues) || !reflect.DeepEqual(old.Topics, next.Topics) ||
		!reflect.DeepEqual(old.Schedules, next.Schedules) || !reflect.DeepEqual(functionTriggers(old), functionTriggers(next))
}

func functionTriggers(app *spec.App) map[string][]*spec.Trigger {
	out := map[string][]*spec.Trigger{}
	for name, f := range app.Functions {
		out[name] = f.Triggers
	}
	return out
}

// reloadEvents replaces the dispatcher with one for the new spec, on the
// same broker: streams and consumers keep their events.
func (e *Engine) reloadEvents(ctx context.Context, old, next *spec.App) {
	if !eventsChanged(old, next) {
		return
	}
	e.mu.Lock()
	d, cancel, b := e.events, e.eventsCancel, e.broker
	e.mu.Unlock()
	nd, err := e.newDispatcher(next, b)
	if err != nil {
		e.out.event("", fmt.Sprintf("events not reloaded, the running ones are kept: %v", err))
		return
	}
	if cancel != nil {
		cancel()
	}
	if d != nil {
		if err := d.Stop(ctx); err != nil {
			e.out.event("", fmt.Sprintf("events: stop: %v", err))
		}
	}
	if err := e.startEvents(e.bgContext(), next, nd); err != nil {
		e.out.event("", fmt.Sprintf("events: %v", err))
		return
	}
	e.eventsAPI.set(nd.Handler())
	e.out.event("", "events, queues, topics, rules and schedules reloaded")
}
