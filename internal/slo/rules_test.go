package slo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestExpressions pins the generated expressions that
// docs/observability.md shows.
func TestExpressions(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(sloSpec))
	if err != nil {
		t.Fatal(err)
	}
	s := app.Observability.SLOs["users-availability"]
	g, err := slo.RuleGroup("users-availability", s, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string, indicator string) string {
		for _, r := range g.Rules {
			if r.Record+r.Alert == name && r.Labels["indicator"] == indicator {
				return r.Expr
			}
		}
		t.Fatalf("no rule %s %s", name, indicator)
		return ""
	}
	tests := []struct{ name, indicator, want string }{
		{"slo:indicator_errors:ratio_rate5m", "availability",
			`((sum(rate(http_requests_total{service="users",code=~"5.."}[5m]))) or (sum(rate(http_requests_total{service="users"}[5m]))) * 0) / ((sum(rate(http_requests_total{service="users"}[5m]))) > 0)`},
		{"slo:indicator_errors:ratio_rate1w", "fast-enough",
			`(sum(rate(istio_request_duration_milliseconds_count{destination_service=~"users(\\..*)?"}[1w])) - sum(rate(istio_request_duration_milliseconds_bucket{destination_service=~"users(\\..*)?",le="300.0"}[1w]))) / (sum(rate(istio_request_duration_milliseconds_count{destination_service=~"users(\\..*)?"}[1w])) > 0)`},
		{"slo:sli_errors:ratio_rate1h", "",
			`sum without (indicator) (1 * slo:indicator_errors:ratio_rate1h{slo="users-availability",indicator="availability"} or 0.5 * slo:indicator_errors:ratio_rate1h{slo="users-availability",indicator="fast-enough"}) / sum without (indicator) (0 * slo:indicator_errors:ratio_rate1h{slo="users-availability",indicator="availability"} + 1 or 0 * slo:indicator_errors:ratio_rate1h{slo="users-availability",indicator="fast-enough"} + 0.5)`},
		{"slo:objective:ratio", "", `vector(0.999)`},
		{"slo:error_budget:ratio", "", `vector(0.001)`},
		{"slo:error_budget_remaining:ratio", "", `1 - slo:sli_errors:ratio_rate1w{slo="users-availability"} / 0.001`},
		{"slo:burn_rate:6h", "", `slo:sli_errors:ratio_rate6h{slo="users-availability"} / 0.001`},
		{"slo:users-availability:page", "",
			`(slo:burn_rate:1h{slo="users-availability"} > 14.4 and slo:burn_rate:5m{slo="users-availability"} > 14.4) or (slo:burn_rate:6h{slo="users-availability"} > 6 and slo:burn_rate:30m{slo="users-availability"} > 6)`},
		{"slo:users-availability:ticket", "",
			`(slo:burn_rate:1d{slo="users-availability"} > 3 and slo:burn_rate:2h{slo="users-availability"} > 3) or (slo:burn_rate:3d{slo="users-availability"} > 1 and slo:burn_rate:6h{slo="users-availability"} > 1)`},
	}
	for _, tt := range tests {
		if got := find(tt.name, tt.indicator); got != tt.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tt.name, tt.indicator, got, tt.want)
		}
	}
	var page map[string]string
	for _, r := range g.Rules {
		if r.Alert == "slo:users-availability:page" {
			page = r.Labels
		}
	}
	if page["severity"] != "critical" || page["slo"] != "users-availability" || page["slo_alert"] != "page" || page["team"] != "users" {
		t.Errorf("page alert labels %v", page)
	}
	if got := len(g.Rules); got != 2*8+8+3+8+2 {
		t.Errorf("%d rules, want 37: 2 indicators and the combination over 8 windows, 3 budget rules, 8 burn rates, 2 alerts", got)
	}
}

func TestRuleGroupErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		slo  *spec.SLO
		want string
	}{
		{"objective", &spec.SLO{Objective: 100, Indicators: []*spec.Indicator{{Name: "a", Type: "ratio"}}}, `slo "s": objective 100 is not between 0 and 100`},
		{"no indicators", &spec.SLO{Objective: 99}, `slo "s": no indicators`},
		{"template", &spec.SLO{Objective: 99, Indicators: []*spec.Indicator{{Name: "a", Type: "ratio", Errors: "rate(x[{{.Window}}])", Total: "rate(x[5m])"}}},
			`slo "s": indicator "a": errors: unknown template {{.Window}}: only {{.window}} is replaced`},
	}
	for _, tt := range tests {
		_, err := slo.RuleGroup("s", tt.slo, time.Minute)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestLatencyBuckets(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(sloSpec+`    fast:
      objective: 99
      indicators:
        - {name: a, type: latency, service: users, threshold: 1.5s}
        - {name: b, type: latency, service: users, threshold: 300ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := slo.LatencyBuckets(app); len(got) != 2 || got[0] != 300 || got[1] != 1500 {
		t.Errorf("LatencyBuckets = %v, want [300 1500]", got)
	}
}
