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

// TestEveryTriggerInvokes runs one function per trigger kind and checks that
// each is invoked by what its trigger names: a topic, a schedule, an event on
// the bus and an HTTP route on the console.
func TestEveryTriggerInvokes(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: triggers
topics:
  news: {}
functions:
  on-topic:
    run: FUNCTION
    triggers: [{topic: news, filter: {exact: {type: echo}}}]
  on-schedule:
    run: FUNCTION
    triggers: [{schedule: "@every 1s"}]
  on-event:
    run: FUNCTION
    triggers: [{event: {source: shop, type: echo}}]
  on-http:
    run: FUNCTION
    triggers: [{http: {method: POST, path: /hello}}]
  disabled:
    run: FUNCTION
    triggers: [{event: {source: shop, type: echo}, enabled: false}]
`)
	e := startEngine(t, app)
	base := "http://" + e.admin.Addr()
	post := func(path, body string) {
		t.Helper()
		resp, err := http.Post(base+path, "application/cloudevents+json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}
	post("/v1/topics/news", `{"specversion":"1.0","id":"n1","source":"shop","type":"echo"}`)
	post("/v1/events", `{"specversion":"1.0","id":"e1","source":"shop","type":"echo"}`)
	post("/hello", `{}`)
	invocations := func(name string) uint64 {
		st, err := e.fns.cur.Load().FunctionStatus(name)
		if err != nil {
			t.Fatal(err)
		}
		return st.Invocations
	}
	nubotest.WaitFor(t, 60*time.Second, func() error {
		for _, name := range []string{"on-topic", "on-schedule", "on-event", "on-http"} {
			if invocations(name) == 0 {
				return fmt.Errorf("%s not invoked yet", name)
			}
		}
		return nil
	})
	if n := invocations("disabled"); n != 0 {
		t.Errorf("a disabled trigger invoked its function %d times", n)
	}
}

// TestQueueTriggerHonoursConcurrency: a queue trigger keeps as many
// invocations in flight as the pool allows (instances × concurrency), not
// one at a time.
func TestQueueTriggerHonoursConcurrency(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: busy
queues:
  work: {visibility: 30s}
functions:
  slow:
    run: FUNCTION
    concurrency: 4
    scaling: {min: 1, max: 2}
    triggers: [{queue: work}]
`)
	e := startEngine(t, app)
	base := "http://" + e.admin.Addr()
	for i := range 24 {
		resp, err := http.Post(base+"/v1/queues/work", "application/cloudevents+json", strings.NewReader(
			fmt.Sprintf(`{"specversion":"1.0","id":"w%d","source":"t","type":"sleep","datacontenttype":"application/json","data":{"ms":400}}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	peak := 0
	nubotest.WaitFor(t, 60*time.Second, func() error {
		st, err := e.fns.cur.Load().FunctionStatus("slow")
		if err != nil {
			return err
		}
		peak = max(peak, st.InFlight)
		if peak < 4 {
			return fmt.Errorf("at most %d invocations in flight so far", peak)
		}
		return nil
	})
}
