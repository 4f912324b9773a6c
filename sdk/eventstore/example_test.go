package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nubo-dev/nubo/sdk/eventstore"
)

// User is an event-sourced aggregate: its state is the fold of its
// stream's events (or of its snapshot and the events after it).
type User struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	version int64  // the stream's version the state covers; -1: new
}

func (u *User) apply(e eventstore.RecordedEvent) error {
	switch e.Type {
	case "UserCreated", "UserRenamed":
		var d struct{ Name string }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		u.Name = d.Name
	case "UserDeleted":
		u.Deleted = true
	}
	u.version = e.Version
	return nil
}

// loadUser loads user id from its snapshot (the state a snapshot handler
// returned) and the events after it.
func loadUser(ctx context.Context, es *eventstore.Client, id string) (*User, error) {
	snap, evs, version, err := es.Load(ctx, "user-"+id)
	if err != nil {
		return nil, err
	}
	u := &User{ID: id, version: -1}
	if snap != nil {
		if err := json.Unmarshal(snap.State, u); err != nil {
			return nil, err
		}
	}
	for _, e := range evs {
		if err := u.apply(e); err != nil {
			return nil, err
		}
	}
	u.version = version
	return u, nil
}

// rename decides on the loaded state and appends expecting the version it
// was loaded at: if another writer got there first, load again and decide
// again.
func rename(ctx context.Context, es *eventstore.Client, id, name string) error {
	for {
		u, err := loadUser(ctx, es, id)
		if err != nil {
			return err
		}
		if u.version < 0 || u.Deleted {
			return fmt.Errorf("user %s does not exist", id)
		}
		e, err := eventstore.NewEvent("UserRenamed", map[string]string{"name": name})
		if err != nil {
			return err
		}
		_, err = es.Append(ctx, "user-"+id, eventstore.Version(u.version), e)
		var wv *eventstore.WrongVersionError
		if errors.As(err, &wv) {
			continue // someone else wrote user-ID since we loaded it
		}
		return err
	}
}

// An aggregate loaded from its snapshot and events, changed with
// optimistic concurrency.
func Example_aggregate() {
	ctx := context.Background()
	es, err := eventstore.New() // $NUBO_API, set by nubo up
	if err != nil {
		fmt.Println(err)
		return
	}
	created, _ := eventstore.NewEvent("UserCreated", map[string]string{"name": "Ann"})
	if _, err := es.Append(ctx, "user-42", eventstore.NoStream, created); err != nil {
		fmt.Println(err)
		return
	}
	if err := rename(ctx, es, "42", "Bo"); err != nil {
		fmt.Println(err)
	}
}
