package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

func TestTopicFansOutWithFilters(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	app := parseSpec(t, `
name: fan
queues:
  copies: {}
topics:
  orders:
    subscriptions:
      - endpoint: {{sink}}/all
      - endpoint: {{sink}}/created
        filter: {exact: {type: OrderCreated}}
      - endpoint: queue:copies
      - endpoint: {{sink}}/eu
        filter: {prefix: {subject: "eu/"}}
`, map[string]string{"sink": s.url})
	e := newEnv(t, app, envOpt{})
	created := e.publish("/v1/topics/orders", map[string]any{"type": "OrderCreated", "subject": "eu/1", "data": map[string]any{"n": 1}})
	shipped := e.publish("/v1/topics/orders", map[string]any{"type": "OrderShipped", "subject": "us/2"})

	all := s.waitFor("/all", 2)
	if got := ids(all); !sameSet(got, []string{created, shipped}) {
		t.Errorf("/all got %v, want both events", got)
	}
	if got := ids(s.waitFor("/created", 1)); !slices.Equal(got, []string{created}) {
		t.Errorf("/created got %v, want only %s", got, created)
	}
	if got := ids(s.waitFor("/eu", 1)); !slices.Equal(got, []string{created}) {
		t.Errorf("/eu got %v, want only %s", got, created)
	}
	var copies []string
	nubotest.WaitFor(t, 10*time.Second, func() error {
		for _, d := range e.receive("copies", 10, "0s") {
			copies = append(copies, d.Event.ID())
			e.ack("copies", d.ID)
		}
		if len(copies) < 2 {
			return fmt.Errorf("queue copies has %v", copies)
		}
		return nil
	})
	if !sameSet(copies, []string{created, shipped}) {
		t.Errorf("queue copies got %v, want both events", copies)
	}
	// Binary mode: attributes in ce- headers, data as the body.
	for _, r := range all {
		if r.ceID() != created {
			continue
		}
		h := r.header
		if h.Get("ce-specversion") != "1.0" || h.Get("ce-type") != "OrderCreated" || h.Get("ce-subject") != "eu/1" ||
			h.Get("ce-source") != "nubo" || h.Get("ce-time") == "" || h.Get("Content-Type") != "application/json" {
			t.Errorf("headers = %v, want the CloudEvent in binary mode", h)
		}
		if strings.TrimSpace(string(r.body)) != `{"n":1}` {
			t.Errorf("body = %s, want the data", r.body)
		}
	}
	// Nothing more arrives: filters held. (Waiting for the filtered
	// counter, not for time, to know the deliveries were decided.)
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if n := counter(t, e, "nubo_events_filtered_total", "topic", "orders", "1") + counter(t, e, "nubo_events_filtered_total", "topic", "orders", "3"); n != 2 {
			return fmt.Errorf("filtered %v, want 2", n)
		}
		return nil
	})
	if n := len(s.requests()); n != 4 {
		t.Errorf("sink got %d requests, want 4", n)
	}
}

