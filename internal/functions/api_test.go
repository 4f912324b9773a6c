package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/nubo-dev/nubo/internal/supervisor"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/sdk"
)

// TestAPI drives the platform API's routes over real HTTP.
func TestAPI(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    triggers:
      - http: {path: "/orders/{id}"}
      - http: {method: GET, path: /disabled}
        enabled: false
`)
	srv := httptest.NewServer(fx.Handler())
	t.Cleanup(srv.Close)

	post := func(t *testing.T, path, contentType string, body []byte, header http.Header) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, data
	}

	t.Run("plain body", func(t *testing.T) {
		resp, body := post(t, "/v1/functions/fn/invoke?type=echo", "", []byte(`{"a":1}`), nil)
		var a answer
		if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil || a.Data != `{"a":1}` {
			t.Fatalf("invoke: %s %s", resp.Status, body)
		}
		if resp.Header.Get(HeaderColdStart) == "" || resp.Header.Get(HeaderDuration) == "" || resp.Header.Get(HeaderInstance) != "1" {
			t.Errorf("answer headers %v, want %s, %s and %s", resp.Header, HeaderColdStart, HeaderDuration, HeaderInstance)
		}
	})
	t.Run("binary CloudEvent", func(t *testing.T) {
		e := ev("echo", map[string]string{"b": "2"})
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL+"/v1/functions/fn/invoke", e)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.ID != e.ID() || a.Data != `{"b":"2"}` {
			t.Errorf("binary event: %s, answer %+v (%v); want id %s", resp.Status, a, err, e.ID())
		}
	})
	t.Run("structured CloudEvent", func(t *testing.T) {
		resp, body := post(t, "/v1/functions/fn/invoke", "application/cloudevents+json",
			[]byte(`{"specversion":"1.0","id":"s-1","source":"t","type":"echo","data":{"c":3}}`), nil)
		var a answer
		if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil || a.ID != "s-1" || a.Data != `{"c":3}` {
			t.Errorf("structured event: %s %s", resp.Status, body)
		}
	})
	t.Run("function error passed on", func(t *testing.T) {
		resp, body := post(t, "/v1/functions/fn/invoke?type=fail", "", nil, nil)
		if resp.StatusCode != 422 || !strings.Contains(string(body), "failing on purpose") || !strings.Contains(resp.Header.Get(HeaderError), "answered 422") {
			t.Errorf("failing function: %s %s, %s: %q", resp.Status, body, HeaderError, resp.Header.Get(HeaderError))
		}
	})
	t.Run("unknown function", func(t *testing.T) {
		resp, body := post(t, "/v1/functions/fm/invoke", "", nil, nil)
		if resp.StatusCode != 404 || !strings.Contains(string(body), `did you mean \"fn\"?`) {
			t.Errorf("unknown function: %s %s", resp.Status, body)
		}
	})
	t.Run("async", func(t *testing.T) {
		resp, body := post(t, "/v1/functions/fn/invoke?type=echo&async=true", "", nil, nil)
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"id"`) {
			t.Errorf("async invocation: %s %s", resp.Status, body)
		}
	})
	t.Run("http trigger", func(t *testing.T) {
		resp, body := post(t, "/orders/42?x=1", "text/plain", []byte("hello"), nil)
		var got struct {
			Method string              `json:"method"`
			Path   string              `json:"path"`
			Params map[string]string   `json:"params"`
			Body   string              `json:"body"`
			Query  map[string][]string `json:"query"`
		}
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Fn") != "yes" || json.Unmarshal(body, &got) != nil {
			t.Fatalf("http trigger: %s %v %s", resp.Status, resp.Header, body)
		}
		if got.Method != "POST" || got.Path != "/orders/42" || got.Params["id"] != "42" || got.Body != "hello" || got.Query["x"][0] != "1" {
			t.Errorf("the function saw %+v", got)
		}
	})
	t.Run("disabled trigger", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/disabled")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("a disabled trigger's route answers %s, want 404", resp.Status)
		}
	})
	t.Run("status", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/v1/functions")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sts []Status
		if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil || len(sts) != 1 || sts[0].Name != "fn" || sts[0].Invocations == 0 {
			t.Errorf("GET /v1/functions: %+v (%v)", sts, err)
		}
	})
	if got, want := fx.Patterns(), []string{"POST /v1/functions/{name}/invoke", "GET /v1/functions", "GET /v1/functions/{name}", "POST /orders/{id}"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Patterns() = %q, want %q", got, want)
	}
}

// TestTriggerConflict: two functions cannot take the same http route.
func TestTriggerConflict(t *testing.T) {
	t.Parallel()
	app := loadSpec(t, t.TempDir(), `
functions:
  a:
    run: FNBIN
    triggers: [{http: {path: /x}}]
  b:
    run: FNBIN
    triggers: [{http: {path: /x}}]
`)
	_, err := New(Config{App: app})
	if err == nil || !strings.Contains(err.Error(), `function "b": triggers[0]: http POST /x is also a trigger of function "a"`) {
		t.Errorf("New with a conflicting trigger: %v", err)
	}
}

// TestSDKRoundTrip: a function written with the SDK publishes an event
// through $NUBO_API, and its source is the function's name.
func TestSDKRoundTrip(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		received []event.Event
		paths    []string
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, `{"error":"not a CloudEvent"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		received, paths = append(received, *e), append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(api.Close)
	fx := start(t, `
functions:
  fn:
    run: FNBIN
`, func(c *Config) {
		c.Env = func(string) []string { return []string{sdk.APIEnv + "=" + api.URL} }
	})
	in := ev("publish", map[string]string{"queue": "jobs"})
	res, err := fx.Invoke(context.Background(), "fn", in)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Published, Source string }
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("answer %s: %v", res.Body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 1 || paths[0] != "POST /v1/queues/jobs" {
		t.Fatalf("the API got %v, want one POST /v1/queues/jobs", paths)
	}
	got := received[0]
	var data map[string]string
	_ = got.DataAs(&data)
	if got.ID() != out.Published || got.Type() != "fn.published" || got.Source() != "fn" || data["from"] != in.ID() {
		t.Errorf("published event %s; want id %s, type fn.published, source fn, data.from %s", got, out.Published, in.ID())
	}
}

// TestEnvironment: the engine's environment, NUBO_FUNCTION, NUBO_INSTANCE,
// the layers on PATH and in NUBO_LAYERS, and the invocation's deadline.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, l := range []string{"layers/a", "layers/b"} {
		if err := os.MkdirAll(filepath.Join(dir, l), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    dir: `+dir+`
    timeout: 3s
    memory: 96Mi
    layers: [`+filepath.Join(dir, "layers/a")+`, `+filepath.Join(dir, "layers/b")+`]
`, func(c *Config) {
		c.Env = func(name string) []string { return []string{"GREETING=hello " + name} }
	})
	res, err := fx.Invoke(context.Background(), "fn", ev("env", map[string]any{
		"names": []string{"GREETING", "NUBO_FUNCTION", "NUBO_INSTANCE", "NUBO_LAYERS", "PATH", "NUBO_FUNCTION_MEMORY", "PORT"}}))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal(res.Body, &env); err != nil {
		t.Fatal(err)
	}
	layers := filepath.Join(dir, "layers/a") + ":" + filepath.Join(dir, "layers/b")
	for k, want := range map[string]string{"GREETING": "hello fn", "NUBO_FUNCTION": "fn", "NUBO_INSTANCE": "1", "NUBO_LAYERS": layers, "NUBO_FUNCTION_MEMORY": "100663296"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if !strings.HasPrefix(env["PATH"], layers+":") || env["PORT"] == "" {
		t.Errorf("PATH %q does not start with the layers, or PORT %q is empty", env["PATH"], env["PORT"])
	}

	res, err = fx.Invoke(context.Background(), "fn", ev("deadline", nil))
	if err != nil {
		t.Fatal(err)
	}
	var dl struct {
		HasDeadline bool  `json:"hasDeadline"`
		Left        int64 `json:"left"`
	}
	if err := json.Unmarshal(res.Body, &dl); err != nil || !dl.HasDeadline || dl.Left <= 0 || dl.Left > 3000 {
		t.Errorf("the handler's deadline: %s (%v), want one within the 3s timeout", res.Body, err)
	}
}

// TestMissingLayer: a layer that does not exist fails Start, naming it.
func TestMissingLayer(t *testing.T) {
	t.Parallel()
	app := loadSpec(t, t.TempDir(), `
functions:
  fn:
    run: FNBIN
    layers: [./nope]
`)
	f, err := New(Config{App: app})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Start(context.Background())
	defer f.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), `function "fn": layer `) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Start with a missing layer: %v", err)
	}
}

// TestBuild: build runs once at Start, in the function's dir; a failing
// build fails Start with its exit code.
func TestBuild(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    build: echo built >> count.txt; echo building out loud
`)
	data, err := os.ReadFile(filepath.Join(fx.dir, "count.txt"))
	if err != nil || string(data) != "built\n" {
		t.Errorf("count.txt = %q (%v), want one build", data, err)
	}
	if !strings.Contains(fx.out.String(), "building out loud") {
		t.Errorf("build output not streamed:\n%s", fx.out)
	}
	fx.invoke(t, "fn", ev("echo", nil))
	fx.invoke(t, "fn", ev("echo", nil))
	if data, _ := os.ReadFile(filepath.Join(fx.dir, "count.txt")); string(data) != "built\n" {
		t.Errorf("count.txt = %q after invocations, want the one build", data)
	}

	app := loadSpec(t, t.TempDir(), `
functions:
  fn:
    run: FNBIN
    build: exit 7
`)
	f, err := New(Config{App: app})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Start(context.Background())
	defer f.Stop(context.Background())
	var be *supervisor.BuildError
	if !errors.As(err, &be) || be.Code != 7 {
		t.Errorf("Start with a failing build: %v, want a BuildError with code 7", err)
	}
}

// TestMetricsReRegister: a stopped component leaves its registry free for
// the next one, as a reload needs.
func TestMetricsReRegister(t *testing.T) {
	t.Parallel()
	app := loadSpec(t, t.TempDir(), `
functions:
  fn:
    run: FNBIN
`)
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		f, err := New(Config{App: app, Metrics: reg})
		if err != nil {
			t.Fatalf("New #%d on the same registry: %v", i+1, err)
		}
		if err := f.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := f.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Config{App: app, Metrics: reg}); err != nil {
		t.Fatalf("New after a stop without start: %v", err)
	}
	if _, err := New(Config{App: app, Metrics: reg}); err == nil {
		t.Error("two running components registered on one registry")
	}
}
