package eventstore_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	store "github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/sdk/eventstore"
)

// startStore serves a real event store on a loopback port.
func startStore(t *testing.T) *eventstore.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := brokertest.StartEmbedded(t)
	s, err := store.New(store.Config{App: &spec.App{Name: "shop", EventStore: &spec.EventStore{}}, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := eventstore.NewFor(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient(t *testing.T) {
	t.Parallel()
	c := startStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, _ := eventstore.NewEvent("UserCreated", map[string]string{"name": "Ann"})
	if _, err := c.Append(ctx, "user-1", eventstore.NoStream, created); err != nil {
		t.Fatal(err)
	}
	// The same event again: stored once.
	res, err := c.Append(ctx, "user-1", eventstore.NoStream, created)
	if err != nil || !res.Duplicate {
		t.Fatalf("retried append: %+v, %v", res, err)
	}
	renamed, _ := eventstore.NewEvent("UserRenamed", map[string]string{"name": "Bo"})
	_, err = c.Append(ctx, "user-1", eventstore.Version(3), renamed)
	var wv *eventstore.WrongVersionError
	if !errors.As(err, &wv) || wv.Current != 0 || wv.Stream != "user-1" {
		t.Fatalf("append expecting 3: %v, want a wrong version at 0", err)
	}
	if _, err := c.Append(ctx, "user-1", eventstore.Version(0), renamed); err != nil {
		t.Fatal(err)
	}
	snap, evs, version, err := c.Load(ctx, "user-1")
	if err != nil || snap != nil || len(evs) != 2 || version != 1 {
		t.Fatalf("load: %v %v %d %v", snap, evs, version, err)
	}
	back, err := c.ReadBackward(ctx, "user-1", 1)
	if err != nil || len(back) != 1 || back[0].Type != "UserRenamed" {
		t.Fatalf("read backward: %+v, %v", back, err)
	}
	all, next, err := c.ReadAll(ctx, 1, "user-*", []string{"UserRenamed"}, 10)
	if err != nil || len(all) != 1 || next != -1 {
		t.Fatalf("read all: %+v %d %v", all, next, err)
	}

	// Subscribe: the two stored, then one appended while following.
	n := 0
	for ev, err := range c.Subscribe(ctx, 1, "user-*") {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 2 {
			other, _ := eventstore.NewEvent("UserCreated", nil)
			if _, err := c.Append(ctx, "user-2", eventstore.Any, other); err != nil {
				t.Fatal(err)
			}
		}
		if n == 3 {
			if ev.Stream != "user-2" || ev.Position != 3 {
				t.Fatalf("live event: %+v", ev)
			}
			break
		}
	}
}