// TestRuleFilterDialects runs one rule per dialect on the same events and
// checks which events each delivers.
func TestRuleFilterDialects(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	rules := []struct {
		name, filter string
		want         []string // ids delivered
	}{
		{"exact", `{exact: {type: A, subject: x}}`, []string{"1"}},
		{"prefix", `{prefix: {source: "/shop/"}}`, []string{"1", "2"}},
		{"suffix", `{suffix: {type: ".done"}}`, []string{"3"}},
		{"extension", `{exact: {tenant: acme}}`, []string{"2"}},
		{"all", `{all: [{exact: {type: A}}, {prefix: {subject: y}}]}`, []string{"2"}},
		{"any", `{any: [{exact: {subject: x}}, {suffix: {type: done}}]}`, []string{"1", "3"}},
		{"not", `{not: {exact: {type: A}}}`, []string{"3"}},
		{"sql", `{sql: "type = 'A' AND subject LIKE 'y%'"}`, []string{"2"}},
		{"sql-exists", `{sql: "EXISTS tenant"}`, []string{"2"}},
		{"jq", `{jq: '.data.amount > 10'}`, []string{"2"}},
		{"jq-attributes", `{jq: '.type == "B.done" and .source == "/billing"'}`, []string{"3"}},
		{"combined", `{exact: {type: A}, jq: '.data.amount < 10'}`, []string{"1"}},
		{"none", `{exact: {type: Nope}}`, nil},
	}
	var yaml strings.Builder
	yaml.WriteString("name: dialects\nrules:\n")
	for _, r := range rules {
		fmt.Fprintf(&yaml, "  %s:\n    filter: %s\n    target: {{sink}}/%s\n", r.name, r.filter, r.name)
	}
	yaml.WriteString("  everything:\n    target: {{sink}}/everything\n")
	e := newEnv(t, parseSpec(t, yaml.String(), map[string]string{"sink": s.url}), envOpt{})
	e.publish("/v1/events", map[string]any{"id": "1", "type": "A", "source": "/shop/x", "subject": "x", "data": map[string]any{"amount": 5}})
	e.publish("/v1/events", map[string]any{"id": "2", "type": "A", "source": "/shop/y", "subject": "yes", "tenant": "acme", "data": map[string]any{"amount": 50}})
	e.publish("/v1/events", map[string]any{"id": "3", "type": "B.done", "source": "/billing", "subject": "z"})
	s.waitFor("/everything", 3)
	// Each rule decides each event: delivered or filtered.
	nubotest.WaitFor(t, 20*time.Second, func() error {
		for _, r := range rules {
			delivered := len(idsOn(s, "/"+r.name))
			filtered := int(counter(t, e, "nubo_events_filtered_total", "rule", r.name, ""))
			if delivered+filtered < 3 {
				return fmt.Errorf("rule %s decided %d of 3 events", r.name, delivered+filtered)
			}
		}
		return nil
	})
	for _, r := range rules {
		if got := idsOn(s, "/"+r.name); !sameSet(got, r.want) {
			t.Errorf("rule %s delivered %v, want %v", r.name, got, r.want)
		}
	}
}

func TestRuleTransform(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	e := newEnv(t, parseSpec(t, `
name: tr
rules:
  welcome:
    filter: {exact: {type: UserCreated}}
    transform: '{email: .data.email, who: (.subject + "@" + .source)}'
    target: {{sink}}/welcome
  drop-some:
    transform: 'select(.data.keep != false) | .data'
    target: {{sink}}/kept
  broken:
    transform: '.data.email | ascii_downcase'
    target: {{sink}}/broken
`, map[string]string{"sink": s.url}), envOpt{})
	id := e.publish("/v1/events", map[string]any{"type": "UserCreated", "source": "users", "subject": "u1", "data": map[string]any{"email": "A@B.io", "plan": "pro"}})
	e.publish("/v1/events", map[string]any{"type": "Other", "data": map[string]any{"keep": false}})
	r := s.waitFor("/welcome", 1)[0]
	if r.ceID() != id || r.header.Get("ce-type") != "UserCreated" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("transformed event headers = %v, want the event's attributes with application/json", r.header)
	}
	var data map[string]any
	if err := json.Unmarshal(r.body, &data); err != nil {
		t.Fatalf("data %s: %v", r.body, err)
	}
	if data["email"] != "A@B.io" || data["who"] != "u1@users" || len(data) != 2 {
		t.Errorf("data = %v, want the transform's output", data)
	}
	// A transform with no output drops the event; one that fails on an
	// event dead-letters it at once (retrying cannot help), unchanged.
	if got := s.waitFor("/kept", 1); len(got) != 1 || !strings.Contains(string(got[0].body), `"email":"A@B.io"`) {
		t.Errorf("/kept got %v, want only the first event's data", got)
	}
	var dls []events.DeadLetter
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if dls = e.deadLetters("broken"); len(dls) != 1 {
			return fmt.Errorf("%d dead letters of rule broken, want 1", len(dls))
		}
		return nil
	})
	if dl := dls[0]; dl.Origin != "rule:broken" || dl.Attempts != 1 || !strings.Contains(dl.LastError, "ascii_downcase") || dl.Event.Type() != "Other" {
		t.Errorf("dead letter = %+v, want the Other event after 1 attempt with the jq error", dl)
	}
	if n := len(idsOn(s, "/broken")); n != 1 {
		t.Errorf("/broken got %d events, want 1 (the first)", n)
	}
}

