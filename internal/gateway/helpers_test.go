package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// testGateway is a started gateway on 127.0.0.1:0 with a clock the test
// moves.
type testGateway struct {
	g     *Gateway
	url   string
	clock *fakeClock
	logs  *nubotest.Buffer
	reg   *prometheus.Registry
	dir   string
}

// fakeClock is the gateway's clock in tests: TTLs, buckets and token
// validity move only when the test says.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// loadSpec writes a spec into a temporary folder (with files, e.g. a key
// set) and loads it as nubo up does.
func loadSpec(t testing.TB, yaml string, files map[string]string) (*spec.App, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		t.Fatalf("load the spec: %v", err)
	}
	return app, dir
}

// startGateway loads yaml and starts a gateway on it; mod adjusts the
// configuration before New.
func startGateway(t testing.TB, yaml string, files map[string]string, mod func(*Config)) *testGateway {
	t.Helper()
	app, dir := loadSpec(t, yaml, files)
	tg := &testGateway{clock: newClock(), logs: &nubotest.Buffer{}, reg: prometheus.NewRegistry(), dir: dir}
	cfg := Config{
		App:     app,
		Addr:    "127.0.0.1:0",
		Logger:  testLogger(tg.logs),
		Metrics: tg.reg,
		Now:     tg.clock.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	tg.g, tg.url = g, "http://"+g.Addr()
	return tg
}

// testLogger logs to the test's stderr only with NUBO_TEST_LOG set, and
// always into buf.
func testLogger(buf io.Writer) *slog.Logger {
	var hs []slog.Handler
	if os.Getenv("NUBO_TEST_LOG") != "" {
		hs = append(hs, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	hs = append(hs, slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return slog.New(slog.NewMultiHandler(hs...))
}

// reply is an answer the test read whole.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, r.body)
	}
	return m
}

// call sends a request; headers are name, value pairs.
func call(t testing.TB, method, url, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// seen is what the echo backend received.
type seen struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// echoBackend answers every request with what it received, as JSON, and
// counts requests.
type echoBackend struct {
	*httptest.Server
	hits atomic.Int64
}

func newEchoBackend(t testing.TB) *echoBackend {
	t.Helper()
	b := &echoBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if s := r.URL.Query().Get("status"); s != "" {
			w.WriteHeader(atoi(s))
		}
		_ = json.NewEncoder(w).Encode(seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: r.Header, Body: string(body)})
	}))
	t.Cleanup(b.Close)
	return b
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func (r reply) seen(t testing.TB) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("not the echo backend's answer (%d): %v: %q", r.status, err, r.body)
	}
	return s
}

// fakeFunctions stands in for the functions component in tests of the
// gateway alone: it counts invocations and answers with handle. The
// engine wires the real *functions.Functions, which implements the same
// interface.
type fakeFunctions struct {
	mu     sync.Mutex
	calls  map[string]int
	events []event.Event
	handle func(name string, e event.Event) (functions.Result, error)
}

func (f *fakeFunctions) Invoke(ctx context.Context, name string, e event.Event) (functions.Result, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[name]++
	f.events = append(f.events, e)
	f.mu.Unlock()
	return f.handle(name, e)
}

func (f *fakeFunctions) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeFunctions) last() event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events[len(f.events)-1]
}

// jsonResult is a function's 200 JSON answer.
func jsonResult(v any) functions.Result {
	b, _ := json.Marshal(v)
	return functions.Result{Status: 200, ContentType: "application/json", Header: http.Header{"Content-Type": {"application/json"}}, Body: b, Instance: 1}
}

// servicesOf maps service names to test servers, as the mesh's
// ServiceURL does (tests of the mesh path use the real mesh).
func servicesOf(m map[string]string) Services {
	return ServicesFunc(func(name string) (string, error) {
		u, ok := m[name]
		if !ok {
			return "", &url404{name}
		}
		return u, nil
	})
}

type url404 struct{ name string }

func (e *url404) Error() string { return "no service " + e.name }

func mustContain(t testing.TB, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%s lacks %q:\n%s", what, want, s)
	}
}

func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("replaceOnce: " + old + " not found")
	}
	return strings.Replace(s, old, new, 1)
}
