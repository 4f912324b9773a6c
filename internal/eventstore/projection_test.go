package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// serviceHandlers reaches services at real HTTP servers of the test; the
// tests use no functions.
type serviceHandlers map[string]string

func (h serviceHandlers) ServiceURL(name string) (string, error) {
	if u, ok := h[name]; ok {
		return u, nil
	}
	return "", fmt.Errorf("no service %q", name)
}

func (h serviceHandlers) DeliverToFunction(context.Context, string, []*event.Event) error {
	return errors.New("no functions in this test")
}

func (h serviceHandlers) Invoke(context.Context, string, event.Event) (functions.Result, error) {
	return functions.Result{}, errors.New("no functions in this test")
}

// readModel is a service handler that records what it is delivered and
// fails while failing is set.
type readModel struct {
	mu      sync.Mutex
	got     []uint64   // the positions taken
	batches [][]uint64 // the positions of each delivery, failed ones too
	failing bool
}

func (m *readModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A batch of structured CloudEvents; the position is an extension.
	var batch []event.Event
	if ct := r.Header.Get("Content-Type"); ct != "application/cloudevents-batch+json" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &batch)
	}
	if err != nil {
		http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
		return
	}
	// JSON data travels as JSON, which any CloudEvents reader takes, not
	// as data_base64.
	if bytes.Contains(body, []byte("data_base64")) {
		http.Error(w, "data not as JSON: "+string(body), http.StatusBadRequest)
		return
	}
	var pos []uint64
	for _, e := range batch {
		p, err := strconv.ParseUint(fmt.Sprint(e.Extensions()[cePosition]), 10, 64)
		if err != nil || e.Subject() == "" || e.Type() == "" {
			http.Error(w, "event without position, subject or type", http.StatusBadRequest)
			return
		}
		pos = append(pos, p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, pos)
	if m.failing {
		http.Error(w, "read model down on purpose", http.StatusInternalServerError)
		return
	}
	m.got = append(m.got, pos...)
}

func (m *readModel) positions() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint64(nil), m.got...)
}

func (m *readModel) setFailing(f bool) {
	m.mu.Lock()
	m.failing = f
	m.mu.Unlock()
}

func startReadModel(t *testing.T) (*readModel, serviceHandlers) {
	m := &readModel{}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, serviceHandlers{"users": srv.URL}
}

func projectionSpec(batch, checkpoint int) *spec.EventStore {
	return &spec.EventStore{Projections: map[string]*spec.Projection{
		"user-summary": {
			Query:      spec.ProjectionQuery{Streams: "user-*", Types: []string{"UserCreated", "UserRenamed"}},
			Handler:    spec.Target{Kind: spec.TargetService, Name: "users", Path: "/project", Text: "service:users/project"},
			BatchSize:  batch,
			Checkpoint: checkpoint,
		},
	}}
}

// appendMix appends n events spread over streams and types; it returns the
// positions the user-summary projection must get, in order.
func appendMix(t *testing.T, s *Store, n, offset int) []uint64 {
	t.Helper()
	var want []uint64
	for i := offset; i < offset+n; i++ {
		stream, typ := fmt.Sprintf("user-%d", i%3), "UserCreated"
		switch i % 4 {
		case 1:
			typ = "UserRenamed"
		case 2:
			typ = "UserLoggedIn" // not in the query's types
		case 3:
			stream = fmt.Sprintf("order-%d", i) // not in the query's streams
		}
		res := mustAppend(t, s, stream, apitype.ExpectAny, ev(fmt.Sprint("e", i), typ, fmt.Sprintf(`{"i":%d}`, i)))
		if i%4 < 2 {
			want = append(want, res.LastPosition)
		}
	}
	return want
}

func waitPositions(t *testing.T, m *readModel, want []uint64) {
	t.Helper()
	nubotest.WaitFor(t, 30*time.Second, func() error {
		got := m.positions()
		if len(got) < len(want) {
			return fmt.Errorf("the handler has %d of %d events", len(got), len(want))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("the handler got positions %v, want %v", got, want)
		}
		return nil
	})
}

func stopStore(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestProjectionInOrderAndResumesFromCheckpoint delivers the matching
// events in order, in batches no larger than batchSize; a stopped store
// checkpoints, and a new one resumes after the checkpoint.
func TestProjectionInOrderAndResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	m, h := startReadModel(t)
	b := startBroker(t, t.TempDir())
	s := newStore(t, b, projectionSpec(3, 5), h, "")
	want := appendMix(t, s, 40, 0)
	waitPositions(t, m, want)
	m.mu.Lock()
	for _, bt := range m.batches {
		if len(bt) > 3 {
			t.Errorf("a batch of %d events, more than batchSize 3", len(bt))
		}
	}
	m.mu.Unlock()
	nubotest.WaitFor(t, 10*time.Second, func() error {
		ps := s.Projections(context.Background())
		if len(ps) != 1 || ps[0].State != stateRunning || ps[0].Position != want[len(want)-1] || ps[0].Lag != 0 {
			return fmt.Errorf("projection: %+v", ps)
		}
		return nil
	})
	stopStore(t, s)
	cp, err := s.projections.list[0].loadCheckpoint(context.Background())
	if err != nil || cp != want[len(want)-1] {
		t.Fatalf("checkpoint after stop: %d, %v; want %d", cp, err, want[len(want)-1])
	}

	// A new store (a restarted nubo) resumes after the checkpoint: the
	// handler gets the new events only.
	s2 := newStore(t, b, projectionSpec(3, 5), h, "")
	more := appendMix(t, s2, 12, 40)
	waitPositions(t, m, append(want, more...))
}

// TestFailingHandlerHoldsProjection makes the handler fail: the projection
// shows failing with the error, retries the same first batch, delivers
// nothing after it, and once the handler works it goes on without a gap.
func TestFailingHandlerHoldsProjection(t *testing.T) {
	t.Parallel()
	m, h := startReadModel(t)
	m.setFailing(true)
	s := newStore(t, nil, projectionSpec(2, 1), h, "")
	want := appendMix(t, s, 12, 0)
	nubotest.WaitFor(t, 30*time.Second, func() error {
		ps := s.Projections(context.Background())
		if len(ps) != 1 || ps[0].State != stateFailing || ps[0].Failures < 3 || !strings.Contains(ps[0].LastError, "500") {
			return fmt.Errorf("projection: %+v", ps)
		}
		return nil
	})
	if ps := s.Projections(context.Background()); ps[0].Position != 0 {
		t.Fatalf("a failing projection moved to %d", ps[0].Position)
	}
	m.mu.Lock()
	for _, bt := range m.batches {
		if bt[0] != want[0] {
			t.Errorf("while failing the handler was sent a batch starting at %d, want every retry to start at %d", bt[0], want[0])
		}
	}
	m.mu.Unlock()
	m.setFailing(false)
	waitPositions(t, m, want)

	// Rebuild: everything again from the start.
	if err := s.Rebuild(context.Background(), "user-summary"); err != nil {
		t.Fatal(err)
	}
	waitPositions(t, m, append(append([]uint64{}, want...), want...))
	if err := s.Rebuild(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rebuild of an unknown projection: %v", err)
	}
}
