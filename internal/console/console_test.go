package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// testBackend stands in for the engine so that these tests exercise the
// HTTP side alone; the real engine behind a real console is tested in
// internal/engine.
type testBackend struct {
	status Status

	mu        sync.Mutex
	restarted []string
	shutdowns chan struct{} // receives one value per Shutdown
}

func newTestBackend() *testBackend {
	return &testBackend{
		status: Status{
			App: "shop", Namespace: "shop", Spec: "nubo.yaml", PID: 4242,
			Started: time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC), Console: "127.0.0.1:4500",
			Services: []ServiceStatus{
				{
					ServiceStatus: supervisor.ServiceStatus{Name: "users", Desired: 1, Ready: 1, Replicas: []supervisor.ReplicaStatus{
						{Index: 0, ID: 1, State: supervisor.StateReady, Ready: true, PID: 4300, Port: 41000},
					}},
					Kind:    KindService,
					Scaling: &ScalingStatus{Min: 1, Max: 4, LastDecision: "cpu 10% of 70% target: 1 -> 1"},
				},
				{ServiceStatus: supervisor.ServiceStatus{Name: "orders"}, Kind: KindService},
			},
			Skipped: []Skipped{{Section: "functions", Reason: "not run by nubo up yet"}},
		},
		shutdowns: make(chan struct{}, 4),
	}
}

func (b *testBackend) Status() Status { return b.status }

