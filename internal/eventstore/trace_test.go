package eventstore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/tracing"
	"github.com/nubo-dev/nubo/internal/tracing/tracingtest"
)

// TestAppendAndProjectionSpans appends through the API with a
// traceparent: the append is a PRODUCER span under the caller's, the
// projection's delivery of the event a CONSUMER span under the append (the
// stored event kept its context), and the handler gets the delivery's
// context as traceparent, in the request and in each CloudEvent. A
// refused append (wrong expected version) is an error span.
func TestAppendAndProjectionSpans(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string // the handler's traceparent headers
	handler := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(handler.Close)
	rec := &tracingtest.Recorder{}
	b := startBroker(t, t.TempDir())
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: projectionSpec(1, 1)}, Broker: b,
		Handlers: serviceHandlers{"users": handler.URL}, Logger: testLogger(), Tracer: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	api := httptest.NewServer(s.Handler())
	t.Cleanup(api.Close)

	const caller = "00f067aa0ba902b7"
	appendReq := func(expected string) int {
		req, _ := http.NewRequest(http.MethodPost, api.URL+"/v1/eventstore/streams/user-1",
			strings.NewReader(`{"expectedVersion":"`+expected+`","events":[{"type":"UserCreated","data":{"name":"ada"}}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-"+caller+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := appendReq("no_stream"); code != http.StatusCreated {
		t.Fatalf("append: %d", code)
	}
	var deliveries []tracing.Span
	nubotest.WaitFor(t, 20*time.Second, func() error {
		if deliveries = rec.Named("deliver projection user-summary"); len(deliveries) == 0 {
			return fmt.Errorf("no delivery span yet")
		}
		return nil
	})
	appends := rec.Named("append")
	if len(appends) != 1 || appends[0].Parent.String() != caller || appends[0].Kind != tracing.KindProducer ||
		appends[0].Service != "eventstore" || appends[0].Status != tracing.StatusUnset {
		t.Fatalf("append spans %+v", appends)
	}
	d := deliveries[0]
	if d.TraceID != appends[0].TraceID || d.Parent != appends[0].SpanID || d.Kind != tracing.KindConsumer || d.Status != tracing.StatusUnset {
		t.Errorf("delivery span %+v under append %s", d, appends[0].SpanID)
	}
	mu.Lock()
	if want := tracecontext.Format(d.TraceID, d.SpanID, 1); len(got) != 1 || got[0] != want {
		t.Errorf("handler got traceparent %q, want %q", got, want)
	}
	mu.Unlock()

	if code := appendReq("no_stream"); code != http.StatusConflict {
		t.Fatalf("second append with no_stream: %d", code)
	}
	appends = rec.Named("append")
	if len(appends) != 2 || appends[1].Status != tracing.StatusError {
		t.Errorf("refused append span %+v", appends)
	}
}
