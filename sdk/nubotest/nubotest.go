// Package nubotest runs a whole nubo system inside a Go test, as
// `encore test` and Aspire's testing host do, with no Docker:
//
//	func TestCheckout(t *testing.T) {
//		t.Parallel()
//		sys := nubotest.Up(t, "../nubo.yaml", nubotest.Env("PAYMENTS_MODE", "fake"))
//		resp, err := http.Get(sys.Gateway("prod") + "/products")
//		...
//		sys.WaitForLog("send-welcome", regexp.MustCompile(`welcome mail to ada@`))
//	}
//
// Up runs the engine in the test's own process (the same engine as
// `nubo up`) with a fresh temporary state directory (so queues, metrics and
// secrets start empty) and every listener on a free loopback port, so tests
// run in parallel, beside a developer's running system, with no collision.
// It waits until every service is ready, or fails the test with the
// engine's output, and stops everything in t.Cleanup.
package nubotest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Caller is the principal requests from System.URL carry in the mesh, for
// the spec's authorization policies.
const Caller = "nubotest"

// Option changes how Up runs the system.
type Option func(*config)

type config struct {
	env      map[string]string
	secrets  map[[2]string]string
	replicas map[string]int
	timeout  time.Duration
}

// Env sets a variable of the environment nubo up would read (for
// ${env.NAME} and secrets' from.env); the process's own environment is
// read for the rest.
func Env(name, value string) Option { return func(c *config) { c.env[name] = value } }

// Secret gives a secret's key a value, stored in the system's own
// temporary secrets store.
func Secret(name, key, value string) Option {
	return func(c *config) { c.secrets[[2]string{name, key}] = value }
}

// Replicas runs n replicas of a service, whatever the spec says.
func Replicas(service string, n int) Option { return func(c *config) { c.replicas[service] = n } }

// ReadyTimeout bounds the wait for every service to be ready; default 2m.
func ReadyTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// System is a running system. Its methods fail the test on an error.
type System struct {
	t      testing.TB
	e      *engine.Engine
	out    *buffer
	api    string // the console's base URL
	status apitype.Status
}

// Up starts the system of the spec file and returns once every service is
// ready. Everything stops when the test ends.
func Up(t testing.TB, file string, opts ...Option) *System {
	t.Helper()
	c := config{env: map[string]string{}, secrets: map[[2]string]string{}, replicas: map[string]int{}, timeout: 2 * time.Minute}
	for _, o := range opts {
		o(&c)
	}
	app, err := spec.Load(file)
	if err != nil {
		t.Fatalf("nubotest: %v", err)
	}
	for name, n := range c.replicas {
		s := app.Services[name]
		if s == nil {
			t.Fatalf("nubotest: Replicas: the spec has no service %q", name)
		}
		s.Replicas = &n
	}
	// Every listener on a free port: tests run side by side.
	free := "127.0.0.1:0"
	app.Local.Console, app.Local.Gateway, app.Local.OTLP = free, free, free
	if app.Local.Ingress.HTTP != "" {
		app.Local.Ingress.HTTP = free
	}
	if app.Local.Ingress.HTTPS != "" {
		app.Local.Ingress.HTTPS = free
	}
	state := t.TempDir()
	if os.Geteuid() == 0 {
		// As root, PostgreSQL runs as an unprivileged user, which must
		// pass through the folders above its data (t.TempDir's are 0700):
		// open them to traversal, not to reading.
		for d := state; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil {
				_ = os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
	}
	identity := filepath.Join(state, "identity.txt")
	if len(c.secrets) > 0 {
		store, err := secrets.OpenStore(state, identity)
		if err != nil {
			t.Fatalf("nubotest: %v", err)
		}
		for k, v := range c.secrets {
			if err := store.Set(k[0], k[1], secrets.NewValue(v)); err != nil {
				t.Fatalf("nubotest: secret %s.%s: %v", k[0], k[1], err)
			}
		}
	}
	out := &buffer{}
	e, err := engine.New(app, engine.Options{
		Out: out, StateDir: state, IdentityPath: identity, ConsoleAddr: free, NoWatch: true,
		Getenv: func(k string) string {
			if v, ok := c.env[k]; ok {
				return v
			}
			return os.Getenv(k)
		},
	})
	if err != nil {
		t.Fatalf("nubotest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	sys := &System{t: t, e: e, out: out}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Stop(stopCtx); err != nil {
			t.Errorf("nubotest: stop: %v", err)
		}
		if t.Failed() {
			t.Logf("nubo output:\n%s", out)
		}
	})
	if err := e.Start(ctx); err != nil {
		t.Fatalf("nubotest: start: %v\n%s", err, out)
	}
	if err := e.WaitReady(ctx); err != nil {
		t.Fatalf("nubotest: %v\n%s", err, out)
	}
	sys.status = e.Status()
	sys.api = "http://" + sys.status.Console
	return sys
}

// Output is everything the system printed so far, as `nubo up` shows it.
func (s *System) Output() string { return s.out.String() }

// Status is the system's status now.
func (s *System) Status() apitype.Status { return s.e.Status() }

// API is the base URL of the console: the admin API, the platform API
// ($NUBO_API) and the Prometheus API.
func (s *System) API() string { return s.api }

// URL returns the base URL of "service:NAME" (or a mesh route's name)
// through the mesh, as principal Caller, so that traffic policies, routes
// and authorization apply as they do for the system's own processes.
func (s *System) URL(target string) string {
	s.t.Helper()
	name, ok := strings.CutPrefix(target, "service:")
	if !ok {
		s.t.Fatalf("nubotest: URL(%q): want service:NAME", target)
	}
	u, err := s.e.ServiceURL(Caller, name)
	if err != nil {
		s.t.Fatalf("nubotest: URL(%q): %v", target, err)
	}
	return u
}

