package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/spec"
)

// eventsCaller is the principal the dispatcher's deliveries carry in the
// mesh: in Kubernetes they come from the nubo-events Deployment.
const eventsCaller = "nubo-events"

// eventsComponent is the dispatcher: queues, topics, the bus, rules,
// schedules, dead letters and the functions' triggers, on the broker. A
// reload compiles a dispatcher for the new spec (Prepare), then replaces the
// running one on the same broker (Commit): streams and consumers keep their
// events.
type eventsComponent struct {
	e    *Engine
	mesh interface {
		ServiceURL(caller, target string) (string, error)
	}
	broker *brokerComponent
	// functions is set once, by build, before anything starts.
	functions interface {
		DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error
	}

	cur atomic.Pointer[events.Dispatcher]
	api swapHandler
	// app is the spec the running dispatcher was built from: what a reload
	// compares with (the host serializes Prepare and Commit).
	app *spec.App
}

func newEventsComponent(e *Engine, m interface {
	ServiceURL(caller, target string) (string, error)
}, b *brokerComponent) *eventsComponent {
	return &eventsComponent{e: e, mesh: m, broker: b}
}

// build compiles the dispatcher of app; it needs the broker only at Start.
func (c *eventsComponent) build(app *spec.App) error {
	d, err := c.newDispatcher(app)
	if err != nil {
		return err
	}
	c.cur.Store(d)
	c.api.set(d.Handler())
	c.app = app
	return nil
}

func (c *eventsComponent) newDispatcher(app *spec.App) (*events.Dispatcher, error) {
	d, err := events.New(events.Config{
		App:       app,
		Broker:    c.broker.b,
		Deliverer: deliverer{c},
		Tracer:    c.e.tracing.t,
		Logger:    c.e.log,
		Metrics:   c.e.metrics.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return d, nil
}

// deliverer reaches services through the mesh, as the nubo-events
// principal, and functions through their pools.
type deliverer struct{ c *eventsComponent }

func (d deliverer) ServiceURL(name string) (string, error) {
	return d.c.mesh.ServiceURL(eventsCaller, name)
}

func (d deliverer) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	return d.c.functions.DeliverToFunction(ctx, name, evs)
}

func (c *eventsComponent) Name() string { return "events" }

func (c *eventsComponent) Start(ctx context.Context) error {
	d := c.cur.Load()
	if err := d.Start(ctx); err != nil {
		return err
	}
	for _, s := range d.Skipped() {
		c.e.out.event("", fmt.Sprintf("skipping %s: %s", s.What, s.Reason))
	}
	return nil
}

func (c *eventsComponent) Stop(ctx context.Context) error { return c.cur.Load().Stop(ctx) }

// Prepare compiles the new dispatcher when the events, queues, topics,
// rules, schedules or functions' triggers changed.
func (c *eventsComponent) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	old := c.app
	if !eventsChanged(old, next) {
		return nil, nil
	}
	nd, err := c.newDispatcher(next)
	if err != nil {
		return nil, err
	}
	return changeFuncs{commit: func(ctx context.Context) error {
		cur := c.cur.Load()
		if err := cur.Stop(ctx); err != nil {
			c.e.out.event("", fmt.Sprintf("events: stop: %v", err))
		}
		if err := nd.Start(ctx); err != nil {
			// The old spec's dispatcher runs again: a stopped one cannot
			// restart, so a new one is made of the same spec.
			again, aerr := c.newDispatcher(old)
			if aerr == nil {
				aerr = again.Start(ctx)
			}
			if aerr == nil {
				c.cur.Store(again)
				c.api.set(again.Handler())
			} else {
				c.e.log.Error("events: neither the new nor the old dispatcher starts; events are down until nubo up restarts", "err", errors.Join(err, aerr))
				c.e.out.event("", "events are down: neither the new nor the old dispatcher starts: "+aerr.Error())
			}
			return errors.Join(err, aerr)
		}
		c.cur.Store(nd)
		c.api.set(nd.Handler())
		c.app = next
		c.e.out.event("", "events, queues, topics, rules and schedules reloaded")
		return nil
	}}, nil
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

// routes serves the platform API's events routes (/v1/) on the console.
func (c *eventsComponent) routes() []console.Route {
	return []console.Route{{Pattern: "/v1/", Handler: &c.api}}
}

// DeadLetter implements functions.DeadLetterSink: a function's failed
// event goes to its dead-letter queue.
func (c *eventsComponent) DeadLetter(ctx context.Context, dl functions.DeadLetter) error {
	return c.cur.Load().DeadLetterEvent(ctx, dl.Queue, "function:"+dl.Function, &dl.Event, dl.Attempts, dl.Error)
}

func (c *eventsComponent) queues(ctx context.Context) []events.QueueStatus {
	qs, err := c.cur.Load().Queues(ctx)
	if err != nil {
		return nil
	}
	return qs
}
