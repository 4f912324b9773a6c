package eventstore

import (
	"context"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

type snapshotter struct{}

func newSnapshotter(*Store, map[string]*spec.Snapshot) (*snapshotter, error) {
	return &snapshotter{}, nil
}
func (p *snapshotter) start(context.Context) error { return nil }
func (p *snapshotter) stop(context.Context)        {}

// LatestSnapshot returns the newest snapshot of stream.
func (s *Store) LatestSnapshot(context.Context, string) (apitype.Snapshot, error) {
	return apitype.Snapshot{}, ErrNotFound
}
