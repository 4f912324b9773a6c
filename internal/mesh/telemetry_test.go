package mesh

import (
	"context"
	"fmt"
	"github.com/nubo-dev/nubo/internal/tracecontext"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
)

func TestIstioMetrics(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})...)
	eps.setRaw("empty")
	reg := prometheus.NewRegistry()
	cfg := baseConfig(t, "users", "empty")
	cfg.Metrics = reg
	cfg.Services["users"] = traffic(spec.Traffic{Retry: &spec.Retry{Attempts: 1, On: []string{"5xx"}}})
	cfg.Mesh.Policies = []*spec.Policy{{Name: "no-admin", To: "users", Action: "deny", When: []*spec.PolicyCondition{{Key: "request.path", Values: []string{"/admin*"}}}}}
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")
	for i := 0; i < 3; i++ {
		get(t, c, "http://users/")
	}
	get(t, c, "http://users/fail")
	get(t, c, "http://users/admin")
	get(t, c, "http://empty/")

	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{
			"reporter": "source", "source_workload": "orders", "source_workload_namespace": "shop",
			"source_principal": "spiffe://cluster.local/ns/shop/sa/orders", "source_app": "orders",
			"destination_workload": "users", "destination_workload_namespace": "shop",
			"destination_service": "users.shop.svc.cluster.local", "destination_service_name": "users",
			"destination_service_namespace": "shop", "destination_principal": "spiffe://cluster.local/ns/shop/sa/users",
			"request_protocol": "http", "response_code": "200", "response_flags": "-",
			"source_cluster": "Kubernetes", "connection_security_policy": "unknown",
		}, 3},
		// The source counts the request once, with the retry flag; the
		// destination counts both tries.
		{map[string]string{"reporter": "source", "response_code": "500", "response_flags": "URX"}, 1},
		{map[string]string{"reporter": "destination", "response_code": "500", "connection_security_policy": "mutual_tls"}, 2},
		{map[string]string{"reporter": "destination", "response_code": "403", "destination_service_name": "users"}, 1},
		{map[string]string{"reporter": "source", "response_code": "503", "response_flags": "UH", "destination_service_name": "empty"}, 1},
	} {
		if got := requestsTotal(t, reg, tc.labels); got != tc.want {
			t.Errorf("istio_requests_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	mfs, _ := reg.Gather()
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "istio_request_duration_milliseconds" {
			found = true
			if n := len(mf.GetMetric()[0].GetLabel()); n != len(istioLabels) {
				t.Errorf("duration histogram has %d labels, want %d", n, len(istioLabels))
			}
		}
	}
	if !found {
		t.Error("no istio_request_duration_milliseconds")
	}
}

func TestTracePropagation(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Traceparent"))
	})...)
	var mu sync.Mutex
	var spans []Span
	cfg := baseConfig(t, "users")
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")
	const in = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

	// Without a tracer, trace context passes through untouched.
	if _, got := get(t, c, "http://users/", "Traceparent", in); got != in {
		t.Errorf("no tracer: replica got %q, want %q", got, in)
	}
	if _, got := get(t, c, "http://users/"); got != "" {
		t.Errorf("no tracer and no traceparent: replica got %q", got)
	}

	cfg.Tracer = TracerFunc(func(s Span) {
		mu.Lock()
		spans = append(spans, s)
		mu.Unlock()
	})
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	_, got := get(t, c, "http://users/x", "Traceparent", in)
	tc, ok := tracecontext.Parse(got)
	if !ok || !strings.HasPrefix(got, "00-0af7651916cd43dd8448eb211c80319c-") || strings.Contains(got, "b7ad6b7169203331") || !strings.HasSuffix(got, "-01") {
		t.Fatalf("replica got traceparent %q: want the same trace, a new parent, sampled", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1", len(spans))
	}
	s := spans[0]
	if s.TraceIDString() != "0af7651916cd43dd8448eb211c80319c" || s.SpanID != tc.SpanID || fmt.Sprintf("%x", s.Parent) != "b7ad6b7169203331" ||
		s.Name != "users.shop.svc.cluster.local:80/*" || s.Status != 200 || s.Source != "orders" || s.Path != "/x" || s.Flags != "-" || s.Upstream == "" {
		t.Errorf("span %+v", s)
	}
	if s.End.Before(s.Start) {
		t.Errorf("span ends before it starts: %v %v", s.Start, s.End)
	}
}

func TestParseTraceparent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true},
		{"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future", true},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", false},
		{"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
		{"00-00000000000000000000000000000000-b7ad6b7169203331-01", false},
		{"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false},
		{"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", false},
		{"garbage", false},
	} {
		_, ok := tracecontext.Parse(tc.in)
		if ok != tc.ok {
			t.Errorf("parse %q ok = %v, want %v", tc.in, ok, tc.ok)
		}
		if ok && tc.in[:2] == "00" {
			p, _ := tracecontext.Parse(tc.in)
			if f := tracecontext.Format(p.TraceID, p.SpanID, p.Flags); f != tc.in {
				t.Errorf("round trip %q -> %q", tc.in, f)
			}
		}
	}
}

// TestUpdate reloads routes and policies without moving listeners; a bad
// configuration keeps the running one.
func TestUpdate(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v1") })...)
	eps.set("users-v2", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v2") })...)
	cfg := baseConfig(t, "users", "users-v2")
	m := startMesh(t, cfg, eps)
	proxy, _ := m.ProxyURL("orders")
	c := proxyClient(t, m, "orders")
	if got := counts(t, c, "http://users/", 5); got["v1"] != 5 {
		t.Fatalf("before: %v", got)
	}
	next := cfg
	next.Mesh.Routes = map[string][]*spec.RouteDestination{"users": {{Destination: "users-v2", Weight: 100}}}
	if err := m.Update(next); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, c, "http://users/", 5); got["v2"] != 5 {
		t.Errorf("after routing users to v2: %v", got)
	}
	bad := next
	bad.Mesh.Routes = map[string][]*spec.RouteDestination{"users": {{Destination: "nope", Weight: 100}}}
	if err := m.Update(bad); err == nil {
		t.Error("Update accepted a route to an unknown service")
	}
	if got := counts(t, c, "http://users/", 5); got["v2"] != 5 {
		t.Errorf("after a failed update: %v, want the previous routes", got)
	}
	if again, _ := m.ProxyURL("orders"); again != proxy {
		t.Errorf("proxy listener moved from %s to %s", proxy, again)
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	m, err := New(baseConfig(t, "users"), newFakeEndpoints())
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := m.ProxyURL("orders") // before Start: bound, served once started
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, http.DefaultClient, proxy+"/"); code != http.StatusBadRequest {
		t.Errorf("listener bound before Start answers %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := http.Get(proxy + "/"); err == nil {
		t.Error("listener still answers after Stop")
	}
	if _, err := m.ProxyURL("web"); err == nil {
		t.Error("ProxyURL after Stop succeeded")
	}
	var nilMesh *Mesh
	if err := nilMesh.Stop(ctx); err != nil {
		t.Errorf("nil Stop: %v", err)
	}
}
