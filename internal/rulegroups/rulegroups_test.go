package rulegroups

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nubo-dev/nubo/internal/spec"
)

func TestBuild(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(`name: shop
observability:
  metrics: {interval: 30s}
  alerts:
    - name: high_error_rate
      expr: 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05'
      for: 5m
      severity: critical
      labels: {team: users}
      annotations: {summary: "{{ $value | humanizePercentage }} of requests fail"}
  slos:
    avail:
      objective: 99.9
      indicators:
        - {name: a, type: ratio, errors: 'sum(rate(e[{{.window}}]))', total: 'sum(rate(t[{{.window}}]))'}
databases:
  users-db:
    type: postgres
    monitoring:
      alerts:
        - {name: users-db-connections-high, expr: 'pg_stat_activity_count > 80', for: 5m, severity: warning}
`))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := Build(app)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		names = append(names, fmt.Sprintf("%s/%s/%d", g.Name, g.Interval, len(g.Rules)))
	}
	if got, want := strings.Join(names, " "), "slo:avail/30s/29 alerts/30s/1 database:users-db/30s/1 nubo/30s/1"; got != want {
		t.Errorf("groups %s, want %s", got, want)
	}
	want := rulefmt.Rule{
		Alert: "high_error_rate", Expr: app.Observability.Alerts[0].Expr, For: model.Duration(5 * time.Minute),
		Labels:      map[string]string{"team": "users", "severity": "critical"},
		Annotations: map[string]string{"summary": "{{ $value | humanizePercentage }} of requests fail"},
	}
	if got := groups[1].Rules[0]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alert rule %+v, want %+v", got, want)
	}
	if got := groups[2].Rules[0].Labels; fmt.Sprint(got) != fmt.Sprint(map[string]string{"database": "users-db", "severity": "warning"}) {
		t.Errorf("database alert labels %v", got)
	}
	// nubo's own alerts are local: a cluster has no embedded broker.
	k8s, err := BuildFor(app, Kubernetes)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range k8s {
		if g.Name == BuiltinGroup {
			t.Errorf("the cluster's rules hold the local group %s", g.Name)
		}
	}
}
