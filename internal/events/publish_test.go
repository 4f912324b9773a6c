package events_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/events"
)

const publishSpec = `
name: shop
events:
  UserCreated:
    source: user-service
    schema:
      type: object
      required: [id, email]
      properties:
        id: {type: string}
        email: {type: string, format: email}
queues:
  jobs: {}
topics:
  news: {}
`

func TestPublishOverTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, publishSpec, nil), envOpt{})
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	batch := map[string]string{"Content-Type": "application/cloudevents-batch+json"}
	for _, tc := range []struct {
		name    string
		path    string
		header  map[string]string
		body    string
		code    int
		want    string // in the error, or in the stored event's id
		stored  int    // events added to queue jobs
		checkEv func(t *testing.T, ev *cloudevents.Event)
	}{
		{
			name: "structured, id time specversion source filled", path: "/v1/queues/jobs", header: structured,
			body: `{"type": "UserCreated", "data": {"id": "u1", "email": "a@example.com"}}`, code: 202, stored: 1,
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if ev.ID() == "" || ev.Time().IsZero() || ev.SpecVersion() != "1.0" {
					t.Errorf("id %q, time %v, specversion %q: want them filled", ev.ID(), ev.Time(), ev.SpecVersion())
				}
				if ev.Source() != "user-service" {
					t.Errorf("source = %q, want the type's declared source", ev.Source())
				}
				if ev.DataContentType() != "application/json" {
					t.Errorf("datacontenttype = %q, want application/json", ev.DataContentType())
				}
			},
		},
		{
			name: "structured, given attributes kept", path: "/v1/queues/jobs", header: structured,
			body: `{"specversion": "1.0", "id": "given-1", "source": "/test", "type": "Other", "subject": "s1", "time": "2026-01-02T03:04:05Z", "myext": "v", "data": "plain"}`,
			code: 202, stored: 1, want: "given-1",
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if ev.Source() != "/test" || ev.Subject() != "s1" || !ev.Time().Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Errorf("event = %v, want the attributes as sent", ev)
				}
				if ev.Extensions()["myext"] != "v" {
					t.Errorf("extensions = %v, want myext=v", ev.Extensions())
				}
			},
		},
		{
			name: "binary mode", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "text/plain", "ce-type": "Note", "ce-source": "/cli", "ce-id": "bin-1", "ce-subject": "x"},
			body:   "hello", code: 202, stored: 1, want: "bin-1",
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if string(ev.Data()) != "hello" || ev.DataContentType() != "text/plain" || ev.Subject() != "x" {
					t.Errorf("event = %v, want data hello, text/plain, subject x", ev)
				}
			},
		},
		{
			name: "binary mode, nothing but a type", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "application/json", "ce-type": "Note"}, body: `{"a": 1}`, code: 202, stored: 1,
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if ev.ID() == "" || ev.Source() != "nubo" || ev.Time().IsZero() {
					t.Errorf("event = %v, want id, source nubo and time filled", ev)
				}
			},
		},
		{
			name: "batch", path: "/v1/queues/jobs", header: batch,
			body: `[{"type": "Note", "id": "b1"}, {"type": "Note", "id": "b2"}]`, code: 202, stored: 2,
		},
		{
			name: "schema refused", path: "/v1/queues/jobs", header: structured,
			body: `{"type": "UserCreated", "data": {"id": "u1", "email": "not-an-email"}}`, code: 400,
			want: `data does not match the schema of UserCreated: at /email: 'not-an-email' is not valid email`,
		},
		{
			name: "schema refused: required", path: "/v1/queues/jobs", header: structured,
			body: `{"type": "UserCreated", "data": {"email": "a@example.com"}}`, code: 400,
			want: `at /: missing property 'id'`,
		},
		{
			name: "schema refused in binary mode too", path: "/v1/events",
			header: map[string]string{"Content-Type": "application/json", "ce-type": "UserCreated"}, body: `{"id": 5, "email": "a@example.com"}`, code: 400,
			want: `at /id: got number, want string`,
		},
		{
			name: "schema with data that is not JSON", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "text/plain", "ce-type": "UserCreated"}, body: `hi`, code: 400,
			want: `has a JSON Schema, so its data must be JSON, not text/plain`,
		},
		{
			name: "batch refused whole", path: "/v1/queues/jobs", header: batch,
			body: `[{"type": "Note"}, {"type": "UserCreated", "data": {}}]`, code: 400,
			want: `event 1 of the batch type "UserCreated"`,
		},
		{
			name: "not a cloud event", path: "/v1/queues/jobs", header: map[string]string{"Content-Type": "application/json"},
			body: `{"a": 1}`, code: 400, want: "no CloudEvent: send one in structured mode",
		},
		{
			name: "no type", path: "/v1/queues/jobs", header: structured, body: `{"data": 1}`, code: 400, want: "type",
		},
		{
			name: "unknown queue", path: "/v1/queues/nope", header: structured, body: `{"type": "Note"}`, code: 404,
			want: `no queue "nope" (queues: jobs)`,
		},
		{
			name: "unknown topic", path: "/v1/topics/nope", header: structured, body: `{"type": "Note"}`, code: 404,
			want: `no topic "nope" (topics: news)`,
		},
		{name: "topic", path: "/v1/topics/news", header: structured, body: `{"type": "Note"}`, code: 202},
		{name: "bus", path: "/v1/events", header: structured, body: `{"type": "UserCreated", "data": {"id": "1", "email": "a@b.io"}}`, code: 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out events.PublishResponse
			code, raw := call(t, "POST", e.api+tc.path, tc.header, []byte(tc.body), &out)
			raw = errorOf(raw)
			if code != tc.code {
				t.Fatalf("POST %s = %d %s, want %d", tc.path, code, raw, tc.code)
			}
			if code >= 300 {
				if !strings.Contains(raw, tc.want) {
					t.Errorf("error = %s, want it to contain %q", raw, tc.want)
				}
				return
			}
			if tc.want != "" && out.Events[0].ID != tc.want {
				t.Errorf("id = %q, want %q", out.Events[0].ID, tc.want)
			}
			got := e.receive("jobs", 10, "0s")
			if len(got) != tc.stored {
				t.Fatalf("queue has %d events, want %d", len(got), tc.stored)
			}
			for i, d := range got {
				if d.Event.ID() != out.Events[i].ID {
					t.Errorf("stored event %d has id %q, want %q", i, d.Event.ID(), out.Events[i].ID)
				}
				e.ack("jobs", d.ID)
			}
			if tc.checkEv != nil {
				tc.checkEv(t, got[0].Event)
			}
		})
	}
}

