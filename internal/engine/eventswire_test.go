package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestQueueTriggerRunsFunction goes through the whole event path of nubo up:
// a CloudEvent published on the platform API lands in a queue, the queue
// trigger invokes the function (scaled from zero), and the function publishes
// through $NUBO_API with the SDK into another queue, read back over HTTP.
func TestQueueTriggerRunsFunction(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: ev
queues:
  jobs: {visibility: 10s}
  out: {}
functions:
  worker:
    run: FUNCTION
    scaling: {min: 0, max: 1}
    triggers:
      - queue: jobs
`)
	e := startEngine(t, app)
	base := "http://" + e.admin.Addr()
	resp, err := http.Post(base+"/v1/queues/jobs", "application/cloudevents+json",
		strings.NewReader(`{"specversion":"1.0","id":"job-1","source":"test","type":"publish","datacontenttype":"application/json","data":{"queue":"out"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %d", resp.StatusCode)
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
					Type   string          `json:"type"`
					Source string          `json:"source"`
					Data   json.RawMessage `json:"data"`
				} `json:"event"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if len(got.Messages) == 0 {
			return fmt.Errorf("nothing in queue out yet")
		}
		m := got.Messages[0].Event
		if m.Type != "fn.published" || !strings.Contains(string(m.Data), "job-1") {
			return fmt.Errorf("unexpected event %+v", m)
		}
		return nil
	})
}
