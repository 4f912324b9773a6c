package events

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/spec"
)

// The fuzz targets of the event entry: what a client may send to
// POST /v1/events (structured, batch, binary mode) and what a spec's
// filters run on. Their seeds run in every `go test`; `make fuzz` runs
// them for a bounded time.

// FuzzReadEvents decodes a request in any of the three modes. Whatever
// the bytes, it answers an error or events; an event that Publish would
// accept survives the round trip through the stored form (encodeEvent,
// decodeEvent) with every attribute and its data: what was acknowledged
// is what is delivered.
func FuzzReadEvents(f *testing.F) {
	f.Add("application/cloudevents+json", "", `{"type":"OrderCreated","data":{"id":1}}`)
	f.Add("application/cloudevents+json", "", `{"specversion":"1.0","id":"a","source":"/x","type":"T","subject":null,"tenant":"eu","data_base64":"aGk="}`)
	f.Add("application/cloudevents-batch+json", "", `[{"type":"A"},{"type":"B","datacontenttype":"text/plain","data":"x"}]`)
	f.Add("application/cloudevents-batch+json", "", `[]`)
	f.Add("application/json", "ce-type: OrderCreated\nce-subject: eu/1\nce-tenant: %22x%22", `{"id":1}`)
	f.Add("text/plain", "ce-type: A\nce-time: 2026-01-02T03:04:05.123Z\nce-id: 1", "hello")
	f.Add("application/cloudevents+json", "", `{"type":"T","time":"not a time"}`)
	f.Add("", "ce-type: %ZZ", "")
	f.Fuzz(func(t *testing.T, contentType, headers, body string) {
		d := &Dispatcher{app: &spec.App{}}
		r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
		for line := range strings.SplitSeq(headers, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && validHeaderName(k) {
				r.Header.Add(k, strings.TrimSpace(v))
			}
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		evs, err := d.readEvents(r)
		if err != nil {
			if evs != nil {
				t.Fatalf("readEvents: events and an error (%v)", err)
			}
			return
		}
		for i, ev := range evs {
			if ev == nil {
				t.Fatalf("event %d is nil", i)
			}
			if ev.Validate() != nil {
				continue // Publish refuses it with a 400 naming the attribute
			}
			back, err := decodeEvent(encodeEvent("s", ev).Header, ev.Data())
			if err != nil {
				t.Fatalf("event %d: accepted, but its stored form does not decode: %v\nevent: %s", i, err, ev)
			}
			sameEvent(t, ev, back)
		}
	})
}

// validHeaderName keeps the fuzzer's header names to what net/http
// would have parsed off the wire.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func sameEvent(t *testing.T, want, got *event.Event) {
	t.Helper()
	type attrs struct {
		id, source, typ, subject, schema, ct, spec string
		time                                       time.Time
	}
	of := func(e *event.Event) attrs {
		return attrs{e.ID(), e.Source(), e.Type(), e.Subject(), e.DataSchema(), e.DataContentType(), e.SpecVersion(), e.Time().UTC()}
	}
	if a, b := of(want), of(got); a != b {
		t.Fatalf("the stored form changed the attributes:\n sent %+v\n back %+v", a, b)
	}
	ext := func(e *event.Event) map[string]string {
		m := map[string]string{}
		for k := range e.Extensions() {
			m[k], _ = attribute(e, k)
		}
		return m
	}
	if a, b := ext(want), ext(got); !maps.Equal(a, b) {
		t.Fatalf("the stored form changed the extensions: sent %q, back %q", a, b)
	}
	if !bytes.Equal(want.Data(), got.Data()) {
		t.Fatalf("the stored form changed the data: sent %q, back %q", want.Data(), got.Data())
	}
}

// fuzzEvent is the event the filter targets run on, its data given by
// the fuzzer (JSON or not).
func fuzzEvent(data string) *eventDoc {
	ev := event.New()
	ev.SetID("1")
	ev.SetSource("/orders")
	ev.SetType("OrderCreated")
	ev.SetSubject("eu/1")
	ev.SetExtension("tenant", "acme")
	ev.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ev.SetDataContentType(event.ApplicationJSON)
	ev.DataEncoded = []byte(data)
	return &eventDoc{ev: &ev}
}

// FuzzCESQL parses and evaluates CESQL filters: an expression is refused
// with an error naming it, or it evaluates to true or false on an event,
// never a panic reaching the dispatcher, and the same answer twice.
func FuzzCESQL(f *testing.F) {
	for _, s := range []string{
		"type = 'OrderCreated'", "EXISTS tenant", "subject LIKE 'eu/%'", "NOT (type = 'A' OR source = '/b')",
		"INT(tenant) > 3", "UPPER(type) IN ('ORDERCREATED', 'X')", "1 / 0 = 0", "((((", "type LIKE", "'a' || 'b'",
		"ABS(-2147483648) > 0", "SUBSTRING(type, -1, 2) = 'd'", "CONCAT_WS(',', type, source) = 'x'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		m, err := compileFilter(&spec.Filter{SQL: src})
		if err != nil {
			if !strings.Contains(err.Error(), "sql") {
				t.Fatalf("error %q does not name the sql filter", err)
			}
			return
		}
		doc := fuzzEvent(`{"amount":12}`)
		a, errA := m(context.Background(), doc)
		b, errB := m(context.Background(), doc)
		if a != b || errA != nil || errB != nil {
			t.Fatalf("sql %q: %v, %v then %v, %v", src, a, errA, b, errB)
		}
	})
}

// FuzzJQFilter runs jq filters and transforms on fuzzed event data, the
// jq input a publisher controls: every run ends (the jq timeout bounds
// it), and a failure is an error naming the program.
func FuzzJQFilter(f *testing.F) {
	for _, s := range [][2]string{
		{".data.amount > 10", `{"amount":12}`},
		{`.type == "OrderCreated" and .tenant == "acme"`, `null`},
		{".data | length", `"text"`},
		{".data.items[] | select(.n > 1)", `{"items":[{"n":1},{"n":2}]}`},
		{"[.data | recurse] | length > 3", `[[[[[[1]]]]]]`},
		{".data.x.y.z", `1e400`},
		{"env.HOME", `{}`},
		{"$ENV | length == 0", `{}`},
		{".data", `not json`},
		{`.data | tostring | test("a+b")`, `"aaab"`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prog, data string) {
		if len(prog) > 256 {
			return // programs come from the spec, not from clients; bound the search
		}
		m, err := compileFilter(&spec.Filter{JQ: prog})
		if err != nil {
			if !strings.Contains(err.Error(), "jq") {
				t.Fatalf("error %q does not name the jq filter", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*jqTimeout)
		defer cancel()
		if _, err := m(ctx, fuzzEvent(data)); err != nil && !strings.Contains(err.Error(), "jq") {
			t.Fatalf("error %q does not name the jq filter", err)
		}
		tr, err := compileTransform(prog)
		if err != nil {
			t.Fatalf("%q compiled as a filter but not as a transform: %v", prog, err)
		}
		out, err := tr.apply(ctx, fuzzEvent(data))
		if err == nil && out != nil && out.DataContentType() != event.ApplicationJSON {
			t.Fatalf("transform %q: data content type %q", prog, out.DataContentType())
		}
	})
}
