package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestEventStoreProjectionToFunction runs the event store in nubo up: an
// event appended on the platform API reaches, through a projection, a
// function written with the SDK, which publishes into a queue read back
// over HTTP; nubo status shows the store and the projection.
func TestEventStoreProjectionToFunction(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: es
queues:
  out: {}
functions:
  fn:
    run: FUNCTION
    scaling: {min: 0, max: 1}
eventStore:
  projections:
    relay:
      query: {streams: "user-*", types: [publish]}
      handler: function:fn
      batchSize: 1
      checkpoint: 1
`)
	e := startEngine(t, app)
	base := "http://" + e.admin.Addr()
	resp, err := http.Post(base+"/v1/eventstore/streams/user-1", "application/json",
		strings.NewReader(`{"expectedVersion":"no_stream","events":[{"id":"evt-1","type":"publish","data":{"queue":"out"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("append: %d", resp.StatusCode)
	}
	nubotest.WaitFor(t, 60*time.Second, func() error {
		resp, err := http.Get(base + "/v1/queues/out/messages?max=1&wait=1s")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var got struct {
			Messages []struct {
				Event struct {
					Type string          `json:"type"`
					Data json.RawMessage `json:"data"`
				} `json:"event"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if len(got.Messages) == 0 {
			return fmt.Errorf("nothing in queue out yet")
		}
		if m := got.Messages[0].Event; m.Type != "fn.published" || !strings.Contains(string(m.Data), "evt-1") {
			return fmt.Errorf("unexpected event %+v", m)
		}
		return nil
	})
	nubotest.WaitFor(t, 30*time.Second, func() error {
		st := e.Status()
		es := st.EventStore
		if es == nil || es.Streams != 1 || es.Events != 1 || len(es.Projections) != 1 {
			return fmt.Errorf("status: %+v", es)
		}
		if p := es.Projections[0]; p.Name != "relay" || p.Position != 1 || p.Lag != 0 || p.State != "running" {
			return fmt.Errorf("projection: %+v", p)
		}
		return nil
	})
	// A user process reaches the broker (NUBO_NATS_URL) but cannot write
	// into the store behind its back: the store is the sole writer.
	nc, err := nats.Connect(e.broker.clientURL(), nats.Timeout(5*time.Second), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("es.eventstore.user-1", []byte("forged"), 2*time.Second); err == nil {
		t.Fatal("a user process published into the event store's stream")
	}
	if st := e.Status().EventStore; st == nil || st.Events != 1 {
		t.Fatalf("after a forged publish the store holds %+v, want 1 event", st)
	}
	for _, s := range e.Status().Skipped {
		if s.Section == "eventStore" {
			t.Fatalf("status still says nubo up skips the event store: %+v", s)
		}
	}
	var ps apitype.ProjectionsResponse
	resp, err = http.Get(base + "/v1/eventstore/projections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil || len(ps.Projections) != 1 {
		t.Fatalf("projections: %+v, %v", ps, err)
	}
}

// TestSpecEditReloadsEventStore adds a projection to a running store: the
// new one starts from the beginning, the old one resumes where it was.
func TestSpecEditReloadsEventStore(t *testing.T) {
	dir := t.TempDir()
	const base = `
name: esreload
queues:
  out: {}
functions:
  fn:
    run: FUNCTION
eventStore:
  projections:
    relay: {query: {streams: "user-*"}, handler: function:fn, batchSize: 1, checkpoint: 1}
`
	app := writeSpec(t, dir, base)
	e := startEngine(t, app, func(o *Options) { o.NoWatch = false })
	api := "http://" + e.admin.Addr()
	resp, err := http.Post(api+"/v1/eventstore/streams/user-1", "application/json",
		strings.NewReader(`{"events":[{"id":"evt-1","type":"publish","data":{"queue":"out"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	projections := func() map[string]apitype.Projection {
		out := map[string]apitype.Projection{}
		for _, p := range e.Status().EventStore.Projections {
			out[p.Name] = p
		}
		return out
	}
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if p := projections()["relay"]; p.Position != 1 || p.Checkpoint != 1 {
			return fmt.Errorf("relay: %+v", p)
		}
		return nil
	})
	writeSpec(t, dir, base+`    audit: {handler: function:fn, batchSize: 10, checkpoint: 10}
`)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		ps := projections()
		if a := ps["audit"]; a.Position != 1 || a.State != "running" {
			return fmt.Errorf("audit after the reload: %+v", ps)
		}
		if r := ps["relay"]; r.Position != 1 || r.State != "running" {
			return fmt.Errorf("relay after the reload: %+v", ps)
		}
		return nil
	})
	// Each delivery of evt-1 makes fn publish once into out, before the
	// delivery returns: the first relay and audit make two. A relay that
	// lost its checkpoint would have delivered again before reaching 1.
	var qs apitype.QueuesResponse
	resp, err = http.Get(api + "/v1/queues")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&qs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range qs.Queues {
		if q.Name == "out" {
			found = true
			if q.Messages != 2 {
				t.Errorf("queue out holds %d messages, want 2: relay delivered evt-1 again after the reload", q.Messages)
			}
		}
	}
	if !found {
		t.Errorf("no queue out in %+v", qs.Queues)
	}
	if !strings.Contains(e.out.String(), "event store reloaded") {
		t.Errorf("no reload line in the output:\n%s", e.out)
	}
}
