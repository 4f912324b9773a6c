package slo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/nubo-dev/nubo/internal/metrics"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

const sloSpec = `name: shop
services:
  users: {run: ./users}
observability:
  slos:
    users-availability:
      description: Users API answers, and fast
      objective: 99.9
      window: 7d
      labels: {team: users}
      indicators:
        - name: availability
          type: ratio
          errors: 'sum(rate(http_requests_total{service="users",code=~"5.."}[{{.window}}]))'
          total: 'sum(rate(http_requests_total{service="users"}[{{ .window }}]))'
        - name: fast-enough
          type: latency
          service: users
          threshold: 300ms
          weight: 0.5
      alerting:
        page: {severity: critical}
        ticket: {severity: warning}
    orders-availability:
      objective: 99
      window: 1d
      indicators:
        - name: availability
          type: ratio
          errors: 'sum(rate(http_requests_total{service="orders",code=~"5.."}[{{.window}}]))'
          total: 'sum(rate(http_requests_total{service="orders"}[{{.window}}]))'
    idle:
      objective: 99
      indicators:
        - {name: a, type: ratio, errors: 'sum(rate(idle_errors_total[{{.window}}]))', total: 'sum(rate(idle_total[{{.window}}]))'}
`

// end is when the SLOs are evaluated; the data ends there.
var end = time.Unix(1_700_000_040, 0)

