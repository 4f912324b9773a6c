package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/nubo-dev/nubo/internal/tracing"
)

// otlpRig is Metrics started on a temporary TSDB, the OTLP receiver with
// its /v1/metrics writing into it, and the Prometheus API, as the engine
// mounts them.
type otlpRig struct {
	m          *Metrics
	otlp, api  *httptest.Server
	instanceID string
}

func newOTLPRig(t *testing.T) *otlpRig {
	t.Helper()
	m, err := New(Config{Dir: t.TempDir(), Targets: TargetFunc(func() []Target { return nil }),
		Labels: map[string]string{"env": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &otlpRig{m: m}
	r.otlp = httptest.NewServer((&tracing.Receiver{Spans: func([]tracing.Span) {}, Metrics: m.WriteOTLP}).Handler())
	r.api = httptest.NewServer(m.Handler())
	t.Cleanup(func() {
		r.otlp.Close()
		r.api.Close()
		if err := m.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return r
}

// query runs an instant PromQL query through the HTTP API and returns its
// samples as "labels value" lines, sorted.
func (r *otlpRig) query(t *testing.T, expr string) []string {
	t.Helper()
	resp, err := http.Get(r.api.URL + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		t.Fatalf("%s: %v %s", expr, err, out.Error)
	}
	var lines []string
	for _, s := range out.Data.Result {
		keys := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k + "=" + s.Metric[k] + " ")
		}
		b.WriteString(s.Value[1].(string))
		lines = append(lines, b.String())
	}
	sort.Strings(lines)
	return lines
}

func equalLines(t *testing.T, expr string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got  %q\n want %q", expr, got, want)
	}
}

// TestOpenTelemetrySDKMetricsInPromQL runs a program that records a
// counter, a gauge and a histogram with the OpenTelemetry Go SDK and sends
// them with its OTLP/HTTP exporter (protobuf, gzip), configured by the
// environment nubo gives a workload; PromQL finds them under the names and
// labels Prometheus gives OTLP metrics.
func TestOpenTelemetrySDKMetricsInPromQL(t *testing.T) {
	r := newOTLPRig(t)
	bin := filepath.Join(t.TempDir(), "otelmetrics")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/otelmetrics").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+r.otlp.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "OTEL_SERVICE_NAME=orders",
		"OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop,service.instance.id=orders-0,deployment.environment.name=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("otelmetrics: %v\n%s", err, out)
	}

	// job is service.namespace/service.name and instance
	// service.instance.id, as Prometheus sets them; the counter gets
	// _total, the histogram its unit and classic bucket series.
	const env, id = "env=test ", "instance=orders-0 job=shop/orders "
	equalLines(t, "counter", r.query(t, "shop_orders_total"),
		"__name__=shop_orders_total "+env+id+"order_state=paid 5")
	equalLines(t, "gauge", r.query(t, "shop_queue_depth"),
		"__name__=shop_queue_depth "+env+id+"7")
	equalLines(t, "buckets", r.query(t, `http_server_request_duration_seconds_bucket{http_route="/orders"}`),
		"__name__=http_server_request_duration_seconds_bucket "+env+"http_route=/orders "+id+"le=+Inf 4",
		"__name__=http_server_request_duration_seconds_bucket "+env+"http_route=/orders "+id+"le=0.1 1",
		"__name__=http_server_request_duration_seconds_bucket "+env+"http_route=/orders "+id+"le=0.5 3",
		"__name__=http_server_request_duration_seconds_bucket "+env+"http_route=/orders "+id+"le=1 3")
	equalLines(t, "sum and count", r.query(t, `{__name__=~"http_server_request_duration_seconds_(sum|count)"}`),
		"__name__=http_server_request_duration_seconds_count "+env+"http_route=/orders "+id+"4",
		"__name__=http_server_request_duration_seconds_sum "+env+"http_route=/orders "+id+"2.55")
	equalLines(t, "quantile", r.query(t, `round(histogram_quantile(0.5, http_server_request_duration_seconds_bucket), 0.001)`),
		env+"http_route=/orders "+id+"0.3")
	// The other resource attributes are in target_info.
	got := r.query(t, `target_info{job="shop/orders"}`)
	if len(got) != 1 || !strings.Contains(got[0], "deployment_environment_name=local") || !strings.Contains(got[0], "telemetry_sdk_language=go") {
		t.Errorf("target_info %q", got)
	}
}

func postOTLP(t *testing.T, url, ct string, body []byte, gz bool) (int, []byte) {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(body)
		w.Close()
		body = buf.Bytes()
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/metrics", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestOTLPMetricsJSONAndPartialSuccess sends OTLP/JSON export requests: a
// cumulative sum is stored; a delta sum (which Prometheus refuses without
// a feature flag) and a sample older than its series' last are counted
// as rejected data points in a partial-success answer, and the rest of the
// request is kept. A body that does not decode is a 400.
func TestOTLPMetricsJSONAndPartialSuccess(t *testing.T) {
	r := newOTLPRig(t)
	now := time.Now()
	request := func(temporality pmetric.AggregationTemporality, at time.Time, v float64) []byte {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "billing")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		m := ms.AppendEmpty()
		m.SetName("invoices")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetDoubleValue(v)
		if temporality == pmetric.AggregationTemporalityDelta {
			d := ms.AppendEmpty()
			d.SetName("refunds")
			ds := d.SetEmptySum()
			ds.SetIsMonotonic(true)
			ds.SetAggregationTemporality(temporality)
			for range 2 {
				ds.DataPoints().AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(at))
			}
		}
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	answer := func(b []byte) pmetricotlp.ExportResponse {
		resp := pmetricotlp.NewExportResponse()
		if err := resp.UnmarshalJSON(b); err != nil {
			t.Fatalf("answer %s: %v", b, err)
		}
		return resp
	}

	code, b := postOTLP(t, r.otlp.URL, "application/json", request(pmetric.AggregationTemporalityDelta, now, 4), true)
	resp := answer(b)
	if code != 200 || resp.PartialSuccess().RejectedDataPoints() != 2 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), `"refunds"`) {
		t.Errorf("delta: %d %s", code, b)
	}
	equalLines(t, "json", r.query(t, "invoices_total"), "__name__=invoices_total env=test job=billing 4")

	code, b = postOTLP(t, r.otlp.URL, "application/json", request(pmetric.AggregationTemporalityCumulative, now.Add(-time.Minute), 3), false)
	resp = answer(b)
	if code != 200 || resp.PartialSuccess().RejectedDataPoints() != 1 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), "invoices_total: out of order") {
		t.Errorf("out of order: %d %s", code, b)
	}
	code, b = postOTLP(t, r.otlp.URL, "application/json", request(pmetric.AggregationTemporalityCumulative, now.Add(time.Second), 6), false)
	if resp := answer(b); code != 200 || resp.PartialSuccess().RejectedDataPoints() != 0 {
		t.Errorf("in order: %d %s", code, b)
	}
	if code, b := postOTLP(t, r.otlp.URL, "application/json", []byte(`{"resourceMetrics":[{`), false); code != 400 {
		t.Errorf("bad body: %d %s", code, b)
	}
}

// TestWriteOTLPBeforeStart refuses every data point with a reason rather
// than writing to a TSDB that is not open.
func TestWriteOTLPBeforeStart(t *testing.T) {
	m, err := New(Config{Dir: t.TempDir(), Targets: TargetFunc(func() []Target { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	if n, err := m.WriteOTLP(context.Background(), md); n != 1 || err == nil {
		t.Errorf("before start: %d, %v", n, err)
	}
}
