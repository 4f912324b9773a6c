package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/logs"
)

// TestTraceWaterfall draws a trace of fixed shape on the Traces page: an
// error span, events and logs that a small system's real traces would not
// reliably hold. A fixed answer of the Jaeger query API (the engine serves
// the real one under /jaeger/api/) is served here on a console of its own;
// the spans' logs come from the console's real log store.
// TestConsolePages checks the page against the real engine's traces.
func TestTraceWaterfall(t *testing.T) {
	chromium(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	store := logs.New(0)
	store.Add(logs.Line{Time: time.Now(), Service: "orders", Stream: "stdout", Text: "charging card for order 7", TraceID: traceID,
		Fields: map[string]any{"span_id": "00f067aa0ba902b8"}})
	srv, err := console.New(console.Config{
		Addr: "127.0.0.1:0", Backend: noEngine{}, Logs: store, Token: "t",
		Routes: []console.Route{{Pattern: "/jaeger/api/", Handler: fakeJaeger(traceID)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	b := newBrowser(t, "http://"+srv.Addr())

	b.open("traces")
	b.waitFor("the search finds the trace", 10*time.Second, func() error {
		if s := b.text("#trace-results"); !strings.Contains(s, "GET /orders/{id}") {
			return fmt.Errorf("results: %q", s)
		}
		return nil
	})
	b.open("traces?trace=" + traceID)
	b.waitFor("the waterfall", 10*time.Second, b.has(`#waterfall tr[data-span="00f067aa0ba902b8"]`))
	var rows []string
	if err := b.eval(`[...document.querySelectorAll("#waterfall tbody tr")].map(r => r.dataset.span)`, &rows); err != nil {
		t.Fatal(err)
	}
	// Tree order: the root, its first child and that one's child, then
	// the root's second child.
	want := []string{"a000000000000001", "00f067aa0ba902b8", "a000000000000003", "a000000000000004"}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("waterfall rows %v, want %v", rows, want)
	}
	var margin float64
	if err := b.eval(`parseFloat(document.querySelector('#waterfall tr[data-span="a000000000000004"] .bar').style.marginLeft)`, &margin); err != nil || margin < 50 {
		t.Errorf("the last span starts half-way through the trace; its bar starts at %v%% (%v)", margin, err)
	}
	if err := b.has(`#waterfall tr[data-span="a000000000000003"] .bar.err`)(); err != nil {
		t.Errorf("the failed span is not drawn as an error: %v", err)
	}
	b.click(`#waterfall tr[data-span="00f067aa0ba902b8"]`)
	b.waitFor("the span's attributes, events and logs", 10*time.Second, func() error {
		s := b.text("#span-detail")
		for _, want := range []string{"http.route", "/orders/{id}", "cache miss", "charging card for order 7"} {
			if !strings.Contains(s, want) {
				return fmt.Errorf("%q not in %q", want, s)
			}
		}
		return nil
	})
	b.shot("trace-waterfall")
}

// fakeJaeger answers the Jaeger query API with one trace of four spans.
func fakeJaeger(traceID string) http.Handler {
	start := time.Now().Add(-time.Minute).UnixMicro()
	span := func(id, parent, op string, at, dur int64, tags ...map[string]any) map[string]any {
		s := map[string]any{"traceID": traceID, "spanID": id, "operationName": op, "startTime": start + at, "duration": dur,
			"processID": "p1", "tags": tags, "logs": []any{}}
		if parent != "" {
			s["references"] = []any{map[string]any{"refType": "CHILD_OF", "traceID": traceID, "spanID": parent}}
		}
		return s
	}
	child := span("00f067aa0ba902b8", "a000000000000001", "SELECT orders", 1000, 4000,
		map[string]any{"key": "http.route", "type": "string", "value": "/orders/{id}"})
	child["logs"] = []any{map[string]any{"timestamp": start + 1500, "fields": []any{map[string]any{"key": "event", "type": "string", "value": "cache miss"}}}}
	trace := map[string]any{
		"traceID": traceID,
		"spans": []any{
			span("a000000000000004", "a000000000000001", "publish", 6000, 3000),
			span("a000000000000001", "", "GET /orders/{id}", 0, 10000),
			child,
			span("a000000000000003", "00f067aa0ba902b8", "query", 2000, 1000, map[string]any{"key": "error", "type": "bool", "value": true}),
		},
		"processes": map[string]any{"p1": map[string]any{"serviceName": "orders", "tags": []any{}}},
	}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": v})
	}
	mux.HandleFunc("GET /jaeger/api/services", func(w http.ResponseWriter, r *http.Request) { answer(w, []string{"orders"}) })
	mux.HandleFunc("GET /jaeger/api/services/{service}/operations", func(w http.ResponseWriter, r *http.Request) {
		answer(w, []map[string]string{{"name": "GET /orders/{id}"}})
	})
	mux.HandleFunc("GET /jaeger/api/traces", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service") != "orders" {
			answer(w, []any{})
			return
		}
		answer(w, []any{trace})
	})
	mux.HandleFunc("GET /jaeger/api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != traceID {
			w.WriteHeader(http.StatusNotFound)
			answer(w, []any{})
			return
		}
		answer(w, []any{trace})
	})
	return mux
}

// noEngine is a console Backend with nothing running, for the console of
// the waterfall's test.
type noEngine struct{}

func (noEngine) Status() apitype.Status                       { return apitype.Status{App: "traces"} }
func (noEngine) RestartService(context.Context, string) error { return console.ErrNotFound }
func (noEngine) Shutdown()                                    {}
