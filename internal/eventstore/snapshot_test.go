package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// aggregates is a service's snapshot handler: it answers the state of a
// stream as {"count": version+1} and records what it was asked.
type aggregates struct {
	mu    sync.Mutex
	asked []SnapshotRequest
}

func (a *aggregates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A binary-mode CloudEvent: the stream is its subject.
	var req SnapshotRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Header.Get("Ce-Type") != SnapshotEventType || r.Header.Get("Ce-Subject") != req.Stream {
		http.Error(w, fmt.Sprintf("not a snapshot request: %v", err), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.asked = append(a.asked, req)
	a.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"count": req.Version + 1})
}

func (a *aggregates) askedFor() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprint(a.asked)
}

func snapshotStore(t *testing.T, every int, freq time.Duration, key string) (*Store, *aggregates) {
	t.Helper()
	a := &aggregates{}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	es := &spec.EventStore{Snapshots: map[string]*spec.Snapshot{"user": {
		Streams: "user-*", Every: every, Frequency: spec.Duration{Duration: freq},
		Handler:   spec.Target{Kind: spec.TargetService, Name: "users", Path: "/snapshot", Text: "service:users/snapshot"},
		Retention: spec.Duration{Duration: time.Hour},
	}}}
	if key != "" {
		es.Encryption = spec.EventStoreEncryption{Enabled: true, Key: &spec.SecretRef{Secret: "k"}}
	}
	return newStore(t, nil, es, serviceHandlers{"users": srv.URL}, key), a
}

// TestSnapshotEveryN appends 12 events to user-1 (and some to a stream
// the pattern does not match): the handler is asked at versions 4 and 9,
// never for order-1, and the latest snapshot covers version 9.
func TestSnapshotEveryN(t *testing.T) {
	t.Parallel()
	s, a := snapshotStore(t, 5, 0, "a key that is long enough")
	ctx := context.Background()
	for i := range 12 {
		mustAppend(t, s, "order-1", apitype.ExpectAny, ev("", "Placed", `{}`))
		mustAppend(t, s, "user-1", apitype.ExpectAny, ev("", "Renamed", fmt.Sprintf(`{"i":%d}`, i)))
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		snap, err := s.LatestSnapshot(ctx, "user-1")
		if err != nil {
			return err
		}
		if snap.Version != 9 || string(snap.State) != `{"count":10}` {
			return fmt.Errorf("snapshot %+v", snap)
		}
		return nil
	})
	if got := a.askedFor(); got != "[{user-1 4} {user-1 9}]" {
		t.Fatalf("the handler was asked %s, want user-1 at 4 and 9", got)
	}
	if _, err := s.LatestSnapshot(ctx, "order-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot of order-1: %v, want none", err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var snap apitype.Snapshot
	if code := getJSON(t, srv.URL+"/v1/eventstore/streams/user-1/snapshot", &snap); code != 200 || snap.Version != 9 {
		t.Fatalf("GET snapshot: %d %+v", code, snap)
	}
	var e struct{ Error string }
	if code := getJSON(t, srv.URL+"/v1/eventstore/streams/order-1/snapshot", &e); code != 404 {
		t.Fatalf("GET snapshot of order-1: %d %+v", code, e)
	}
}

// TestSnapshotFrequency takes a snapshot of a stream with fewer events
// than every once frequency has passed.
func TestSnapshotFrequency(t *testing.T) {
	t.Parallel()
	s, _ := snapshotStore(t, 100, 50*time.Millisecond, "")
	mustAppend(t, s, "user-7", apitype.ExpectAny, ev("", "Created", `{}`))
	nubotest.WaitFor(t, 30*time.Second, func() error {
		snap, err := s.LatestSnapshot(context.Background(), "user-7")
		if err != nil {
			return err
		}
		if snap.Version != 0 {
			return fmt.Errorf("snapshot %+v", snap)
		}
		return nil
	})
}
