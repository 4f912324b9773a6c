package eventstore

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Handlers reaches the handlers of projections and snapshots.
type Handlers interface {
	// DeliverToFunction invokes function name with a batch of CloudEvents.
	DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error
	// ServiceURL is the base URL service name is reached at.
	ServiceURL(name string) (string, error)
}

type projections struct{}

func newProjections(*Store, map[string]*spec.Projection) (*projections, error) {
	return &projections{}, nil
}
func (p *projections) start(context.Context) error { return nil }
func (p *projections) stop(context.Context) error  { return nil }

type snapshotter struct{}

func newSnapshotter(*Store, map[string]*spec.Snapshot) (*snapshotter, error) {
	return &snapshotter{}, nil
}
func (p *snapshotter) start(context.Context) error { return nil }
func (p *snapshotter) stop(context.Context)        {}

type projectionCollector struct{}

func (c *projectionCollector) Describe(chan<- *prometheus.Desc) {}
func (c *projectionCollector) Collect(chan<- prometheus.Metric) {}

func (s *Store) Projections(context.Context) []apitype.Projection { return nil }
func (s *Store) Rebuild(context.Context, string) error            { return nil }
func (s *Store) LatestSnapshot(context.Context, string) (apitype.Snapshot, error) {
	return apitype.Snapshot{}, ErrNotFound
}
