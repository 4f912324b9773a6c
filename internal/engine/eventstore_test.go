package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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