func (b *testBackend) RestartService(_ context.Context, name string) error {
	for _, s := range b.status.Services {
		if s.Name == name {
			b.mu.Lock()
			b.restarted = append(b.restarted, name)
			b.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("service %q: %w", name, ErrNotFound)
}

func (b *testBackend) Shutdown() { b.shutdowns <- struct{}{} }

func testLogger() *slog.Logger {
	if os.Getenv("NUBO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// startServer runs a console on 127.0.0.1:0 and stops it with the test.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = testLogger()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

// client makes a new connection for each request, so that no spare
// connection from the transport's dialing race keeps a server's graceful
// stop waiting.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

type answer struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// errorOf decodes a JSON error answer, failing when it is not one.
func errorOf(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == "" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("not a JSON error (%v): %s %q", err, a.header.Get("Content-Type"), a.body)
	}
	return e.Error
}

func TestStatus(t *testing.T) {
	t.Parallel()
	b := newTestBackend()
	s := startServer(t, Config{Backend: b})
	a := do(t, "GET", "http://"+s.Addr()+"/admin/v1/status", nil)
	if a.code != http.StatusOK {
		t.Fatalf("status: %d %s", a.code, a.body)
	}
	var got Status
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatal(err)
	}
	if got.App != "shop" || got.PID != 4242 || !got.Started.Equal(b.status.Started) || len(got.Services) != 2 ||
		got.Services[0].Replicas[0].Port != 41000 || got.Services[0].Scaling.Max != 4 || got.Skipped[0].Section != "functions" {
		t.Errorf("status round trip: %+v", got)
	}
	// The supervisor's fields are at the service's top level in the JSON.
	var raw struct {
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(a.body), &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Services[0]["name"] != "users" || raw.Services[0]["kind"] != "service" || raw.Services[1]["scaling"] != nil {
		t.Errorf("service JSON: %v", raw.Services)
	}
}

func TestStatusEmptyListsAreArrays(t *testing.T) {
	t.Parallel()
	b := newTestBackend()
	b.status.Services, b.status.Skipped = nil, nil
	s := startServer(t, Config{Backend: b})
	a := do(t, "GET", "http://"+s.Addr()+"/admin/v1/status", nil)
	if !strings.Contains(a.body, `"services":[]`) || !strings.Contains(a.body, `"skipped":[]`) {
		t.Errorf("want [] for empty lists: %s", a.body)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	store := logs.New(0)
	now := time.Now()
	old := now.Add(-time.Hour)
	store.Add(logs.Line{Time: old, Service: "users", Text: "u1"})
	store.Add(logs.Line{Time: old, Service: "orders", Text: "o1"})
	store.Add(logs.Line{Time: now, Service: "users", Replica: 1, Text: "u2"})
	store.Add(logs.Line{Time: now, Service: "users", Text: "u3"})
	store.Add(logs.Line{Time: now, Service: "greet", Text: "g1"}) // a function: not in status
	s := startServer(t, Config{Backend: newTestBackend(), Logs: store})

	tests := []struct {
		query string
		code  int
		want  string // texts, space separated, or a substring of the error
	}{
		{"", 200, "u1 o1 u2 u3 g1"},
		{"service=users", 200, "u1 u2 u3"},
		{"service=users&tail=2", 200, "u2 u3"},
		{"tail=1", 200, "g1"},
		{"tail=0", 200, ""},
		{"tail=all", 200, "u1 o1 u2 u3 g1"},
		{"since=5m", 200, "u2 u3 g1"},
		{"service=orders&since=5m", 200, ""},
		{"since=" + now.Add(-2*time.Hour).Format(time.RFC3339), 200, "u1 o1 u2 u3 g1"},
		{"since=" + now.Add(-time.Minute).UTC().Format(time.RFC3339Nano), 200, "u2 u3 g1"},
		{"service=greet", 200, "g1"},
		{"follow=false&service=orders", 200, "o1"},
		{"service=usres", 404, `no service "usres" has written output (services: orders, users)`},
		{"tail=-1", 400, `tail "-1"`},
		{"tail=many", 400, `tail "many"`},
		{"since=yesterday", 400, `since "yesterday": want a duration`},
		{"since=-5m", 400, `since "-5m"`},
		{"follow=maybe", 400, `follow "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			a := do(t, "GET", "http://"+s.Addr()+"/admin/v1/logs?"+tt.query, nil)
			if a.code != tt.code {
				t.Fatalf("code %d, want %d: %s", a.code, tt.code, a.body)
			}
			if tt.code != 200 {
				if e := errorOf(t, a); !strings.Contains(e, tt.want) {
					t.Errorf("error %q, want %q in it", e, tt.want)
				}
				return
			}
			if ct := a.header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("Content-Type %q", ct)
			}
			var texts []string
			for l := range strings.Lines(a.body) {
				var line logs.Line
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				texts = append(texts, line.Text)
			}
			if got := strings.Join(texts, " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogsWithoutStore(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{Backend: newTestBackend()})
	a := do(t, "GET", "http://"+s.Addr()+"/admin/v1/logs", nil)
	if a.code != http.StatusServiceUnavailable || !strings.Contains(errorOf(t, a), "no logs") {
		t.Errorf("%d %s", a.code, a.body)
	}
}

// follow opens a follow request and returns a reader of its lines.
func follow(t *testing.T, url string) (next func() logs.Line, body io.Closer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("follow: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	return func() logs.Line {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("follow ended: %v", sc.Err())
		}
		var l logs.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}, resp.Body
}

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	store := logs.New(0)
	store.Add(logs.Line{Service: "users", Text: "before-1"})
	store.Add(logs.Line{Service: "users", Text: "before-2"})
	store.Add(logs.Line{Service: "orders", Text: "other"})
	s := startServer(t, Config{Backend: newTestBackend(), Logs: store})

	// The answer's headers come once the handler has read the store, so
	// everything added after Do returns is a line added after the request
	// started.
	next, _ := follow(t, "http://"+s.Addr()+"/admin/v1/logs?service=users&tail=1&follow=true")
	if l := next(); l.Text != "before-2" {
		t.Fatalf("first line %q, want the tail before-2", l.Text)
	}
	store.Add(logs.Line{Service: "orders", Text: "filtered out"})
	store.Add(logs.Line{Service: "users", Replica: 2, Text: "after-1"})
	if l := next(); l.Text != "after-1" || l.Replica != 2 || l.Service != "users" {
		t.Fatalf("followed line %+v, want after-1 of users-2", l)
	}
	store.Add(logs.Line{Service: "users", Text: "after-2"})
	store.Add(logs.Line{Service: "users", Text: "after-3"})
	if a, b := next(), next(); a.Text != "after-2" || b.Text != "after-3" {
		t.Fatalf("followed %q %q", a.Text, b.Text)
	}
}

func TestLogsFollowNewOnly(t *testing.T) {
	t.Parallel()
	store := logs.New(0)
	store.Add(logs.Line{Service: "users", Text: "old"})
	s := startServer(t, Config{Backend: newTestBackend(), Logs: store})
	next, _ := follow(t, "http://"+s.Addr()+"/admin/v1/logs?tail=0&follow=true")
	store.Add(logs.Line{Service: "users", Text: "new"})
	if l := next(); l.Text != "new" {
		t.Fatalf("first line %q, want only the new one", l.Text)
	}
}

func TestStopEndsFollowers(t *testing.T) {
	t.Parallel()
	store := logs.New(0)
	s := startServer(t, Config{Backend: newTestBackend(), Logs: store})
	_, body := follow(t, "http://"+s.Addr()+"/admin/v1/logs?follow=true")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	// A graceful stop would wait for the follower until the deadline if
	// Stop did not end it: it must finish without error.
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop with a follower: %v", err)
	}
	if _, err := io.ReadAll(body.(io.Reader)); err != nil {
		t.Errorf("follower's stream did not end cleanly: %v", err)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	b := newTestBackend()
	s := startServer(t, Config{Backend: b})
	a := do(t, "POST", "http://"+s.Addr()+"/admin/v1/services/users/restart", nil)
	if a.code != http.StatusAccepted || !strings.Contains(a.body, `"service":"users"`) {
		t.Fatalf("restart users: %d %s", a.code, a.body)
	}
	b.mu.Lock()
	restarted := strings.Join(b.restarted, ",")
	b.mu.Unlock()
	if restarted != "users" {
		t.Errorf("backend restarted %q", restarted)
	}

	a = do(t, "POST", "http://"+s.Addr()+"/admin/v1/services/usres/restart", nil)
	if a.code != http.StatusNotFound {
		t.Fatalf("restart of an unknown service: %d %s", a.code, a.body)
	}
	if e := errorOf(t, a); e != `no service "usres" (services: orders, users)` {
		t.Errorf("error %q", e)
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	b := newTestBackend()
	s := startServer(t, Config{Backend: b})
	a := do(t, "POST", "http://"+s.Addr()+"/admin/v1/shutdown", nil)
	if a.code != http.StatusAccepted || !strings.Contains(a.body, `"status":"stopping"`) {
		t.Fatalf("shutdown: %d %s", a.code, a.body)
	}
	select {
	case <-b.shutdowns:
	default:
		t.Fatal("the backend was not asked to shut down")
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "nubo_up 1")
	})
	b := newTestBackend()
	with := startServer(t, Config{Backend: b, Metrics: metrics})
	without := startServer(t, Config{Backend: b})

	tests := []struct {
		name   string
		server *Server
		method string
		path   string
		header http.Header
		code   int
		want   string // in the body
	}{
		{"healthz", without, "GET", "/healthz", nil, 200, "ok"},
		{"metrics", with, "GET", "/metrics", nil, 200, "nubo_up 1"},
		{"no metrics", without, "GET", "/metrics", nil, 404, "serves no metrics"},
		{"GET on a POST route", without, "GET", "/admin/v1/shutdown", nil, 405, "method not allowed (allowed: POST)"},
		{"unknown route", without, "GET", "/admin/v1/nope", nil, 404, "no such route"},
		{"cross-origin POST", without, "POST", "/admin/v1/shutdown", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403, "cross-origin request refused"},
		{"other origin", without, "POST", "/admin/v1/services/users/restart", http.Header{"Origin": {"http://evil.example"}}, 403, "cross-origin"},
		{"rebound host", without, "GET", "/admin/v1/status", http.Header{"Host": {"evil.example:4500"}}, 421, `host "evil.example:4500" refused`},
		{"localhost", without, "GET", "/admin/v1/status", http.Header{"Host": {"localhost:4500"}}, 200, `"app":"shop"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := do(t, tt.method, "http://"+tt.server.Addr()+tt.path, tt.header)
			text := a.body
			if a.code >= 400 {
				text = errorOf(t, a)
			}
			if a.code != tt.code || !strings.Contains(text, tt.want) {
				t.Errorf("%s %s: %d %q, want %d with %q", tt.method, tt.path, a.code, a.body, tt.code, tt.want)
			}
			if tt.code == 405 && a.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
		})
	}
	select {
	case <-b.shutdowns:
		t.Error("a refused request reached the backend")
	default:
	}
}

func TestBusyPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Addr: ln.Addr().String(), Backend: newTestBackend()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(t.Context())
	if err == nil {
		s.Stop(t.Context())
		t.Fatal("Start on a busy port succeeded")
	}
	for _, want := range []string{ln.Addr().String(), "in use", "local.console"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"defaults", Config{Backend: newTestBackend()}, ""},
		{"no backend", Config{Addr: "127.0.0.1:0"}, "no backend"},
		{"bad address", Config{Addr: "4500", Backend: newTestBackend()}, `address "4500"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want == "" && s.Addr() != "127.0.0.1:4500":
				t.Errorf("default address %q", s.Addr())
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	var nilServer *Server
	if err := nilServer.Stop(t.Context()); err != nil {
		t.Errorf("nil Stop: %v", err)
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Backend: newTestBackend()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Errorf("Addr %q is not the real port", addr)
	}
	if err := s.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start: %v", err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Stop(t.Context()); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still listening after Stop")
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"5m", now.Add(-5 * time.Minute), false},
		{"1h30m", now.Add(-90 * time.Minute), false},
		{"0s", now, false},
		{"2026-08-01T10:00:00Z", time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC), false},
		{"2026-08-01T10:00:00.5+02:00", time.Date(2026, 8, 1, 8, 0, 0, 5e8, time.UTC), false},
		{"-5m", time.Time{}, true},
		{"5", time.Time{}, true},
		{"2026-08-01", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := apitype.ParseSince(tt.in, now)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("apitype.ParseSince(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
	if _, err := apitype.ParseSince("soon", now); err == nil || !strings.Contains(err.Error(), `since "soon"`) {
		t.Errorf("error does not name the value: %v", err)
	}
}

func TestExtraRoutes(t *testing.T) {
	s := startServer(t, Config{Backend: newTestBackend(), Routes: []Route{{
		Pattern: "POST /v1/echo",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		}),
	}}})
	resp, err := http.Post("http://"+s.Addr()+"/v1/echo", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

func TestConflictingRouteIsAnError(t *testing.T) {
	_, err := New(Config{Addr: "127.0.0.1:0", Backend: newTestBackend(), Routes: []Route{{Pattern: "GET /metrics", Handler: http.NotFoundHandler()}}})
	if err == nil || !strings.Contains(err.Error(), `route "GET /metrics"`) {
		t.Fatalf("want an error naming the conflicting route, got %v", err)
	}
}
