package mesh

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
)

// fakeEndpoints is an Endpoints over real listeners that tests change.
type fakeEndpoints struct {
	mu  sync.Mutex
	eps map[string][]Endpoint
}

func newFakeEndpoints() *fakeEndpoints { return &fakeEndpoints{eps: map[string][]Endpoint{}} }

func (f *fakeEndpoints) Endpoints(service string) []Endpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Endpoint(nil), f.eps[service]...)
}

// set gives service one ready endpoint per server, IDs "<service>-<i>".
func (f *fakeEndpoints) set(service string, servers ...*httptest.Server) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eps[service] = nil
	for i, s := range servers {
		f.eps[service] = append(f.eps[service], Endpoint{ID: service + "-" + strconv.Itoa(i), Addr: s.Listener.Addr().String(), Ready: true})
	}
}

func (f *fakeEndpoints) setRaw(service string, eps ...Endpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eps[service] = eps
}

// backends starts n HTTP servers; each answers through h with its index.
func backends(t *testing.T, n int, h func(i int, w http.ResponseWriter, r *http.Request)) []*httptest.Server {
	t.Helper()
	var out []*httptest.Server
	for i := 0; i < n; i++ {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(i, w, r) }))
		t.Cleanup(s.Close)
		out = append(out, s)
	}
	return out
}

// whoami answers with the replica's index.
func whoami(i int, w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	fmt.Fprint(w, i)
}

// testLogger logs to the test output only with NUBO_TEST_LOG set, and
// always into buf when buf is not nil.
func testLogger(t *testing.T, buf *syncBuffer) *slog.Logger {
	var hs []slog.Handler
	if os.Getenv("NUBO_TEST_LOG") != "" {
		hs = append(hs, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if buf != nil {
		hs = append(hs, slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if len(hs) == 0 {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewMultiHandler(hs...))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseConfig is a config with the given services (default traffic) in
// namespace "shop".
func baseConfig(t *testing.T, services ...string) Config {
	cfg := Config{Namespace: "shop", Services: map[string]ServiceConfig{}, Logger: testLogger(t, nil), EndpointRefresh: time.Hour}
	for _, s := range services {
		cfg.Services[s] = ServiceConfig{Port: 80}
	}
	return cfg
}

func startMesh(t *testing.T, cfg Config, eps Endpoints) *Mesh {
	t.Helper()
	m, err := New(cfg, eps)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return m
}

// proxyClient is an HTTP client of caller, through its HTTP_PROXY.
func proxyClient(t *testing.T, m *Mesh, caller string) *http.Client {
	t.Helper()
	p, err := m.ProxyURL(caller)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p)
	tr := &http.Transport{Proxy: http.ProxyURL(u), MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// call does one request and returns its status and body.
func call(t *testing.T, c *http.Client, method, u string, body io.Reader, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (int, string) {
	t.Helper()
	code, body, _ := call(t, c, http.MethodGet, u, nil, hdr...)
	return code, body
}

// counts tallies the bodies of n GETs of u.
func counts(t *testing.T, c *http.Client, u string, n int, hdr ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i := 0; i < n; i++ {
		code, body := get(t, c, u, hdr...)
		if code != http.StatusOK {
			out[strconv.Itoa(code)]++
			continue
		}
		out[body]++
	}
	return out
}

// chanceZ is the z of the mesh's statistical tests. At 5 standard
// deviations a correct count still fell outside about 6e-7 to 8e-7 of the
// time for the samples used here (computed exactly from the binomial
// distribution), and a test checking three replicas' counts about 1.9e-6:
// more than once in a million runs. At 5.5 the tests fail by chance less
// than 1.5e-7 of the time (random balancing's three checks of 900: 1.4e-7;
// the 90/10 split of 2000: 8.8e-8; the 30% abort of 1000: 4.7e-8), and the
// bounds still tell a 10% share from 6% or 14%.
const chanceZ = 5.5

// withinBinomial reports whether k successes of n trials are within z
// standard deviations of n*p: the bound of a statistical test (see
// chanceZ).
func withinBinomial(k, n int, p, z float64) bool {
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return float64(k) >= mean-z*sd && float64(k) <= mean+z*sd
}

// traffic builds a ServiceConfig with a traffic policy.
func traffic(tr spec.Traffic) ServiceConfig { return ServiceConfig{Port: 80, Traffic: tr} }

func dur(d time.Duration) spec.Duration { return spec.Duration{Duration: d, Text: d.String()} }

// gather returns the value of the istio_requests_total series whose labels
// include want.
func requestsTotal(t *testing.T, reg *prometheus.Registry, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "istio_requests_total" {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += mt.GetCounter().GetValue()
		}
	}
	return sum
}

// dialTo dials addr whatever host a URL names, as /etc/hosts would.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// listenLoopback listens on 127.0.0.1:0.
func listenLoopback(tb testing.TB) (net.Listener, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}
