package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/spec"
)

// brokerComponent is the embedded NATS JetStream server (or the connection
// to local.broker.url). It takes no reloads: queues, topics and their
// events live in it, so a changed local.broker needs a restart of nubo up.
type brokerComponent struct {
	b *broker.Broker
	// reservedFor is the app whose event store subjects the embedded
	// server refuses to every client but the engine ("": none, as with
	// an external server).
	reservedFor string
}

func newBrokerComponent(app *spec.App, log *slog.Logger, reg prometheus.Registerer) (*brokerComponent, error) {
	cfg := broker.Config{StateDir: app.StatePath(), Logger: log, Metrics: reg}
	reservedFor := ""
	if app.Local.Broker.Embedded != nil && !*app.Local.Broker.Embedded {
		cfg.URL = app.Local.Broker.URL
	} else {
		// Whether or not the spec has an eventStore yet: a reload may
		// add one, and nothing else publishes there.
		cfg.Reserved, reservedFor = eventstore.ReservedSubjects(app.Name), app.Name
	}
	b, err := broker.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &brokerComponent{b: b, reservedFor: reservedFor}, nil
}

// soleWriter reports whether the event store of app is the only writer to
// its subjects: the embedded server reserves them to the engine.
func (c *brokerComponent) soleWriter(app string) bool {
	return c.reservedFor != "" && c.reservedFor == app
}

func (c *brokerComponent) Name() string                    { return "broker" }
func (c *brokerComponent) Start(ctx context.Context) error { return c.b.Start(ctx) }
func (c *brokerComponent) Stop(ctx context.Context) error  { return c.b.Stop(ctx) }

// clientURL is the URL processes connect to; empty before Start.
func (c *brokerComponent) clientURL() string { return c.b.ClientURL() }

// health is the broker's state for the status.
func (c *brokerComponent) health() *apitype.BrokerHealth {
	h := c.b.Health()
	return &apitype.BrokerHealth{State: h.State, Reason: h.Reason, Since: h.Since, Recoveries: h.Recoveries}
}
