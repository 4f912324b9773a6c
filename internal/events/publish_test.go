package events_test

import (
	"context"
	"errors"
	"fmt"
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
		// What the CloudEvents spec forbids is refused, naming the
		// attribute, in each mode; nothing is rewritten.
		{
			name: "structured, numeric id", path: "/v1/queues/jobs", header: structured,
			body: `{"type": "Note", "id": 123}`, code: 400, want: "structured event: attribute id: must be a string, not the number 123",
		},
		{
			name: "structured, invalid dataschema", path: "/v1/queues/jobs", header: structured,
			body: `{"type": "Note", "dataschema": "not a uri"}`, code: 400, want: `structured event: attribute dataschema: "not a uri" is not an absolute URI`,
		},
		{
			name: "structured, data and data_base64", path: "/v1/queues/jobs", header: structured,
			body: `{"type": "Note", "data": "a", "data_base64": "YQ=="}`, code: 400, want: "structured event: attribute data_base64: data and data_base64 exclude each other",
		},
		{
			name: "batch, numeric id", path: "/v1/queues/jobs", header: batch,
			body: `[{"type": "Note", "id": "ok"}, {"type": "Note", "id": 7}]`, code: 400, want: "batch: event 1: attribute id: must be a string, not the number 7",
		},
		{
			name: "batch, invalid dataschema", path: "/v1/queues/jobs", header: batch,
			body: `[{"type": "Note", "dataschema": "relative/path"}]`, code: 400, want: `batch: event 0: attribute dataschema: "relative/path" is not an absolute URI`,
		},
		{
			name: "batch, data and data_base64", path: "/v1/queues/jobs", header: batch,
			body: `[{"type": "Note", "data": 1, "data_base64": "MQ=="}]`, code: 400, want: "batch: event 0: attribute data_base64",
		},
		{name: "empty batch", path: "/v1/queues/jobs", header: batch, body: `[]`, code: 202, stored: 0},
		{
			name: "binary, invalid dataschema", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "text/plain", "ce-type": "Note", "ce-dataschema": "::"}, body: "x", code: 400,
			want: `binary-mode event: attribute ce-dataschema: "::" is not an absolute URI`,
		},
		{
			name: "binary, empty id", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "text/plain", "ce-type": "Note", "ce-id": ""}, body: "x", code: 400,
			want: "binary-mode event: attribute ce-id: must not be empty",
		},
		{
			name: "binary, percent-encoding that is not UTF-8", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "text/plain", "ce-type": "Note", "ce-subject": "%C0%A0"}, body: "x", code: 400,
			want: "binary-mode event: attribute ce-subject: percent-encoded bytes are not UTF-8",
		},
		{
			name: "binary, percent-encoded values decoded", path: "/v1/queues/jobs",
			header: map[string]string{"Content-Type": "text/plain", "ce-type": "Note", "ce-id": "p%201", "ce-subject": "Euro%20%E2%82%AC%20%F0%9F%98%80", "ce-myext": "%22q%22"},
			body:   "x", code: 202, stored: 1, want: "p 1",
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if ev.Subject() != "Euro € 😀" || ev.Extensions()["myext"] != `"q"` {
					t.Errorf("subject %q, myext %v: want them percent-decoded", ev.Subject(), ev.Extensions()["myext"])
				}
			},
		},
		{
			name: "structured, the JSON format's example", path: "/v1/queues/jobs", header: structured,
			body: `{"specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext", "subject": null, "id": "C234-1234-1234",
				"time": "2018-04-05T17:31:00Z", "comexampleextension1": "value", "comexampleothervalue": 5, "unsetextension": null,
				"datacontenttype": "application/json", "data": {"appinfoA": "abc", "appinfoB": 123, "appinfoC": true}}`,
			code: 202, stored: 1, want: "C234-1234-1234",
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if ev.Subject() != "" || ev.Extensions()["comexampleextension1"] != "value" || fmt.Sprint(ev.Extensions()["comexampleothervalue"]) != "5" {
					t.Errorf("event = %v, want no subject and both extensions", ev)
				}
				if _, ok := ev.Extensions()["unsetextension"]; ok {
					t.Errorf("unsetextension is set; null means absent")
				}
			},
		},
		{
			name: "structured, the JSON format's data_base64 example", path: "/v1/queues/jobs", header: structured,
			body: `{"specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext", "id": "A234-1234-1234",
				"time": "2018-04-05T17:31:00Z", "datacontenttype": "application/vnd.apache.thrift.binary", "data_base64": "aGVsbG8="}`,
			code: 202, stored: 1, want: "A234-1234-1234",
			checkEv: func(t *testing.T, ev *cloudevents.Event) {
				if string(ev.Data()) != "hello" || ev.DataContentType() != "application/vnd.apache.thrift.binary" {
					t.Errorf("event = %v, want data hello", ev)
				}
			},
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
			if len(out.Events) != tc.stored && tc.path == "/v1/queues/jobs" {
				t.Errorf("answer lists %d events, want %d", len(out.Events), tc.stored)
			}
			if tc.want != "" && out.Events[0].ID != tc.want {
				t.Errorf("id = %q, want %q", out.Events[0].ID, tc.want)
			}
			got := e.receive("jobs", 10, "2s") // "0s" may answer before the consumer sees what was just stored
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
	if got := e.receive("jobs", 10, "2s"); len(got) != 1 {
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

// TestDeliveryPercentEncodesHeaders publishes attributes that HTTP headers
// cannot carry as they are and checks what an HTTP target receives: the
// values percent-encoded as the HTTP binding requires, which decode back
// to what was published.
func TestDeliveryPercentEncodesHeaders(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	e := newEnv(t, parseSpec(t, `
name: enc
rules:
  out:
    target: {{sink}}/out
`, map[string]string{"sink": s.url}), envOpt{})
	subject := "Euro € 😀"
	id := e.publish("/v1/events", map[string]any{"type": "Note", "subject": subject, "myext": `say "hi" 100%`})
	got := s.waitFor("/out", 1)[0]
	if got.ceID() != id {
		t.Fatalf("delivered ce-id %q, want %q", got.ceID(), id)
	}
	for _, h := range []struct{ name, want string }{
		{"ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"ce-myext", "say%20%22hi%22%20100%25"},
	} {
		if v := got.header.Get(h.name); v != h.want {
			t.Errorf("%s = %q, want %q", h.name, v, h.want)
		}
	}
}