func TestPublishDeduplicatesBySourceAndID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, publishSpec, nil), envOpt{})
	ev := cloudevents.New()
	ev.SetType("Note")
	ev.SetSource("/x")
	ev.SetID("same")
	ctx := context.Background()
	first, err := e.d.Publish(ctx, events.Destination{Kind: events.ToQueue, Name: "jobs"}, &ev)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.d.Publish(ctx, events.Destination{Kind: events.ToQueue, Name: "jobs"}, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if first[0].Duplicate || !again[0].Duplicate {
		t.Errorf("duplicate = %v then %v, want false then true", first[0].Duplicate, again[0].Duplicate)
	}
	if got := e.receive("jobs", 10, "0s"); len(got) != 1 {
		t.Errorf("queue has %d events, want 1", len(got))
	}
}

func TestPublishGoAPIErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, publishSpec, nil), envOpt{})
	ev := cloudevents.New()
	ev.SetType("UserCreated")
	_ = ev.SetData("application/json", map[string]any{"id": "1"})
	_, err := e.d.Publish(context.Background(), events.Destination{Kind: events.ToTopic, Name: "news"}, &ev)
	var invalid *events.InvalidEventError
	if !errors.As(err, &invalid) || !strings.Contains(invalid.Reason, "missing property 'email'") {
		t.Errorf("Publish = %v, want an InvalidEventError about email", err)
	}
	big := cloudevents.New()
	big.SetType("Big")
	big.DataEncoded = make([]byte, 9<<20)
	_, err = e.d.Publish(context.Background(), events.Destination{Kind: events.ToBus}, &big)
	if !errors.Is(err, events.ErrTooLarge) {
		t.Errorf("Publish of 9 MiB = %v, want ErrTooLarge", err)
	}
	code, raw := call(t, "POST", e.api+"/v1/nothing", nil, nil, nil)
	if code != http.StatusNotFound || !strings.Contains(raw, "docs/platform-api.md") {
		t.Errorf("unknown route = %d %s, want 404 naming the docs", code, raw)
	}
}
