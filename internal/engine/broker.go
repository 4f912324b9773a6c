package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/spec"
)

// brokerComponent is the embedded NATS JetStream server (or the connection
// to local.broker.url). It takes no reloads: queues, topics and their
// events live in it, so a changed local.broker needs a restart of nubo up.
type brokerComponent struct {
	b *broker.Broker
}

func newBrokerComponent(app *spec.App, log *slog.Logger, reg prometheus.Registerer) (*brokerComponent, error) {
	cfg := broker.Config{StateDir: app.StatePath(), Logger: log, Metrics: reg}
	if app.Local.Broker.Embedded != nil && !*app.Local.Broker.Embedded {
		cfg.URL = app.Local.Broker.URL
	}
	b, err := broker.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &brokerComponent{b: b}, nil
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