func TestRouteRetriesDeadLettersAndRedrives(t *testing.T) {
	t.Parallel()
	down := true
	var s *sink
	s = newSink(t, func(r sinkRequest, _ int) int {
		if down && r.path == "/flaky" {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e := newEnv(t, parseSpec(t, `
name: retry
topics:
  jobs:
    subscriptions:
      - endpoint: {{sink}}/ok
      - endpoint: {{sink}}/flaky
`, map[string]string{"sink": s.url}), envOpt{})
	id := e.publish("/v1/topics/jobs", map[string]any{"type": "Job"})
	var dls []events.DeadLetter
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if dls = e.deadLetters("jobs"); len(dls) != 1 {
			return fmt.Errorf("%d dead letters, want 1", len(dls))
		}
		return nil
	})
	if got := idsOn(s, "/flaky"); len(got) != 3 {
		t.Errorf("/flaky got %d attempts, want Retry.Attempts = 3", len(got))
	}
	dl := dls[0]
	if dl.Event.ID() != id || dl.Origin != "topic:jobs" || dl.Subscription != "1" || dl.Attempts != 3 ||
		!strings.Contains(dl.LastError, "503 Service Unavailable: sink refuses with 503") {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := idsOn(s, "/ok"); len(got) != 1 {
		t.Errorf("/ok got %v, want the event once", got)
	}
	// Fixed: redrive reaches the failed subscription alone.
	s.setStatus(nil)
	var out events.RedriveResponse
	code, raw := call(t, "POST", e.api+"/v1/deadletters/topic:jobs/redrive", nil, []byte(`{"all": true}`), &out)
	if code != http.StatusOK || len(out.Redriven) != 1 || out.Redriven[0].To != "topic jobs subscription 1" {
		t.Fatalf("redrive = %d %s", code, raw)
	}
	if got := s.waitFor("/flaky", 4); got[3].ceID() != id {
		t.Errorf("after redrive /flaky got %v", ids(got))
	}
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if n := counter(t, e, "nubo_events_acked_total", "topic", "jobs", "1"); n != 1 {
			return fmt.Errorf("subscription 1 acked %v", n)
		}
		return nil
	})
	if got := idsOn(s, "/ok"); len(got) != 1 {
		t.Errorf("/ok got %v after the redrive, want the event once", got)
	}
	if left := e.deadLetters("jobs"); len(left) != 0 {
		t.Errorf("dead letters after redrive: %+v", left)
	}
	// Metrics of the failed subscription.
	for name, want := range map[string]float64{
		"nubo_events_delivered_total":     4,
		"nubo_events_redelivered_total":   2,
		"nubo_events_dead_lettered_total": 1,
		"nubo_events_acked_total":         1,
	} {
		if got := counter(t, e, name, "topic", "jobs", "1"); got != want {
			t.Errorf("%s{topic jobs 1} = %v, want %v", name, got, want)
		}
	}
	if got := counter(t, e, "nubo_events_published_total", "topic", "jobs", ""); got != 1 {
		t.Errorf("published{topic jobs} = %v, want 1", got)
	}
}

