package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := OpenStore(StoreOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// service is a test HTTP server with a client_golang registry, standing in
// for a user's service.
type service struct {
	srv      *httptest.Server
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	fail     atomic.Bool
}

func startService(t *testing.T) *service {
	t.Helper()
	s := &service{reg: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests."}, []string{"code"})
	s.reg.MustRegister(s.requests)
	h := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *service) port(t *testing.T) int {
	t.Helper()
	u, _ := url.Parse(s.srv.URL)
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// apiGet asks the API and decodes its envelope.
func apiGet(t *testing.T, api http.Handler, path string, params url.Values) (int, apiEnvelope, string) {
	t.Helper()
	srv := httptest.NewServer(api)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env apiEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: not JSON: %v\n%s", path, err, body)
	}
	return resp.StatusCode, env, string(body)
}

type apiEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

type vectorData struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	} `json:"result"`
}

func queryVector(t *testing.T, api http.Handler, expr string) vectorData {
	t.Helper()
	code, env, body := apiGet(t, api, "/api/v1/query", url.Values{"query": {expr}})
	if code != 200 || env.Status != "success" {
		t.Fatalf("query %s: %d\n%s", expr, code, body)
	}
	var v vectorData
	if err := json.Unmarshal(env.Data, &v); err != nil || v.ResultType != "vector" {
		t.Fatalf("query %s: not a vector: %v\n%s", expr, err, body)
	}
	return v
}

// TestScrapeAndQuery scrapes a service's counter on two replicas' worth of
// targets and reads it back through the API, with the target labels, the
// global labels, up, exported_ for a clashing label, and staleness when a
// series, a target or a scrape goes away.
func TestScrapeAndQuery(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	svc := startService(t)
	svc.requests.WithLabelValues("200").Add(41)
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "build_info", Help: "Build.", ConstLabels: prometheus.Labels{"service": "legacy-name"}})
	svc.reg.MustRegister(clash)

	statuses := []supervisor.ServiceStatus{{Name: "users", Replicas: []supervisor.ReplicaStatus{
		{Index: 0, State: supervisor.StateReady, Port: svc.port(t)},
		{Index: 1, State: supervisor.StateBackOff, Port: 1}, // not running: not scraped
	}}}
	var targets atomic.Value
	targets.Store(ServiceTargets([]*spec.ScrapeTarget{{Service: "users", Path: "/metrics"}}, statuses))
	sc, err := NewScraper(store, ScrapeOptions{
		Targets: TargetFunc(func() []Target { return targets.Load().([]Target) }),
		Labels:  map[string]string{"cluster": "local"},
	})
	if err != nil {
		t.Fatal(err)
	}
	api := NewAPI(store, nil, sc, nil)
	ctx := context.Background()

	sc.Scrape(ctx)
	svc.requests.WithLabelValues("200").Inc()
	nextMilli()
	sc.Scrape(ctx)

	instance := "127.0.0.1:" + strconv.Itoa(svc.port(t))
	v := queryVector(t, api, `http_requests_total`)
	if len(v.Result) != 1 {
		t.Fatalf("http_requests_total: %+v", v)
	}
	wantLabels := map[string]string{
		"__name__": "http_requests_total", "code": "200", "job": "users", "service": "users", "replica": "0",
		"instance": instance, "cluster": "local",
	}
	if got := v.Result[0].Metric; fmt.Sprint(got) != fmt.Sprint(wantLabels) {
		t.Errorf("labels %v, want %v", got, wantLabels)
	}
	if v.Result[0].Value[1] != "42" {
		t.Errorf("value %v, want 42", v.Result[0].Value)
	}
	if v := queryVector(t, api, `up{job="users"}`); len(v.Result) != 1 || v.Result[0].Value[1] != "1" || v.Result[0].Metric["replica"] != "0" {
		t.Errorf("up: %+v", v)
	}
	if v := queryVector(t, api, `build_info`); len(v.Result) != 1 || v.Result[0].Metric["exported_service"] != "legacy-name" || v.Result[0].Metric["service"] != "users" {
		t.Errorf("a scraped label clashing with a target label is kept as exported_: %+v", v)
	}
	if v := queryVector(t, api, `scrape_samples_scraped{job="users"}`); len(v.Result) != 1 || v.Result[0].Value[1] != "2" {
		t.Errorf("scrape_samples_scraped: %+v", v)
	}
	if h := sc.Health(); len(h) != 1 || h[0].Health != "up" || h[0].URL != "http://"+instance+"/metrics" {
		t.Errorf("health: %+v", h)
	}

	// A series that disappears is stale at once, not for 5 minutes.
	svc.reg.Unregister(clash)
	nextMilli()
	sc.Scrape(ctx)
	if v := queryVector(t, api, `build_info`); len(v.Result) != 0 {
		t.Errorf("a series gone from the target is still there: %+v", v)
	}

	// A failed scrape: up is 0 and the target's series are stale.
	svc.fail.Store(true)
	nextMilli()
	sc.Scrape(ctx)
	if v := queryVector(t, api, `up{job="users"}`); len(v.Result) != 1 || v.Result[0].Value[1] != "0" {
		t.Errorf("up after a failed scrape: %+v", v)
	}
	if v := queryVector(t, api, `http_requests_total`); len(v.Result) != 0 {
		t.Errorf("series of a failed target are still there: %+v", v)
	}
	if h := sc.Health(); len(h) != 1 || h[0].Health != "down" || !strings.Contains(h[0].LastError, "500") {
		t.Errorf("health after a failure: %+v", h)
	}

	// A target that goes away (its replica stopped): even up is stale.
	targets.Store([]Target{})
	nextMilli()
	sc.Scrape(ctx)
	if v := queryVector(t, api, `up`); len(v.Result) != 0 {
		t.Errorf("up of a target gone: %+v", v)
	}
}

