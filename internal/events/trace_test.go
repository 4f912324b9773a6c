package events_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/tracing"
	"github.com/nubo-dev/nubo/internal/tracing/tracingtest"
)

// TestEventSpans publishes one event with a traceparent to the bus, where
// one rule delivers it to a target that takes it, one to a target that
// always fails, and one does not match it; and one into a queue that is
// then received. Every span is parented by the one before: the publish
// by the request, each rule's CONSUMER span by the publish, its delivery
// by it (and the target gets the delivery's context as traceparent and
// ce-traceparent), and, after the failing rule's last attempt, a
// dead-letter error span by that attempt's span; the receive by the
// queue's publish, with the received event carrying the receive's
// context. The rule that did not match records nothing.
func TestEventSpans(t *testing.T) {
	t.Parallel()
	s := newSink(t, func(r sinkRequest, _ int) int {
		if r.path == "/bad" {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	rec := &tracingtest.Recorder{}
	e := newEnv(t, parseSpec(t, `
name: traced
rules:
  good: {filter: {exact: {type: order.placed}}, target: "{{sink}}/good"}
  broken: {filter: {exact: {type: order.placed}}, target: "{{sink}}/bad"}
  other: {filter: {exact: {type: order.cancelled}}, target: "{{sink}}/other"}
queues:
  jobs: {}
`, map[string]string{"sink": s.url}), envOpt{config: func(c *events.Config) { c.Tracer = rec }})

	const caller = "00f067aa0ba902b7"
	body := `{"specversion":"1.0","id":"o-1","source":"shop","type":"order.placed"}`
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + caller + "-01"
	if code, raw := call(t, "POST", e.api+"/v1/events", map[string]string{"Content-Type": "application/cloudevents+json", "Traceparent": tp},
		[]byte(body), nil); code != http.StatusAccepted {
		t.Fatalf("publish: %d %s", code, raw)
	}
	var dead []tracing.Span
	nubotest.WaitFor(t, 20*time.Second, func() error {
		if dead = rec.Named("dead-letter rule broken"); len(dead) == 0 {
			return fmt.Errorf("no dead-letter span yet")
		}
		return nil
	})
	pub := rec.Named("publish bus")
	if len(pub) != 1 || pub[0].Parent.String() != caller || pub[0].Kind != tracing.KindProducer {
		t.Fatalf("publish spans %+v", pub)
	}
	traceID := pub[0].TraceID

	good := rec.Named("process rule good")
	if len(good) != 1 || good[0].TraceID != traceID || good[0].Parent != pub[0].SpanID || good[0].Kind != tracing.KindConsumer ||
		tracingtest.Attr(good[0], "nubo.events.rule") != "good" || tracingtest.Attr(good[0], "nubo.events.matched") != "true" ||
		tracingtest.Attr(good[0], "messaging.system") != "nats" || tracingtest.Attr(good[0], "messaging.operation.type") != "process" ||
		tracingtest.Attr(good[0], "cloudevents.event_id") != "o-1" || good[0].Status != tracing.StatusUnset {
		t.Fatalf("rule good spans %+v", good)
	}
	deliver := rec.Named("deliver " + s.url + "/good")
	if len(deliver) != 1 || deliver[0].Parent != good[0].SpanID || deliver[0].Kind != tracing.KindClient || deliver[0].Status != tracing.StatusUnset {
		t.Fatalf("delivery spans %+v", deliver)
	}
	reqs := s.waitFor("/good", 1)
	want := tracecontext.Format(traceID, deliver[0].SpanID, 1)
	if reqs[0].header.Get("Traceparent") != want || reqs[0].header.Get("Ce-Traceparent") != want {
		t.Errorf("target got traceparent %q, ce-traceparent %q, want %q", reqs[0].header.Get("Traceparent"), reqs[0].header.Get("Ce-Traceparent"), want)
	}

	broken := rec.Named("process rule broken")
	if len(broken) != 3 {
		t.Fatalf("%d spans of the broken rule, want one per attempt (3)", len(broken))
	}
	for i, b := range broken {
		if b.Parent != pub[0].SpanID || b.Status != tracing.StatusError || tracingtest.Attr(b, "nubo.events.attempt") != fmt.Sprint(i+1) {
			t.Errorf("broken rule attempt %d: %+v", i+1, b)
		}
	}
	if len(broken[0].Events) != 1 || broken[0].Events[0].Name != "retry scheduled" {
		t.Errorf("first attempt's events %+v", broken[0].Events)
	}
	if len(dead) != 1 || dead[0].Parent != broken[2].SpanID || dead[0].Status != tracing.StatusError ||
		!strings.Contains(dead[0].StatusMessage, "500") || tracingtest.Attr(dead[0], "nubo.events.attempts") != "3" || dead[0].Kind != tracing.KindProducer {
		t.Errorf("dead-letter span %+v, last attempt %s", dead, broken[2].SpanID)
	}
	if n := len(rec.Named("process rule other")); n != 0 {
		t.Errorf("the rule that did not match has %d spans", n)
	}

	// A queue: the receive is a CONSUMER span under the publish, and
	// the received event carries its context.
	if code, raw := call(t, "POST", e.api+"/v1/queues/jobs", map[string]string{"Content-Type": "application/cloudevents+json", "Traceparent": tp},
		[]byte(`{"specversion":"1.0","id":"j-1","source":"shop","type":"job"}`), nil); code != http.StatusAccepted {
		t.Fatalf("publish to queue: %d %s", code, raw)
	}
	ds := e.receive("jobs", 1, "5s")
	if len(ds) != 1 {
		t.Fatalf("received %d events", len(ds))
	}
	qpub, recv := rec.Named("publish queue jobs"), rec.Named("receive jobs")
	if len(qpub) != 1 || len(recv) != 1 || recv[0].Parent != qpub[0].SpanID || recv[0].Kind != tracing.KindConsumer ||
		tracingtest.Attr(recv[0], "messaging.operation.type") != "receive" || tracingtest.Attr(recv[0], "messaging.destination.name") != "jobs" {
		t.Fatalf("queue publish %+v, receive %+v", qpub, recv)
	}
	if got := ds[0].Event.Extensions()["traceparent"]; got != tracecontext.Format(traceID, recv[0].SpanID, 1) {
		t.Errorf("received event's traceparent %v, want the receive span's", got)
	}
}