func TestBatchDelivery(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	e := newEnv(t, parseSpec(t, `
name: batch
topics:
  logs:
    subscriptions:
      - endpoint: {{sink}}/batch
        batchSize: 5
`, map[string]string{"sink": s.url}), envOpt{})
	var body strings.Builder
	body.WriteString("[")
	for i := range 12 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"type": "Log", "id": "l%d", "data": {"i": %d}}`, i, i)
	}
	body.WriteString("]")
	code, raw := call(t, "POST", e.api+"/v1/topics/logs", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, []byte(body.String()), nil)
	if code != http.StatusAccepted {
		t.Fatalf("publish batch = %d %s", code, raw)
	}
	var got []string
	nubotest.WaitFor(t, 10*time.Second, func() error {
		got = got[:0]
		for _, r := range s.requests() {
			if r.header.Get("Content-Type") != "application/cloudevents-batch+json" {
				return fmt.Errorf("content type %q, want application/cloudevents-batch+json", r.header.Get("Content-Type"))
			}
			var evs []map[string]any
			if err := json.Unmarshal(r.body, &evs); err != nil {
				return fmt.Errorf("body %s: %v", r.body, err)
			}
			if len(evs) > 5 {
				return fmt.Errorf("a batch of %d events, want at most 5", len(evs))
			}
			for _, ev := range evs {
				got = append(got, ev["id"].(string))
			}
		}
		if len(got) < 12 {
			return fmt.Errorf("got %d events, want 12", len(got))
		}
		return nil
	})
	if len(s.requests()) >= 12 {
		t.Errorf("12 events came in %d requests: not batched", len(s.requests()))
	}
}

// deliverer reaches service targets at a sink; it knows no functions.
type deliverer map[string]string

func (d deliverer) ServiceURL(name string) (string, error) {
	if u, ok := d[name]; ok {
		return u, nil
	}
	return "", errors.New("not running")
}

func TestServiceTargetsAndSkippedFunctions(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	app := parseSpec(t, `
name: svc
services:
  users: {run: "true"}
functions:
  mailer: {run: "true"}
rules:
  to-service:
    target: service:users/hooks/created
  to-function:
    target: function:mailer
schedules:
  nightly:
    expression: "0 2 * * *"
    target: function:mailer
`, nil)
	e := newEnv(t, app, envOpt{config: func(c *events.Config) { c.Deliverer = deliverer{"users": s.url + "/"} }})
	id := e.publish("/v1/events", map[string]any{"type": "UserCreated"})
	if got := s.waitFor("/hooks/created", 1); got[0].ceID() != id {
		t.Errorf("service target got %v", ids(got))
	}
	want := []events.Skipped{
		{What: "rule to-function", Reason: "target function:mailer: functions are not run by nubo up yet"},
		{What: "schedule nightly", Reason: "target function:mailer: functions are not run by nubo up yet"},
	}
	if got := e.d.Skipped(); !slices.Equal(got, want) {
		t.Errorf("Skipped() = %v, want %v", got, want)
	}
}

func TestScheduleEverySecond(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	e := newEnv(t, parseSpec(t, `
name: cron
schedules:
  tick:
    expression: "@every 1s"
    target: {{sink}}/tick
    payload: {kind: tick}
  off:
    expression: "@every 1s"
    target: {{sink}}/off
    enabled: false