// Gateway returns the base URL of a gateway stage ("" for a spec without
// stages or for $default).
func (s *System) Gateway(stage string) string {
	s.t.Helper()
	addr := s.status.Addresses["gateway"]
	if addr == "" {
		s.t.Fatal("nubotest: the spec has no gateway")
	}
	if stage == "" || stage == "$default" {
		return addr
	}
	return addr + "/" + url.PathEscape(stage)
}

// Ingress returns an HTTP client whose requests, whatever their URL's
// host, go to the ingress's plain-HTTP listener with that host as Host:
// client.Get("http://shop.localhost/products").
func (s *System) Ingress() *http.Client {
	s.t.Helper()
	addr := strings.TrimPrefix(s.status.Addresses["ingress"], "http://")
	if addr == "" {
		s.t.Fatal("nubotest: the spec has no ingress with local.ingress.http")
	}
	tr := &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	s.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// Publish publishes an event with JSON data to "queue:NAME",
// "topic:NAME" or "bus", and returns its id.
func (s *System) Publish(to, eventType string, data any) string {
	s.t.Helper()
	kind, name, _ := strings.Cut(to, ":")
	path := map[string]string{"queue": "/v1/queues/" + name, "topic": "/v1/topics/" + name, "bus": "/v1/events"}[kind]
	if path == "" || (kind != "bus") == (name == "") {
		s.t.Fatalf("nubotest: Publish to %q: want queue:NAME, topic:NAME or bus", to)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		s.t.Fatalf("nubotest: Publish: %v", err)
	}
	ev, _ := json.Marshal(map[string]any{"specversion": "1.0", "type": eventType, "source": "nubotest",
		"datacontenttype": "application/json", "data": json.RawMessage(raw)})
	var ans apitype.PublishResponse
	s.do("POST", path, "application/cloudevents+json", ev, &ans)
	if len(ans.Events) != 1 {
		s.t.Fatalf("nubotest: Publish: %+v", ans)
	}
	return ans.Events[0].ID
}

// Invoke invokes a function with JSON data and returns its answer's body.
func (s *System) Invoke(function string, data any) []byte {
	s.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		s.t.Fatalf("nubotest: Invoke: %v", err)
	}
	ev, _ := json.Marshal(map[string]any{"specversion": "1.0", "type": "nubotest.invoke", "source": "nubotest",
		"datacontenttype": "application/json", "data": json.RawMessage(raw)})
	return s.do("POST", "/v1/functions/"+url.PathEscape(function)+"/invoke", "application/cloudevents+json", ev, nil)
}

// Query evaluates a PromQL expression now and returns the Prometheus API's
// data (resultType and result).
func (s *System) Query(promql string) json.RawMessage {
	s.t.Helper()
	var ans struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	s.do("GET", "/api/v1/query?query="+url.QueryEscape(promql), "", nil, &ans)
	return ans.Data
}

// WaitForLog waits up to a minute for a line of service (or function)
// matching re, and returns it.
func (s *System) WaitForLog(service string, re *regexp.Regexp) string {
	s.t.Helper()
	var found string
	s.waitFor(time.Minute, func() error {
		// A function scaled to zero has no output yet: 404 until it has.
		body, err := s.try("GET", "/admin/v1/logs?service="+url.QueryEscape(service))
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			var l apitype.LogLine
			if err := dec.Decode(&l); err != nil {
				break
			}
			if re.MatchString(l.Text) {
				found = l.Text
				return nil
			}
		}
		return fmt.Errorf("no line of %s matches %s", service, re)
	})
	return found
}

// WaitForEvent waits up to a minute for an event in queue that match
// accepts, takes it off the queue and returns it; the others it sees go
// back to the queue.
func (s *System) WaitForEvent(queue string, match func(apitype.Delivery) bool) apitype.Delivery {
	s.t.Helper()
	var got apitype.Delivery
	base := "/v1/queues/" + url.PathEscape(queue) + "/messages"
	s.waitFor(time.Minute, func() error {
		var ans apitype.DeliveriesResponse
		s.do("GET", base+"?max=10&wait=1s", "", nil, &ans)
		var err error = fmt.Errorf("no matching event in queue %s", queue)
		for _, d := range ans.Messages {
			if err != nil && match(d) {
				got, err = d, nil
				s.do("POST", base+"/"+url.PathEscape(d.ID)+"/ack", "", nil, nil)
				continue
			}
			s.do("POST", base+"/"+url.PathEscape(d.ID)+"/nack", "application/json", []byte(`{"delay":"0s"}`), nil)
		}
		return err
	})
	return got
}

func (s *System) waitFor(d time.Duration, cond func() error) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nubotest: after %s: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client is the harness's HTTP client: every call is bounded.
var client = &http.Client{Timeout: time.Minute}

// try calls the console's API and returns a non-2xx answer as an error.
func (s *System) try(method, path string) ([]byte, error) {
	req, err := http.NewRequest(method, s.api+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return data, nil
}

// do calls the console's API and fails the test on a non-2xx answer.
func (s *System) do(method, path, contentType string, body []byte, out any) []byte {
	s.t.Helper()
	req, err := http.NewRequest(method, s.api+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("nubotest: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("nubotest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("nubotest: %s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("nubotest: %s %s: %v", method, path, err)
		}
	}
	return data
}

// buffer is the system's output, safe for concurrent writes.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
