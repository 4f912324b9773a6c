package cli

import (
	"context"
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

// TestSLOCommand prints SLOs read by the real reporter from rules the real
// evaluator recorded: 0.5% of requests fail, against a 99% objective over a
// day, so the budget burns at 0.5 and half of it is left. (The 3d window
// holds 25 hours of data; rate() extrapolates errors and totals alike, so
// the ratio is the same.)
func TestSLOCommand(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(`name: shop
observability:
  slos:
    checkout:
      description: Checkout answers
      objective: 99
      window: 1d
      indicators:
        - {name: availability, type: ratio, errors: 'sum(rate(req_errors_total[{{.window}}]))', total: 'sum(rate(req_total[{{.window}}]))'}
    idle:
      objective: 99.9
      indicators:
        - {name: a, type: ratio, errors: 'sum(rate(idle_errors_total[{{.window}}]))', total: 'sum(rate(idle_total[{{.window}}]))'}
`))
	if err != nil {
		t.Fatal(err)
	}
	store, err := metrics.OpenStore(metrics.StoreOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	end := time.Now().Truncate(time.Minute)
	appender := store.Appender(context.Background())
	for k := 25 * 60; k >= 0; k-- { // a sample a minute for 25 hours
		ts := end.Add(-time.Duration(k) * time.Minute).UnixMilli()
		n := float64(25*60 - k)
		for _, s := range []struct {
			name string
			v    float64
		}{{"req_total", 1e6 + 600*n}, {"req_errors_total", 1e3 + 3*n}} {
			if _, err := appender.Append(0, labels.FromStrings("__name__", s.name), 0, ts, s.v, nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := appender.Commit(); err != nil {
		t.Fatal(err)
	}
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
	srv := httptest.NewServer(slo.NewReporter(app.Observability.SLOs, store.Query).Handler())
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	r := runInProcess(t, "slo", "--addr", addr)
	want := strings.Join([]string{
		"SLO OBJECTIVE WINDOW SLI BUDGET LEFT BURN 5m BURN 30m BURN 1h BURN 2h BURN 6h BURN 1d BURN 3d ALERTS",
		"checkout 99% 1d 99.500% 50.0% (7m12s) 0.50 0.50 0.50 0.50 0.50 0.50 0.50 -",
		"idle 99.9% 30d - - - - - - - - - -",
		"",
	}, "\n")
	if r.code != 0 || collapse(r.stdout) != want {
		t.Errorf("nubo slo:\n%s\nwant stdout:\n%s", r, want)
	}

	r = runInProcess(t, "slo", "checkout", "--addr", addr)
	for _, line := range []string{
		"checkout: 99% over 1d",
		" Checkout answers",
		"SLI 99.500%; error budget 1.000% of events (14m24s of full outage per 1d), left 50.0% (7m12s)",
		"INDICATOR TYPE WEIGHT SLI",
		"availability ratio 1 99.500%",
		"1d 0.50",
		"alerts: -",
	} {
		if !strings.Contains(collapse(r.stdout), line+"\n") {
			t.Errorf("nubo slo NAME lacks %q:\n%s", line, r)
		}
	}

	if r := runInProcess(t, "slo", "-o", "json", "--addr", addr); r.code != 0 || !strings.HasPrefix(r.stdout, "{\n  \"slos\": [") {
		t.Errorf("-o json:\n%s", r)
	}
	if r := runInProcess(t, "slo", "nope", "--addr", addr); r.code != 1 || !strings.Contains(r.stderr, `nubo: no such SLO "nope" (SLOs: checkout, idle)`) {
		t.Errorf("unknown SLO:\n%s", r)
	}
}
