package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

// eventStoreCaller is the event store's principal in the mesh, as the
// nubo-eventstore Deployment's is in Kubernetes.
const eventStoreCaller = "nubo-eventstore"

// eventStoreComponent is the event store (internal/eventstore) on the
// broker. A reload that changes the eventStore section builds a new store
// (Prepare) and replaces the running one (Commit): the events stay in
// JetStream and projections resume from their checkpoints. An eventStore
// section added to or removed from the spec needs a restart of nubo up.
type eventStoreComponent struct {
	e      *Engine
	broker *brokerComponent
	h      eventstore.Handlers
	cur    atomic.Pointer[eventstore.Store]
	api    swapHandler
}

// storeHandlers reaches services through the mesh, as the nubo-eventstore
// principal, and functions through their pools.
type storeHandlers struct {
	mesh interface {
		ServiceURL(caller, target string) (string, error)
	}
	fns *functionsComponent
}

func (h storeHandlers) ServiceURL(name string) (string, error) {
	return h.mesh.ServiceURL(eventStoreCaller, name)
}

// DeliverToFunction is the functions' own: a batch the function
// dead-lettered is an error here (functions.ErrDeadLettered), so that a
// projection retries it rather than moving past it.
func (h storeHandlers) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	return h.fns.cur.Load().DeliverToFunction(ctx, name, evs)
}

func (h storeHandlers) Invoke(ctx context.Context, name string, ev event.Event) (functions.Result, error) {
	return h.fns.Invoke(ctx, name, ev)
}

// newEventStoreComponent builds the store of app, or returns nil when the
// spec has no eventStore section.
func newEventStoreComponent(e *Engine, app *spec.App, vals secrets.Values, b *brokerComponent, h eventstore.Handlers) (*eventStoreComponent, error) {
	if app.EventStore == nil {
		return nil, nil
	}
	c := &eventStoreComponent{e: e, broker: b, h: h}
	s, err := c.newStore(app, vals)
	if err != nil {
		return nil, err
	}
	c.cur.Store(s)
	c.api.set(s.Handler())
	return c, nil
}

func (c *eventStoreComponent) newStore(app *spec.App, vals secrets.Values) (*eventstore.Store, error) {
	key, err := eventstore.EncryptionKey(app, secretLookup(vals).Get)
	if err != nil {
		return nil, err
	}
	s, err := eventstore.New(eventstore.Config{
		App: app, Broker: c.broker.b, Handlers: c.h, Key: key,
		Logger: c.e.log, Metrics: c.e.metrics.reg, Tracer: c.e.tracing.t,
		SoleWriter: c.broker.soleWriter(app.Name),
	})
	if err != nil {
		return nil, err // eventstore.New names the store
	}
	return s, nil
}

func (c *eventStoreComponent) Name() string { return "eventstore" }

func (c *eventStoreComponent) Start(ctx context.Context) error {
	return c.cur.Load().Start(ctx)
}

func (c *eventStoreComponent) Stop(ctx context.Context) error { return c.cur.Load().Stop(ctx) }

// Prepare builds a store of the new eventStore section; Commit stops the
// running one and starts it.
func (c *eventStoreComponent) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	old, _ := c.e.current()
	if next.EventStore == nil {
		c.e.out.event("", "the eventStore section was removed from the spec: restart nubo up to stop the event store")
		return nil, nil
	}
	if reflect.DeepEqual(old.EventStore, next.EventStore) {
		return nil, nil
	}
	ns, err := c.newStore(next, c.e.valuesFor(next))
	if err != nil {
		return nil, err
	}
	return changeFuncs{commit: func(ctx context.Context) error {
		cur := c.cur.Load()
		if err := cur.Stop(ctx); err != nil {
			c.e.out.event("", fmt.Sprintf("eventstore: stop: %v", err))
		}
		if err := ns.Start(ctx); err != nil {
			// A stopped store cannot restart: one of the old spec runs.
			again, aerr := c.newStore(old, c.e.valuesFor(old))
			if aerr == nil {
				aerr = again.Start(ctx)
			}
			if aerr == nil {
				c.cur.Store(again)
				c.api.set(again.Handler())
			}
			return errors.Join(err, aerr)
		}
		c.cur.Store(ns)
		c.api.set(ns.Handler())
		c.e.out.event("", "event store reloaded")
		return nil
	}}, nil
}

// routes serves the event store's platform API under /v1/eventstore/.
func (c *eventStoreComponent) routes() []console.Route {
	return []console.Route{{Pattern: "/v1/eventstore/", Handler: &c.api}}
}

// status is the event store's part of nubo status; nil without one.
func (c *eventStoreComponent) status(ctx context.Context) *apitype.EventStoreStatus {
	if c == nil {
		return nil
	}
	st, err := c.cur.Load().Status(ctx)
	if err != nil {
		return nil
	}
	return &st
}