`, map[string]string{"sink": s.url}), envOpt{})
	// Two ticks within waitFor's bound show a schedule of seconds, not
	// minutes, without a timed assertion of its own.
	got := s.waitFor("/tick", 2)
	for _, r := range got[:2] {
		h := r.header
		if h.Get("ce-type") != "nubo.schedule" || h.Get("ce-subject") != "tick" || h.Get("ce-source") != "nubo/schedules/tick" {
			t.Errorf("firing headers = %v, want type nubo.schedule, subject tick", h)
		}
		if strings.TrimSpace(string(r.body)) != `{"kind":"tick"}` {
			t.Errorf("firing data = %s, want the payload", r.body)
		}
	}
	if got[0].ceID() == got[1].ceID() {
		t.Errorf("two firings share the id %s", got[0].ceID())
	}
	if n := len(idsOn(s, "/off")); n != 0 {
		t.Errorf("a disabled schedule fired %d times", n)
	}
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if n := counter(t, e, "nubo_events_published_total", "schedule", "tick", ""); n < 2 {
			return fmt.Errorf("published{schedule tick} = %v, want >= 2", n)
		}
		return nil
	})
}

func idsOn(s *sink, path string) []string {
	var out []string
	for _, r := range s.requests() {
		if r.path == path {
			out = append(out, r.ceID())
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// counter reads a counter of the dispatcher's registry; 0 when absent.
func counter(t testing.TB, e *env, name, kind, what, sub string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["name"] == what && labels["subscription"] == sub {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
			}
		}
	}
	return 0
}

// TestRestartWithAnotherSpec stops a dispatcher and starts one for a
// changed spec on the same broker and registry, as a reload does.
func TestRestartWithAnotherSpec(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	vars := map[string]string{"sink": s.url}
	e := newEnv(t, parseSpec(t, "name: re\nrules:\n  keep: {target: \"{{sink}}/keep\"}\n  gone: {target: \"{{sink}}/gone\"}\n", vars), envOpt{})
	e.publish("/v1/events", map[string]any{"type": "X"})
	s.waitFor("/gone", 1)
	ctx := context.Background()
	if err := e.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	cfg := testConfig(parseSpec(t, "name: re\nrules:\n  keep: {target: \"{{sink}}/keep\"}\n", vars), e.b)
	cfg.Metrics = e.reg
	d2, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(ctx); err != nil {
		t.Fatalf("start on the same registry: %v", err)
	}
	defer d2.Stop(ctx)
	ev := cloudevents.New()
	ev.SetType("Y")
	ev.SetID("after")
	if _, err := d2.Publish(ctx, events.Destination{Kind: events.ToBus}, &ev); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.waitFor("/keep", 2)); got[1] != "after" {
		t.Errorf("/keep got %v", got)
	}
	stream, err := e.b.JetStream().Stream(ctx, "nubo_re_bus")
	if err != nil {
		t.Fatal(err)
	}
	var consumers []string
	for name := range stream.ConsumerNames(ctx).Name() {
		consumers = append(consumers, name)
	}
	if !slices.Equal(consumers, []string{"rule-keep"}) {
		t.Errorf("bus consumers = %v, want only rule-keep (gone was removed)", consumers)
	}
	// The counter goes on across the restart (it is counted once the
	// target has answered, so wait for it).
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if got := counter(t, e, "nubo_events_acked_total", "rule", "keep", ""); got != 2 {
			return fmt.Errorf("acked{rule keep} = %v across the restart, want 2", got)
		}
		return nil
	})
}

// fnDeliverer also reaches functions, recording the events each got.
type fnDeliverer struct {
	deliverer
	mu  sync.Mutex
	got map[string][]string
}

func (f *fnDeliverer) DeliverToFunction(_ context.Context, name string, evs []*cloudevents.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range evs {
		f.got[name] = append(f.got[name], ev.ID())
	}
	return nil
}

func TestFunctionTargetsWithAFunctionDeliverer(t *testing.T) {
	t.Parallel()
	fd := &fnDeliverer{got: map[string][]string{}}
	e := newEnv(t, parseSpec(t, `
name: fns
functions:
  mailer: {run: "true"}
topics:
  t:
    subscriptions:
      - endpoint: function:mailer
        batchSize: 2
rules:
  r: {target: "function:mailer"}
`, nil), envOpt{config: func(c *events.Config) { c.Deliverer = fd }})
	if s := e.d.Skipped(); len(s) != 0 {
		t.Errorf("Skipped() = %v with a function deliverer", s)
	}
	a := e.publish("/v1/topics/t", map[string]any{"type": "A"})
	b := e.publish("/v1/events", map[string]any{"type": "B"})
	nubotest.WaitFor(t, 10*time.Second, func() error {
		fd.mu.Lock()
		defer fd.mu.Unlock()
		if !sameSet(fd.got["mailer"], []string{a, b}) {
			return fmt.Errorf("mailer got %v, want %s and %s", fd.got["mailer"], a, b)
		}
		return nil
	})
}