// TestEngineTarget scrapes a handler in process, as the engine's own
// registry is, keeping the engine's service and replica labels.
func TestEngineTarget(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nubo_replica_cpu_cores", Help: "CPU."}, []string{"service", "replica"})
	g.WithLabelValues("users", "0").Set(0.25)
	reg.MustRegister(g)
	sc, err := NewScraper(store, ScrapeOptions{Targets: TargetFunc(func() []Target {
		return []Target{EngineTarget(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), "127.0.0.1:4500")}
	})})
	if err != nil {
		t.Fatal(err)
	}
	sc.Scrape(context.Background())
	vec, err := store.Query(context.Background(), `nubo_replica_cpu_cores`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 1 || vec[0].F != 0.25 || vec[0].Metric.Get("service") != "users" || vec[0].Metric.Get("job") != "nubo" || vec[0].Metric.Get("instance") != "127.0.0.1:4500" {
		t.Errorf("engine series: %v", vec)
	}
}

func TestServiceTargets(t *testing.T) {
	t.Parallel()
	statuses := []supervisor.ServiceStatus{
		{Name: "users", Replicas: []supervisor.ReplicaStatus{
			{Index: 0, State: supervisor.StateReady, Port: 41000},
			{Index: 1, State: supervisor.StateStarting, Port: 41001},
			{Index: 2, State: supervisor.StateBackOff, Port: 41002},
			{Index: 3, State: supervisor.StatePending},
		}},
		{Name: "orders", Replicas: []supervisor.ReplicaStatus{{Index: 0, State: supervisor.StateRunning, Port: 42000}}},
	}
	got := ServiceTargets([]*spec.ScrapeTarget{
		{Service: "users", Path: "/metrics"},
		{Service: "orders", Path: "/internal/metrics", Port: 9100},
		{Service: "gone"},
	}, statuses)
	var lines []string
	for _, tg := range got {
		lines = append(lines, fmt.Sprintf("%s %v", tg.URL, tg.Labels))
	}
	want := []string{
		"http://127.0.0.1:41000/metrics map[instance:127.0.0.1:41000 job:users replica:0 service:users]",
		"http://127.0.0.1:41001/metrics map[instance:127.0.0.1:41001 job:users replica:1 service:users]",
		"http://127.0.0.1:9100/internal/metrics map[instance:127.0.0.1:9100 job:orders replica:0 service:orders]",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestScrapeParseError fails a whole scrape on a malformed answer, as
// Prometheus does, and keeps nothing of it.
func TestScrapeParseError(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "good_metric 1")
		fmt.Fprintln(w, "bad metric{ 2")
	}))
	t.Cleanup(srv.Close)
	sc, _ := NewScraper(store, ScrapeOptions{Targets: TargetFunc(func() []Target {
		return []Target{{URL: srv.URL + "/metrics", Labels: map[string]string{"job": "x", "instance": "y"}}}
	})})
	sc.Scrape(context.Background())
	vec, err := store.Query(context.Background(), `good_metric or up`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 1 || vec[0].Metric.Get("__name__") != "up" || vec[0].F != 0 || math.IsNaN(vec[0].F) {
		t.Errorf("after a parse error: %v", vec)
	}
	if h := sc.Health(); len(h) != 1 || !strings.Contains(h[0].LastError, "parse") {
		t.Errorf("health: %+v", h)
	}
}

// nextMilli waits for the clock to pass into the next millisecond. Samples
// have millisecond timestamps, and a second scrape within the same
// millisecond is a duplicate the TSDB drops.
func nextMilli() {
	for first := time.Now().UnixMilli(); time.Now().UnixMilli() == first; {
		runtime.Gosched()
	}
}
