package events_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestExternalNATS runs queues, fifo, a topic, a rule, dead letters and a
// redrive against a nats-server from the system's package (Debian's is
// 2.9), as local.broker.url does.
func TestExternalNATS(t *testing.T) {
	t.Parallel()
	ext := brokertest.StartExternal(t)
	s := newSink(t, nil)
	app := parseSpec(t, `
name: ext
queues:
  work:
    visibility: 1s
    deadLetter: {queue: dead, maxReceive: 1}
  dead: {}
  ordered: {type: fifo}
topics:
  news:
    subscriptions:
      - endpoint: {{sink}}/news
        filter: {sql: "subject = 'keep'"}
rules:
  all:
    target: {{sink}}/bus
`, map[string]string{"sink": s.url})
	e := newEnv(t, app, envOpt{natsURL: ext.URL})
	t.Logf("against nats-server %s at %s", ext.Version, ext.URL)

	id := e.publish("/v1/queues/work", map[string]any{"type": "Job"})
	got := e.receive("work", 1, "2s")
	if len(got) != 1 || got[0].Event.ID() != id {
		t.Fatalf("receive = %+v, want %s", got, id)
	}
	e.nack("work", got[0].ID, "no")
	var dls []events.DeadLetter
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if dls = e.deadLetters("work"); len(dls) != 1 {
			return fmt.Errorf("%d dead letters", len(dls))
		}
		return nil
	})
	if dls[0].LastError != "no" || dls[0].Attempts != 1 {
		t.Errorf("dead letter = %+v", dls[0])
	}
	code, raw := call(t, "POST", e.api+"/v1/deadletters/work/redrive", nil, []byte(`{"all": true}`), nil)
	if code != 200 {
		t.Fatalf("redrive = %d %s", code, raw)
	}
	if again := e.receive("work", 1, "2s"); len(again) != 1 || again[0].Event.ID() != id {
		t.Fatalf("after redrive: %+v", again)
	} else {
		e.ack("work", again[0].ID)
	}

	for i := range 3 {
		e.publish("/v1/queues/ordered", map[string]any{"type": "Step", "subject": "one", "id": fmt.Sprintf("s%d", i)})
	}
	var order []string
	for range 3 {
		ds := e.receive("ordered", 10, "2s")
		if len(ds) != 1 {
			t.Fatalf("fifo receive = %d events, want 1 (one in flight per subject)", len(ds))
		}
		order = append(order, ds[0].Event.ID())
		e.ack("ordered", ds[0].ID)
	}
	if !slices.Equal(order, []string{"s0", "s1", "s2"}) {
		t.Errorf("fifo order = %v", order)
	}

	keep := e.publish("/v1/topics/news", map[string]any{"type": "N", "subject": "keep"})
	e.publish("/v1/topics/news", map[string]any{"type": "N", "subject": "drop"})
	bus := e.publish("/v1/events", map[string]any{"type": "B"})
	if got := ids(s.waitFor("/news", 1)); !slices.Equal(got, []string{keep}) {
		t.Errorf("/news got %v", got)
	}
	if got := ids(s.waitFor("/bus", 1)); !slices.Equal(got, []string{bus}) {
		t.Errorf("/bus got %v", got)
	}
}
