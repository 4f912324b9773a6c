package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nubo-dev/nubo/sdk/eventstore"
)

// The event types of a user-ID stream.
const (
	userCreated = "com.shop.user.created"
	userRenamed = "com.shop.user.renamed"
)

// account is a user's aggregate: the profile, folded from its user-ID
// stream in nubo's event store (the latest snapshot, then the events after
// it). The stream is the record of every change; the store (shop-db) keeps
// a copy of the current profile for GET and for email uniqueness, with the
// order statistics, which come from the customer-stats projection.
type account struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
}

// apply folds one event into the account. Types it does not know are a
// later version's events: they are skipped, not refused.
func (a *account) apply(e eventstore.RecordedEvent) error {
	switch e.Type {
	case userCreated:
		var d struct{ ID, Email, Name string }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("%s %s at version %d: %w", e.Stream, e.Type, e.Version, err)
		}
		*a = account{ID: d.ID, Email: d.Email, Name: d.Name, Created: e.Time.UTC()}
	case userRenamed:
		var d struct{ Name string }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("%s %s at version %d: %w", e.Stream, e.Type, e.Version, err)
		}
		a.Name = d.Name
	}
	return nil
}

// streamOf is the event store stream of a user's history.
func streamOf(id string) string { return "user-" + id }

// loadAccount folds user id's stream. version is the stream's version, to
// append the next event with; -1 (and ok false) when it has no event.
func loadAccount(ctx context.Context, es *eventstore.Client, id string) (a account, version int64, ok bool, err error) {
	snap, evs, version, err := es.Load(ctx, streamOf(id))
	if err != nil {
		return account{}, -1, false, err
	}
	if snap != nil {
		if err := json.Unmarshal(snap.State, &a); err != nil {
			return account{}, -1, false, fmt.Errorf("snapshot of %s at version %d: %w", streamOf(id), snap.Version, err)
		}
	}
	for _, e := range evs {
		if err := a.apply(e); err != nil {
			return account{}, -1, false, err
		}
	}
	return a, version, version >= 0, nil
}
