package metrics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// TestStatusEndpoints checks the endpoints of web/api/v1 beyond queries:
// those nubo serves, with Prometheus' documents, and those of features nubo
// does not have, with the answer Prometheus gives when the feature is off.
func TestStatusEndpoints(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	store, err := OpenStore(StoreOptions{Dir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// Samples of a minute ago, beside those scraped now: a head that spans
	// less than a block, so that no compaction changes its statistics
	// while the test reads them.
	start := time.Now().Add(-time.Minute).UnixMilli()
	app := store.Appender(context.Background())
	for _, lset := range []labels.Labels{
		labels.FromStrings("__name__", "http_requests_total", "job", "users", "code", "200"),
		labels.FromStrings("__name__", "up", "job", "orders"),
	} {
		if _, err := app.Append(0, lset, 0, start, 1, nil, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	good := startService(t)
	sc, err := NewScraper(store, ScrapeOptions{
		Targets: TargetFunc(func() []Target {
			return []Target{
				{URL: good.srv.URL + "/metrics", Labels: map[string]string{"job": "users", "instance": good.srv.Listener.Addr().String(), "replica": "0"}},
				{URL: good.srv.URL + "/internal/metrics", Labels: map[string]string{"job": "orders", "instance": good.srv.Listener.Addr().String()}},
			}
		}),
		Labels:   map[string]string{"cluster": "local"},
		Interval: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	sc.Scrape(context.Background())
	ev, err := NewEvaluator(store, EvaluatorOptions{Interval: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewAPI(store, ev, sc, nil))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path string
		params             url.Values
		code               int
		want               string // the whole body, or with check, a part of it
		check              func(t *testing.T, data json.RawMessage)
	}{
		{name: "format_query", method: "GET", path: "/api/v1/format_query", params: url.Values{"query": {"foo+bar"}}, code: 200,
			want: `{"status":"success","data":"foo + bar"}`},
		{name: "format_query by POST", method: "POST", path: "/api/v1/format_query", params: url.Values{"query": {`sum by(job)(rate(x[5m]))`}}, code: 200,
			want: `{"status":"success","data":"sum by (job) (rate(x[5m]))"}`},
		{name: "format_query of a bad query", method: "GET", path: "/api/v1/format_query", params: url.Values{"query": {"invalid_expression/"}}, code: 400,
			want: `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:20: parse error: unexpected end of input"}`},
		{name: "parse_query", method: "GET", path: "/api/v1/parse_query", params: url.Values{"query": {`-up{job="x"} offset 1m`}}, code: 200,
			want: `{"status":"success","data":{"expr":{"anchored":false,"matchers":[{"name":"job","type":"=","value":"x"},{"name":"__name__","type":"=","value":"up"}],"name":"up","offset":60000,"offsetExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"op":"-","type":"unaryExpr"}}`},
		{name: "status/config", method: "GET", path: "/api/v1/status/config", code: 200, check: func(t *testing.T, data json.RawMessage) {
			var doc struct{ YAML string }
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(doc.YAML, nil)
			if err != nil {
				t.Fatalf("Prometheus does not load the configuration: %v\n%s", err, doc.YAML)
			}
			g := cfg.GlobalConfig
			if g.ScrapeInterval.String() != "30s" || g.EvaluationInterval.String() != "30s" || g.ExternalLabels.Get("cluster") != "local" {
				t.Errorf("global: %+v", g)
			}
			var jobs []string
			for _, sc := range cfg.ScrapeConfigs {
				jobs = append(jobs, sc.JobName)
			}
			if strings.Join(jobs, ",") != "orders,users" || cfg.RuleFiles[0] != "nubo.yaml" {
				t.Errorf("jobs %v, rule files %v", jobs, cfg.RuleFiles)
			}
			if !strings.Contains(doc.YAML, "__metrics_path__: /internal/metrics") || !strings.Contains(doc.YAML, `replica: "0"`) {
				t.Errorf("the targets' labels are missing:\n%s", doc.YAML)
			}
		}},
		{name: "status/flags", method: "GET", path: "/api/v1/status/flags", code: 200, want: `"storage.tsdb.retention.time":"15d"`, check: func(t *testing.T, data json.RawMessage) {
			var flags map[string]string
			if err := json.Unmarshal(data, &flags); err != nil || flags["query.lookback-delta"] != "5m" || flags["web.enable-admin-api"] != "false" {
				t.Errorf("flags %v (%v)", flags, err)
			}
		}},
		{name: "status/runtimeinfo", method: "GET", path: "/api/v1/status/runtimeinfo", code: 200, want: `"reloadConfigSuccess":true`, check: func(t *testing.T, data json.RawMessage) {
			var ri runtimeInfo
			if err := json.Unmarshal(data, &ri); err != nil || ri.StartTime.IsZero() || ri.GOMAXPROCS < 1 || ri.StorageRetention != "15d" {
				t.Errorf("runtime info %+v (%v)", ri, err)
			}
		}},
		{name: "status/tsdb", method: "GET", path: "/api/v1/status/tsdb", params: url.Values{"limit": {"1"}}, code: 200, check: func(t *testing.T, data json.RawMessage) {
			var st tsdbStatus
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatal(err)
			}
			if st.HeadStats.NumSeries < 5 || st.HeadStats.ChunkCount < 1 || len(st.SeriesCountByMetricName) != 1 || st.HeadStats.MinTime != start {
				t.Errorf("tsdb status %+v", st)
			}
		}},
		{name: "status/tsdb limit", method: "GET", path: "/api/v1/status/tsdb", params: url.Values{"limit": {"0"}}, code: 400,
			want: `{"status":"error","errorType":"bad_data","error":"limit must be a positive number"}`},
		{name: "status/tsdb/blocks", method: "GET", path: "/api/v1/status/tsdb/blocks", code: 200,
			want: `{"status":"success","data":{"blocks":[]}}`},
		{name: "status/walreplay", method: "GET", path: "/api/v1/status/walreplay", code: 200,
			want: `{"status":"success","data":{"current":0,"max":0,"min":0}}`},
		{name: "scrape_pools", method: "GET", path: "/api/v1/scrape_pools", code: 200,
			want: `{"status":"success","data":{"scrapePools":["orders","users"]}}`},
		{name: "targets/metadata", method: "GET", path: "/api/v1/targets/metadata", params: url.Values{"match_target": {`{job="users"}`}}, code: 200,
			want: `{"status":"success","data":[]}`},
		{name: "alertmanagers", method: "GET", path: "/api/v1/alertmanagers", code: 200,
			want: `{"status":"success","data":{"activeAlertmanagers":[],"droppedAlertmanagers":[]}}`},
		{name: "notifications", method: "GET", path: "/api/v1/notifications", code: 200,
			want: `{"status":"success","data":[]}`},
		{name: "live notifications", method: "GET", path: "/api/v1/notifications/live", code: 204, want: ``},
		{name: "admin API", method: "POST", path: "/api/v1/admin/tsdb/snapshot", code: 503,
			want: `{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}`},
		{name: "admin API by PUT", method: "PUT", path: "/api/v1/admin/tsdb/delete_series", params: url.Values{"match[]": {"up"}}, code: 503,
			want: `{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}`},
		{name: "remote write", method: "POST", path: "/api/v1/write", code: 404,
			want: `remote write receiver needs to be enabled with --web.enable-remote-write-receiver`},
		{name: "OTLP", method: "POST", path: "/api/v1/otlp/v1/metrics", code: 404,
			want: `otlp write receiver needs to be enabled with --web.enable-otlp-receiver`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			u := srv.URL + tt.path
			if tt.method == "GET" {
				u += "?" + tt.params.Encode()
			} else {
				body = strings.NewReader(tt.params.Encode())
			}
			req, err := http.NewRequest(tt.method, u, body)
			if err != nil {
				t.Fatal(err)
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got := strings.TrimSpace(string(b))
			if resp.StatusCode != tt.code {
				t.Fatalf("%s %s: %d, want %d\n%s", tt.method, tt.path, resp.StatusCode, tt.code, got)
			}
			if tt.check == nil && got != tt.want {
				t.Errorf("%s %s:\n%s\nwant\n%s", tt.method, tt.path, got, tt.want)
			}
			if tt.check != nil {
				if !strings.Contains(got, tt.want) {
					t.Errorf("%s %s: %s\nwant it to contain %s", tt.method, tt.path, got, tt.want)
				}
				var env apiEnvelope
				if err := json.Unmarshal(b, &env); err != nil || env.Status != "success" {
					t.Fatalf("%s %s: %v\n%s", tt.method, tt.path, err, got)
				}
				tt.check(t, env.Data)
			}
		})
	}
}