// synthetic writes one sample a minute for 7 days and an hour before end:
//
//   - users: 600 requests a minute (10/s); 0.01% fail, except in the last
//     two hours (the last 120 one-minute increments), when 5% fail;
//   - users' latency histogram: 600 requests a minute, 0.1% slower than
//     300ms, always;
//   - orders: 600 requests a minute, none failed: no 5xx series exists.
//
// Each counter starts far from 0, so that rate() extrapolates the same way
// for errors and totals (and their ratio is exact).
func synthetic(t *testing.T, store *metrics.Store) {
	t.Helper()
	const minutes = 7*24*60 + 60
	type series struct {
		lset  labels.Labels
		start float64
		inc   func(k int) float64 // the increment ending k minutes before end
	}
	burst := func(k int) bool { return k < 120 }
	users := func(code string) labels.Labels {
		return labels.FromStrings("__name__", "http_requests_total", "service", "users", "code", code)
	}
	latency := func(name string, extra ...string) labels.Labels {
		return labels.FromStrings(append([]string{"__name__", name, "destination_service", "users.shop.svc.cluster.local"}, extra...)...)
	}
	all := []series{
		{users("500"), 1000, func(k int) float64 {
			if burst(k) {
				return 30 // 5% of 600
			}
			return 0.06 // 0.01% of 600
		}},
		{users("200"), 1e6, func(k int) float64 {
			if burst(k) {
				return 570
			}
			return 599.94
		}},
		{latency("istio_request_duration_milliseconds_count"), 5e5, func(int) float64 { return 600 }},
		{latency("istio_request_duration_milliseconds_bucket", "le", "300.0"), 4e5, func(int) float64 { return 599.4 }},
		{labels.FromStrings("__name__", "http_requests_total", "service", "orders", "code", "200"), 1e6, func(int) float64 { return 600 }},
	}
	app := store.Appender(context.Background())
	for _, s := range all {
		v := s.start
		for k := minutes; k >= 0; k-- {
			if k < minutes {
				v += s.inc(k)
			}
			ts := end.Add(-time.Duration(k) * time.Minute).UnixMilli()
			if _, err := app.Append(0, s.lset, 0, ts, v, nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestSLOFigures evaluates the generated rules on the synthetic data and
// checks the SLI, error budget, burn rates and alerts against figures
// worked out by hand.
func TestSLOFigures(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(sloSpec))
	if err != nil {
		t.Fatal(err)
	}
	store, err := metrics.OpenStore(metrics.StoreOptions{Dir: t.TempDir(), Retention: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	synthetic(t, store)
	groups, err := slo.RuleGroups(app)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := metrics.NewEvaluator(store, metrics.EvaluatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetRules(groups); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), end)

	// A window of W minutes holds W-1 one-minute increments (rate() reads
	// the samples in (end-W, end]); of those, the last 120 are the burst.
	// Error ratio of availability = (normal*0.0001 + burst*0.05) / (W-1):
	avail := map[string]float64{
		"5m":  0.05, // 4 increments, all in the burst
		"30m": 0.05, // 29
		"1h":  0.05, // 59
		"2h":  0.05, // 119
		"6h":  (239*0.0001 + 120*0.05) / 359,
		"1d":  (1319*0.0001 + 120*0.05) / 1439,
		"3d":  (4199*0.0001 + 120*0.05) / 4319,
		"1w":  (9959*0.0001 + 120*0.05) / 10079,
	}
	// Latency: 0.6 of 600 requests a minute are slow, in every window.
	const slow = 0.6 / 600
	// Weighted: (1 * availability + 0.5 * latency) / 1.5.
	combined := func(w string) float64 { return (avail[w] + 0.5*slow) / 1.5 }
	const budget = 1 - 0.999

	st, err := slo.NewReporter(app.Observability.SLOs, store.Query).Status(context.Background(), "users-availability", end)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil {
			t.Errorf("%s: no data, want %.9g", what, want)
			return
		}
		if math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.12g, want %.12g", what, *got, want)
		}
	}
	check("SLI", st.SLI, 1-combined("1w"))
	check("budget consumed", st.ErrorBudget.Consumed, combined("1w")/budget)
	check("budget remaining", st.ErrorBudget.Remaining, 1-combined("1w")/budget)
	check("budget remaining seconds", st.ErrorBudget.RemainingSeconds, (1-combined("1w")/budget)*budget*7*24*3600)
	if st.ErrorBudget.Total != budget || math.Abs(st.ErrorBudget.TotalSeconds-604.8) > 1e-9 {
		t.Errorf("budget total %v (%vs), want 0.001 (604.8s: 0.1%% of a week)", st.ErrorBudget.Total, st.ErrorBudget.TotalSeconds)
	}
	// By hand: 1w error ratio = (0.00069411 + 0.0005) / 1.5 = 0.00079607,
	// so 79.6% of the budget is spent and the SLI is 99.9204%.
	if r := *st.ErrorBudget.Remaining; math.Abs(r-0.20393) > 1e-4 {
		t.Errorf("remaining %.5f, want about 0.20393", r)
	}
	if len(st.Indicators) != 2 {
		t.Fatalf("indicators: %+v", st.Indicators)
	}
	check("availability SLI", st.Indicators[0].SLI, 1-avail["1w"])
	check("fast-enough SLI", st.Indicators[1].SLI, 1-slow)
	if st.Indicators[1].Weight != 0.5 || st.Indicators[1].Type != "latency" {
		t.Errorf("indicator %+v", st.Indicators[1])
	}
	var windows []string
	for _, br := range st.BurnRates {
		windows = append(windows, br.Window)
		check("burn rate "+br.Window, br.Rate, combined(br.Window)/budget)
	}
	if got := strings.Join(windows, " "); got != "5m 30m 1h 2h 6h 1d 3d 1w" {
		t.Errorf("burn-rate windows %s", got)
	}
	// Burn rates by hand: 5m-2h 33.67; 6h 11.52; 1d 3.17; 3d 1.32. Page:
	// 33.67 > 14.4 over 1h and 5m. Ticket: 3.17 > 3 over 1d with 33.67 > 3
	// over 2h.
	if got := fmt.Sprint(st.Alerts); got != "[{page slo:users-availability:page firing} {ticket slo:users-availability:ticket firing}]" {
		t.Errorf("alerts %s", got)
	}

	// The recorded series carry the SLO's labels.
	vec, err := store.Query(context.Background(), `slo:error_budget_remaining:ratio{slo="users-availability",team="users"}`, end)
	if err != nil || len(vec) != 1 {
		t.Fatalf("budget series: %v %v", vec, err)
	}
	check("slo:error_budget_remaining:ratio", &vec[0].F, 1-combined("1w")/budget)

	// orders has no 5xx series at all: no error is a ratio of 0, not no data.
	st, err = slo.NewReporter(app.Observability.SLOs, store.Query).Status(context.Background(), "orders-availability", end)
	if err != nil {
		t.Fatal(err)
	}
	check("orders SLI", st.SLI, 1)
	check("orders budget remaining", st.ErrorBudget.Remaining, 1)
	if fmt.Sprint(st.Alerts) != "[{page slo:orders-availability:page inactive} {ticket slo:orders-availability:ticket inactive}]" {
		t.Errorf("orders alerts %v", st.Alerts)
	}

	// idle has no traffic: no data, not a division by zero.
	st, err = slo.NewReporter(app.Observability.SLOs, store.Query).Status(context.Background(), "idle", end)
	if err != nil {
		t.Fatal(err)
	}
	if st.SLI != nil || st.ErrorBudget.Remaining != nil || st.BurnRates[0].Rate != nil || st.Window != "30d" {
		t.Errorf("idle: %+v", st)
	}
}

// TestHandler serves the SLOs' status as JSON.
func TestHandler(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(sloSpec))
	if err != nil {
		t.Fatal(err)
	}
	store, err := metrics.OpenStore(metrics.StoreOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(slo.NewReporter(app.Observability.SLOs, store.Query).Handler())
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/admin/v1/slos")
	var list struct {
		SLOs []slo.Status `json:"slos"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.SLOs) != 3 || list.SLOs[0].Name != "idle" {
		t.Fatalf("GET /admin/v1/slos: %d %v\n%s", code, err, body)
	}
	for _, want := range []string{`"sli":null`, `"errorBudget":{"total":0.01,"totalSeconds":25920,"consumed":null,"remaining":null,"remainingSeconds":null}`, `"burnRates":[{"window":"5m","rate":null}`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /admin/v1/slos lacks %s:\n%s", want, body)
		}
	}
	code, body = get("/admin/v1/slos/users-availability")
	if code != 200 || !strings.Contains(body, `"name":"users-availability","description":"Users API answers, and fast","objective":99.9,"window":"1w"`) {
		t.Errorf("GET one SLO: %d %s", code, body)
	}
	code, body = get("/admin/v1/slos/nope")
	if code != 404 || strings.TrimSpace(body) != `{"error":"no such SLO \"nope\" (SLOs: idle, orders-availability, users-availability)"}` {
		t.Errorf("GET unknown SLO: %d %s", code, body)
	}
}
