package gateway

import (
	"bufio"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestObservability checks the metrics per route, stage, status and
// authorizer result, one structured access-log record per request, and a
// span per request with the trace context passed to the backend.
func TestObservability(t *testing.T) {
	t.Parallel()
	users := newEchoBackend(t)
	var mu sync.Mutex
	var spans []Span
	tg := startGateway(t, apiKeySpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"orders": users.URL})
		c.Secrets = partnerSecrets
		c.Tracer = TracerFunc(func(s Span) { mu.Lock(); spans = append(spans, s); mu.Unlock() })
	})
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := call(t, "GET", tg.url+"/orders", "", "X-Api-Key", "acme-key-0123456789", "Traceparent", parent)
	if r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	tp := r.seen(t).Headers["Traceparent"]
	if len(tp) != 1 || !strings.HasPrefix(tp[0], "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp[0], "00f067aa0ba902b7") {
		t.Errorf("backend's traceparent %q: want the trace, with the gateway's span as parent", tp)
	}
	call(t, "GET", tg.url+"/orders", "", "X-Api-Key", "wrong")
	call(t, "GET", tg.url+"/orders", "")
	call(t, "GET", tg.url+"/nothing", "")

	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"$default", "/orders", "GET", "200"}, 1},
		{[]string{"$default", "/orders", "GET", "403"}, 1},
		{[]string{"$default", "/orders", "GET", "401"}, 1},
		{[]string{"$default", "", "GET", "404"}, 1},
	} {
		if got := testutil.ToFloat64(tg.g.met.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests %v: %g, want %g", c.labels, got, c.want)
		}
	}
	for result, want := range map[string]float64{"allowed": 1, "denied": 1, "unauthorized": 1, "error": 0} {
		if got := testutil.ToFloat64(tg.g.met.auth.WithLabelValues("partners", result)); got != want {
			t.Errorf("authorizer result %s: %g, want %g", result, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(tg.reg, MetricDuration); err != nil || n == 0 {
		t.Errorf("%s: %d series, %v", MetricDuration, n, err)
	}

	var records []map[string]any
	sc := bufio.NewScanner(strings.NewReader(tg.logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "gateway: access" {
			records = append(records, rec)
		}
	}
	if len(records) != 4 {
		t.Fatalf("%d access records, want 4:\n%s", len(records), tg.logs.String())
	}
	first := records[0]
	for k, want := range map[string]any{"method": "GET", "path": "/orders", "stage": "$default", "route": "/orders", "status": 200.0,
		"authorizer": "partners", "auth": "allowed", "principal": "acme", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"} {
		if first[k] != want {
			t.Errorf("access record %s: %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["duration_ms"].(float64); !ok {
		t.Errorf("access record without duration_ms: %v", first)
	}
	if records[1]["auth"] != "denied" || records[1]["reason"] == nil {
		t.Errorf("denied record: %v", records[1])
	}

	mu.Lock()
	defer mu.Unlock()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	s := spans[0]
	if s.Name != "GET /orders" || s.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent != [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7} ||
		s.Status != 200 || s.AuthResult != "allowed" || s.Integration != "service" || !strings.Contains(tp[0], s.SpanIDString()) {
		t.Errorf("span %+v", s)
	}
	if spans[3].Name != "GET" || spans[3].Status != 404 || spans[3].Parent != [8]byte{} {
		t.Errorf("span of an unrouted request: %+v", spans[3])
	}
}
