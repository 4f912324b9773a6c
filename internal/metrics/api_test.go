package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// t0 is where the synthetic series of the API tests begin: 2023-11-14T22:13:20Z.
const t0 = 1_700_000_000

// appendSeries writes samples of one series every step from t0.
func appendSeries(t testing.TB, s *Store, lset labels.Labels, step time.Duration, values ...float64) {
	t.Helper()
	app := s.Appender(context.Background())
	for i, v := range values {
		ts := time.Unix(t0, 0).Add(time.Duration(i) * step).UnixMilli()
		if _, err := app.Append(0, lset, 0, ts, v, nil, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestAPIShapes checks every endpoint's document, byte for byte, against the
// shapes Prometheus documents (prometheus.io/docs/prometheus/latest/querying/api/).
func TestAPIShapes(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	appendSeries(t, store, labels.FromStrings("__name__", "http_requests_total", "job", "users", "code", "200"), 15*time.Second, 1, 2, 3, 4, 5)
	appendSeries(t, store, labels.FromStrings("__name__", "http_requests_total", "job", "users", "code", "500"), 15*time.Second, 0, 0, 1, 1, 2)
	appendSeries(t, store, labels.FromStrings("__name__", "up", "job", "orders"), 15*time.Second, 1, 1, 1, 1, 1)
	srv := httptest.NewServer(NewAPI(store, nil, nil, nil))
	t.Cleanup(srv.Close)

	tests := []struct {
		name   string
		method string
		path   string
		params url.Values
		code   int
		want   string
	}{
		{
			"instant vector", "GET", "/api/v1/query", url.Values{"query": {`http_requests_total{code="500"}`}, "time": {"1700000060"}}, 200,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"http_requests_total","code":"500","job":"users"},"value":[1700000060,"2"]}]}}`,
		},
		{
			"instant vector by POST, RFC 3339 time", "POST", "/api/v1/query", url.Values{"query": {`sum by (job) (http_requests_total)`}, "time": {"2023-11-14T22:14:20Z"}}, 200,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"users"},"value":[1700000060,"7"]}]}}`,
		},
		{
			"scalar", "GET", "/api/v1/query", url.Values{"query": {`1 + 1`}, "time": {"1700000000.5"}}, 200,
			`{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"2"]}}`,
		},
		{
			"string", "GET", "/api/v1/query", url.Values{"query": {`"nubo"`}, "time": {"1700000000"}}, 200,
			`{"status":"success","data":{"resultType":"string","result":[1700000000,"nubo"]}}`,
		},
		{
			"empty vector", "GET", "/api/v1/query", url.Values{"query": {`nothing_here`}, "time": {"1700000000"}}, 200,
			`{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			"range", "GET", "/api/v1/query_range", url.Values{"query": {`http_requests_total{code="200"}`}, "start": {"1700000000"}, "end": {"1700000030"}, "step": {"15s"}}, 200,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"http_requests_total","code":"200","job":"users"},"values":[[1700000000,"1"],[1700000015,"2"],[1700000030,"3"]]}]}}`,
		},
		{
			"range with a float step and a limit", "POST", "/api/v1/query_range", url.Values{"query": {`http_requests_total`}, "start": {"1700000000"}, "end": {"1700000015"}, "step": {"15"}, "limit": {"1"}}, 200,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"http_requests_total","code":"200","job":"users"},"values":[[1700000000,"1"],[1700000015,"2"]]}]},"warnings":["results truncated due to limit"]}`,
		},
		{
			"series", "GET", "/api/v1/series", url.Values{"match[]": {`http_requests_total`, `up`}}, 200,
			`{"status":"success","data":[{"__name__":"http_requests_total","code":"200","job":"users"},{"__name__":"http_requests_total","code":"500","job":"users"},{"__name__":"up","job":"orders"}]}`,
		},
		{
			"labels", "GET", "/api/v1/labels", nil, 200,
			`{"status":"success","data":["__name__","code","job"]}`,
		},
		{
			"labels of a match", "POST", "/api/v1/labels", url.Values{"match[]": {`up`}}, 200,
			`{"status":"success","data":["__name__","job"]}`,
		},
		{
			"label values", "GET", "/api/v1/label/job/values", nil, 200,
			`{"status":"success","data":["orders","users"]}`,
		},
		{
			"metric names, as Grafana asks", "GET", "/api/v1/label/__name__/values", url.Values{"start": {"1700000000"}, "end": {"1700000060"}}, 200,
			`{"status":"success","data":["http_requests_total","up"]}`,
		},
		{
			"label values of a match", "GET", "/api/v1/label/code/values", url.Values{"match[]": {`{code="500"}`}}, 200,
			`{"status":"success","data":["500"]}`,
		},
		{
			"exemplars", "GET", "/api/v1/query_exemplars", url.Values{"query": {"up"}}, 200,
			`{"status":"success","data":[]}`,
		},
		{
			"rules without an evaluator", "GET", "/api/v1/rules", nil, 200,
			`{"status":"success","data":{"groups":[]}}`,
		},
		{
			"alerts without an evaluator", "GET", "/api/v1/alerts", nil, 200,
			`{"status":"success","data":{"alerts":[]}}`,
		},
		{
			"targets without a scraper", "GET", "/api/v1/targets", nil, 200,
			`{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}`,
		},
		{
			"parse error", "GET", "/api/v1/query", url.Values{"query": {`sum(`}}, 400,
			`{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}`,
		},
		{
			// PromQL's info annotations go under infos, its warnings under
			// warnings, as web/api/v1 writes them.
			"info annotation", "GET", "/api/v1/query", url.Values{"query": {`rate(up[1m])`}, "time": {"1700000060"}}, 200,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"orders"},"value":[1700000060,"0"]}]},"infos":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\" (1:6)"]}`,
		},
		{
			"warning annotation", "GET", "/api/v1/query", url.Values{"query": {`histogram_quantile(0.9, http_requests_total)`}, "time": {"1700000060"}}, 200,
			`{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["PromQL warning: bucket label \"le\" is missing or has a malformed value of \"\" (1:25)"]}`,
		},
		{
			"execution error", "GET", "/api/v1/query", url.Values{"query": {`label_replace(http_requests_total, "code", "x", "", "")`}, "time": {"1700000060"}}, 422,
			`{"status":"error","errorType":"execution","error":"vector cannot contain metrics with the same labelset"}`,
		},
		{
			"bad time", "GET", "/api/v1/query", url.Values{"query": {`up`}, "time": {"yesterday"}}, 400,
			`{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp"}`,
		},
		{
			"end before start", "GET", "/api/v1/query_range", url.Values{"query": {`up`}, "start": {"1700000060"}, "end": {"1700000000"}, "step": {"15"}}, 400,
			`{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must not be before start time"}`,
		},
		{
			"zero step", "GET", "/api/v1/query_range", url.Values{"query": {`up`}, "start": {"1700000000"}, "end": {"1700000060"}, "step": {"0"}}, 400,
			`{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"}`,
		},
		{
			"too many points", "GET", "/api/v1/query_range", url.Values{"query": {`up`}, "start": {"1700000000"}, "end": {"1700086400"}, "step": {"1"}}, 400,
			`{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}`,
		},
		{
			"series without match", "GET", "/api/v1/series", nil, 400,
			`{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}`,
		},
		{
			"empty matcher", "GET", "/api/v1/series", url.Values{"match[]": {`{job=~".*"}`}}, 400,
			`{"status":"error","errorType":"bad_data","error":"match[] must contain at least one non-empty matcher"}`,
		},
		{
			"unknown endpoint", "GET", "/api/v1/admin/tsdb/snapshot", nil, 404,
			`{"status":"error","errorType":"not_found","error":"GET /api/v1/admin/tsdb/snapshot: not served by nubo's Prometheus API"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			var err error
			if tt.method == "POST" {
				resp, err = http.PostForm(srv.URL+tt.path, tt.params)
			} else {
				resp, err = http.Get(srv.URL + tt.path + "?" + tt.params.Encode())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || strings.TrimSpace(string(body)) != tt.want {
				t.Errorf("%s %s: %d\n%s\nwant %d\n%s", tt.method, tt.path, resp.StatusCode, body, tt.code, tt.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestBuildInfo(t *testing.T) {
	t.Parallel()
	for mod, want := range map[string]string{"v0.316.0": "3.16.0", "v0.300.1": "3.0.1", "v0.54.1": "3.0.0", "v2.0.0": "3.0.0"} {
		if got := prometheusVersion(mod); got != want {
			t.Errorf("prometheusVersion(%q) = %q, want %q", mod, got, want)
		}
	}
	code, env, body := apiGet(t, NewAPI(openStore(t), nil, nil, nil), "/api/v1/status/buildinfo", nil)
	if code != 200 || env.Status != "success" || !strings.Contains(body, `"version":"3.`) {
		t.Errorf("buildinfo: %d %s", code, body)
	}
}

// TestAPIBeforeStart answers 503 while the store is not open.
func TestAPIBeforeStart(t *testing.T) {
	t.Parallel()
	m, err := New(Config{Dir: t.TempDir(), Targets: TargetFunc(func() []Target { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	code, env, _ := apiGet(t, m.Handler(), "/api/v1/query", url.Values{"query": {"up"}})
	if code != http.StatusServiceUnavailable || env.ErrorType != "unavailable" {
		t.Errorf("before start: %d %+v", code, env)
	}
}
