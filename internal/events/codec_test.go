package events

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/spec"
)

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	ev := event.New()
	ev.SetID("id-1")
	ev.SetSource("/src")
	ev.SetType("T")
	ev.SetSubject("line1\nline2 100%")
	ev.SetTime(time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC))
	ev.SetDataSchema("https://example.com/s.json")
	ev.SetExtension("tenant", "a\r\nb")
	ev.SetExtension("count", 42)
	_ = ev.SetData("application/json", map[string]int{"a": 1})
	msg := encodeEvent("subj", &ev)
	for k, vs := range msg.Header {
		if strings.ContainsAny(vs[0], "\r\n") {
			t.Errorf("header %s = %q holds a line break", k, vs[0])
		}
	}
	back, err := decodeEvent(msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != "id-1" || back.Source() != "/src" || back.Type() != "T" || back.Subject() != ev.Subject() ||
		!back.Time().Equal(ev.Time()) || back.DataSchema() != ev.DataSchema() || back.DataContentType() != "application/json" ||
		string(back.Data()) != `{"a":1}` {
		t.Errorf("round trip = %v, want %v", back, ev)
	}
	if back.Extensions()["tenant"] != "a\r\nb" || back.Extensions()["count"] != "42" {
		t.Errorf("extensions = %v", back.Extensions())
	}
}

func TestReceipts(t *testing.T) {
	t.Parallel()
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	good := "$JS.ACK.nubo_a_queue_q.nubo.3.17.20.1700000000000000000.4 nubo.a.queue.q.m"
	r, err := decodeReceipt(enc(good))
	if err != nil {
		t.Fatal(err)
	}
	if r.stream != "nubo_a_queue_q" || r.consumer != "nubo" || r.delivered != 3 || r.seq != 17 || r.stored.UnixNano() != 1700000000000000000 || r.subject != "nubo.a.queue.q.m" {
		t.Errorf("receipt = %+v", r)
	}
	v2 := "$JS.ACK.hub.ACCHASH.nubo_a_queue_q.nubo.1.5.5.1700000000000000000.0.tok nubo.a.queue.q.m"
	if r, err := decodeReceipt(enc(v2)); err != nil || r.stream != "nubo_a_queue_q" || r.seq != 5 {
		t.Errorf("v2 receipt = %+v, %v", r, err)
	}
	for _, bad := range []string{
		"!!", enc("$JS.ACK.s.c.1.2.3.4.5"), enc("foo.bar.x.y.1.2.3.4.5 s"), enc("$JS.ACK.*.c.1.2.3.4.5 s"),
		enc("$JS.ACK.s.c.x.2.3.4.5 s"), enc("$JS.ACK.s.c.1.2.3.4.5 a.>"), enc("$JS.ACK.s.c.1.2.3.4.5.6 s"),
	} {
		if _, err := decodeReceipt(bad); !errors.Is(err, ErrBadReceipt) {
			t.Errorf("decodeReceipt(%q) = %v, want ErrBadReceipt", bad, err)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	r := Retry{Attempts: 5, Backoff: time.Second, MaxBackoff: 5 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 10: 5 * time.Second} {
		if got := r.delay(attempt); got != want {
			t.Errorf("delay(%d) = %v, want %v", attempt, got, want)
		}
	}
}

func TestFilterEdges(t *testing.T) {
	t.Parallel()
	ev := event.New()
	ev.SetID("1")
	ev.SetSource("/s")
	ev.SetType("T")
	_ = ev.SetData("application/json", map[string]any{"n": 3})
	for _, tc := range []struct {
		name    string
		filter  spec.Filter
		want    bool
		wantErr string
	}{
		{"missing attribute never matches exact", spec.Filter{Exact: map[string]string{"subject": ""}}, false, ""},
		{"missing attribute never matches prefix", spec.Filter{Prefix: map[string]string{"subject": ""}}, false, ""},
		{"not of missing", spec.Filter{Not: &spec.Filter{Exact: map[string]string{"subject": "x"}}}, true, ""},
		{"sql error is false", spec.Filter{SQL: "INT(type) = 3"}, false, ""},
		{"sql on a missing attribute is false", spec.Filter{SQL: "subject = 'x'"}, false, ""},
		{"sql true", spec.Filter{SQL: "type = 'T' AND source = '/s'"}, true, ""},
		{"jq null is false", spec.Filter{JQ: ".data.missing"}, false, ""},
		{"jq empty is false", spec.Filter{JQ: "empty"}, false, ""},
		{"jq number is true", spec.Filter{JQ: ".data.n"}, true, ""},
		{"jq error", spec.Filter{JQ: `error("bad")`}, false, "bad"},
		{"jq env is empty", spec.Filter{JQ: `$ENV | length == 0`}, true, ""},
		{"jq loop is stopped", spec.Filter{JQ: `[repeat(1)] | length > 0`}, false, "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := compileFilter(&tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m(context.Background(), &eventDoc{ev: &ev})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("match = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []spec.Filter{{SQL: "type = "}, {JQ: ".a |"}, {}} {
		if _, err := compileFilter(&bad); err == nil {
			t.Errorf("compileFilter(%+v) succeeded", bad)
		}
	}
}
