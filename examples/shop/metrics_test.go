package shop_test

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/nubo-dev/nubo/internal/spec"
)

// scrapeLabels are the labels nubo's scraper adds to every series of a
// service (besides observability.metrics.labels), so the spec's queries may
// select on them although the programs do not write them.
var scrapeLabels = []string{"service", "replica", "instance", "job"}

// testMetrics runs the users service, scrapes it, and checks that its
// /metrics is valid Prometheus text, that its probe paths are the spec's, and
// that every metric and label the spec's alerts, dashboards and SLOs select
// is one the services expose.
func testMetrics(t *testing.T, app *spec.App, bins string) {
	users := start(t, filepath.Join(bins, "users"))
	call(t, "GET", users.url+"/users/nobody", nil, "").want(t, http.StatusNotFound, nil)
	call(t, "GET", users.url+"/users", nil, "").want(t, http.StatusOK, nil)
	call(t, "POST", users.url+"/users", nil, `{"email":"eve@shop.localhost"}`).want(t, http.StatusCreated, nil)
	for name, s := range app.Services {
		for kind, p := range map[string]*spec.Probe{"liveness": s.Health.Liveness, "readiness": s.Health.Readiness} {
			if p == nil || p.HTTP == nil {
				t.Errorf("services.%s.health.%s is not an HTTP probe", name, kind)
				continue
			}
			call(t, "GET", users.url+p.HTTP.Path, nil, "").want(t, http.StatusOK, nil)
		}
	}
	for _, s := range app.Observability.Metrics.Scrape {
		call(t, "GET", users.url+s.Path, nil, "").want(t, http.StatusOK, nil)
	}

	r := call(t, "GET", users.url+"/metrics", nil, "")
	r.want(t, http.StatusOK, nil)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type = %q, want the text exposition format 0.0.4", ct)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, r.body)
	}

	reqs, dur := families["http_requests_total"], families["http_request_duration_seconds"]
	if reqs == nil || reqs.GetType() != dto.MetricType_COUNTER || dur == nil || dur.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("/metrics lacks the counter http_requests_total or the histogram http_request_duration_seconds:\n%s", r.body)
	}
	counts, total := map[string]float64{}, 0.0
	for _, m := range reqs.GetMetric() {
		var code, method string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "code":
				code = l.GetValue()
			case "method":
				method = l.GetValue()
			default:
				t.Errorf("http_requests_total has label %s, want only code and method", l.GetName())
			}
		}
		counts[method+" "+code] = m.GetCounter().GetValue()
		total += m.GetCounter().GetValue()
	}
	for _, k := range []string{"GET 404", "GET 200", "POST 201"} {
		if counts[k] < 1 {
			t.Errorf("http_requests_total has no %s request: %v", k, counts)
		}
	}
	h := dur.GetMetric()[0].GetHistogram()
	if float64(h.GetSampleCount()) != total {
		t.Errorf("the histogram counted %d requests, http_requests_total %v", h.GetSampleCount(), total)
	}
	has300ms := false
	for _, b := range h.GetBucket() {
		has300ms = has300ms || b.GetUpperBound() == 0.3
	}
	if !has300ms {
		t.Errorf("no 0.3s bucket, the users SLO's latency threshold")
	}

	exposed := map[string]bool{}
	for name, f := range families {
		exposed[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			exposed[name+"_bucket"], exposed[name+"_sum"], exposed[name+"_count"] = true, true, true
		}
	}
	labels := append([]string{"code", "method", "le", model.MetricNameLabel}, scrapeLabels...)
	for path, expr := range specQueries(app) {
		checkQuery(t, path, expr, exposed, labels)
	}

	// Probes and scrapes were counted above, but they write no access line:
	// nubo makes them every few seconds and they would bury the rest. Once
	// the program has exited, its stdout is whole.
	users.stop(t)
	checkAccessLog(t, app, users, "GET", "/users", "200")
	for _, line := range users.lines(&users.stdout) {
		if f := strings.Fields(line); len(f) > 2 && slices.Contains([]string{"/healthz", "/readyz", "/metrics"}, f[2]) {
			t.Errorf("users logged a probe or a scrape: %q", line)
		}
	}
}

// specQueries returns the PromQL of the spec's alerts, dashboards and SLOs by
// field path; the SLO templates get a window. Database alerts are left out:
// their series come from the database exporters.
func specQueries(app *spec.App) map[string]string {
	o := app.Observability
	q := map[string]string{}
	for i, a := range o.Alerts {
		q[fmt.Sprintf("observability.alerts[%d].expr", i)] = a.Expr
	}
	for name, d := range o.Dashboards {
		for i, p := range d.Panels {
			for j, tg := range p.Targets {
				q[fmt.Sprintf("observability.dashboards.%s.panels[%d].targets[%d].expr", name, i, j)] = tg.Expr
			}
		}
	}
	for name, s := range o.SLOs {
		for i, ind := range s.Indicators {
			p := fmt.Sprintf("observability.slos.%s.indicators[%d]", name, i)
			for field, e := range map[string]string{"errors": ind.Errors, "total": ind.Total} {
				if e != "" {
					q[p+"."+field] = strings.ReplaceAll(e, "{{.window}}", "5m")
				}
			}
		}
	}
	return q
}

// checkQuery parses expr and checks every metric name and label it selects.
func checkQuery(t *testing.T, path, expr string, exposed map[string]bool, labels []string) {
	t.Helper()
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	selectors := 0
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		if !exposed[vs.Name] {
			t.Errorf("%s selects %s, which no service exposes", path, vs.Name)
		}
		for _, m := range vs.LabelMatchers {
			if !slices.Contains(labels, m.Name) {
				t.Errorf("%s selects on label %s, which no series has", path, m.Name)
			}
		}
		return nil
	})
	if selectors == 0 {
		t.Errorf("%s selects no series: %s", path, expr)
	}
}
