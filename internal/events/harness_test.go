package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

func testLogger() *slog.Logger {
	if os.Getenv("NUBO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// env is a started broker and dispatcher, with the platform API served on
// a loopback port.
type env struct {
	t   *testing.T
	dir string
	b   *broker.Broker
	d   *events.Dispatcher
	api string // http://127.0.0.1:PORT
	reg *prometheus.Registry
}

// options of newEnv.
type envOpt struct {
	natsURL string // external NATS; empty: embedded
	dir     string // state dir; empty: a new temporary one
	config  func(*events.Config)
}

// parseSpec parses a spec written for a test; vars replace {{name}}.
func parseSpec(t testing.TB, yaml string, vars map[string]string) *spec.App {
	t.Helper()
	for k, v := range vars {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
	}
	dir := t.TempDir()
	app, err := spec.Parse(filepath.Join(dir, "nubo.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("spec: %v\n%s", err, yaml)
	}
	return app
}

// testConfig is a Config with short timings, for app.
func testConfig(app *spec.App, b *broker.Broker) events.Config {
	return events.Config{
		App:             app,
		Broker:          b,
		Logger:          testLogger(),
		DeliveryTimeout: 5 * time.Second,
		Retry:           events.Retry{Attempts: 3, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
		BatchWait:       200 * time.Millisecond,
	}
}

func newEnv(t *testing.T, app *spec.App, opt envOpt) *env {
	t.Helper()
	dir := opt.dir
	if dir == "" {
		dir = t.TempDir()
	}
	b, err := broker.New(broker.Config{StateDir: dir, URL: opt.natsURL, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	reg := prometheus.NewRegistry()
	cfg := testConfig(app, b)
	cfg.Metrics = reg
	if opt.config != nil {
		opt.config(&cfg)
	}
	d, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() {
		srv.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(stopCtx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &env{t: t, dir: dir, b: b, d: d, api: srv.URL, reg: reg}
}

// call makes an API request and decodes a JSON answer into out (if not
// nil); it returns the status and the raw body.
func call(t testing.TB, method, url string, header map[string]string, body []byte, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, raw)
		}
	}
	return resp.StatusCode, string(raw)
}

// publish posts one structured event and fails the test unless it is
// accepted; it returns the event's id.
func (e *env) publish(path string, ev map[string]any) string {
	e.t.Helper()
	body, _ := json.Marshal(ev)
	var out events.PublishResponse
	code, raw := call(e.t, "POST", e.api+path, map[string]string{"Content-Type": "application/cloudevents+json"}, body, &out)
	if code != http.StatusAccepted || len(out.Events) != 1 {
		e.t.Fatalf("POST %s = %d %s, want 202 with one event", path, code, raw)
	}
	return out.Events[0].ID
}

// receive pulls from a queue over the API.
func (e *env) receive(queue string, max int, wait string) []events.Delivery {
	e.t.Helper()
	var out struct {
		Messages []struct {
			ID         string                 `json:"id"`
			Attempt    int                    `json:"attempt"`
			Event      json.RawMessage        `json:"event"`
			DeadLetter *events.DeadLetterInfo `json:"deadLetter"`
		} `json:"messages"`
	}
	code, raw := call(e.t, "GET", fmt.Sprintf("%s/v1/queues/%s/messages?max=%d&wait=%s", e.api, queue, max, wait), nil, nil, &out)
	if code != http.StatusOK {
		e.t.Fatalf("receive %s = %d %s", queue, code, raw)
	}
	ds := make([]events.Delivery, len(out.Messages))
	for i, m := range out.Messages {
		ds[i] = events.Delivery{ID: m.ID, Attempt: m.Attempt, DeadLetter: m.DeadLetter}
		ds[i].Event = decodeStructured(e.t, m.Event)
	}
	return ds
}

func (e *env) ack(queue, id string) {
	e.t.Helper()
	if code, raw := call(e.t, "POST", fmt.Sprintf("%s/v1/queues/%s/messages/%s/ack", e.api, queue, id), nil, nil, nil); code != http.StatusNoContent {
		e.t.Fatalf("ack = %d %s", code, raw)
	}
}

func (e *env) nack(queue, id, reason string) {
	e.t.Helper()
	body, _ := json.Marshal(events.NackRequest{Error: reason})
	if code, raw := call(e.t, "POST", fmt.Sprintf("%s/v1/queues/%s/messages/%s/nack", e.api, queue, id), nil, body, nil); code != http.StatusNoContent {
		e.t.Fatalf("nack = %d %s", code, raw)
	}
}

func (e *env) deadLetters(name string) []events.DeadLetter {
	e.t.Helper()
	var out struct {
		DeadLetters []json.RawMessage `json:"deadLetters"`
	}
	code, raw := call(e.t, "GET", e.api+"/v1/deadletters/"+name, nil, nil, &out)
	if code != http.StatusOK {
		e.t.Fatalf("dead letters of %s = %d %s", name, code, raw)
	}
	dls := make([]events.DeadLetter, len(out.DeadLetters))
	for i, r := range out.DeadLetters {
		dls[i] = decodeDeadLetter(e.t, r)
	}
	return dls
}

func decodeDeadLetter(t testing.TB, raw json.RawMessage) events.DeadLetter {
	t.Helper()
	var dl struct {
		events.DeadLetter
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &dl); err != nil {
		t.Fatalf("dead letter %s: %v", raw, err)
	}
	out := dl.DeadLetter
	out.Event = decodeStructured(t, dl.Event)
	return out
}

// sink is an HTTP target that records what it is sent.
type sink struct {
	t      testing.TB
	url    string
	mu     sync.Mutex
	got    []sinkRequest
	status func(r sinkRequest, n int) int // nil: 200
}

type sinkRequest struct {
	path   string
	header http.Header
	body   []byte
}

// ceID is the request's ce-id header (binary mode).
func (r sinkRequest) ceID() string { return r.header.Get("ce-id") }

func newSink(t testing.TB, status func(r sinkRequest, n int) int) *sink {
	s := &sink{t: t, status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := sinkRequest{path: r.URL.Path, header: r.Header.Clone(), body: body}
		s.mu.Lock()
		s.got = append(s.got, req)
		n := len(s.got)
		fn := s.status
		s.mu.Unlock()
		code := http.StatusOK
		if fn != nil {
			code = fn(req, n)
		}
		w.WriteHeader(code)
		if code >= 300 {
			fmt.Fprintf(w, "sink refuses with %d", code)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *sink) requests() []sinkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRequest(nil), s.got...)
}

func (s *sink) setStatus(fn func(r sinkRequest, n int) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = fn
}

// waitFor waits until the sink has had n requests whose path is path
// (empty: any), and returns them.
func (s *sink) waitFor(path string, n int) []sinkRequest {
	s.t.Helper()
	var got []sinkRequest
	nubotest.WaitFor(s.t, 20*time.Second, func() error {
		got = got[:0]
		for _, r := range s.requests() {
			if path == "" || r.path == path {
				got = append(got, r)
			}
		}
		if len(got) < n {
			return fmt.Errorf("sink got %d requests on %q, want %d", len(got), path, n)
		}
		return nil
	})
	return got
}

func ids(rs []sinkRequest) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ceID()
	}
	return out
}

func decodeStructured(t testing.TB, raw json.RawMessage) *cloudevents.Event {
	t.Helper()
	ev := cloudevents.New()
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: %v", raw, err)
	}
	return &ev
}

// errorOf is the message of an {"error": "..."} answer, else body itself.
func errorOf(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
		return e.Error
	}
	return body
}
