// Package rulegroups turns a spec's SLOs, alerts and databases' alerts into
// Prometheus rule groups. It is the one translation both `nubo up` (the
// metrics component evaluates the groups) and `nubo render` (it writes them
// as PrometheusRule objects) use, kept apart from the metrics component so
// that rendering does not link the TSDB.
package rulegroups

import (
	"maps"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// AlertsGroup names the group of observability.alerts.
const AlertsGroup = "alerts"

// DatabaseGroup names the group of a database's monitoring.alerts.
func DatabaseGroup(db string) string { return "database:" + db }

// Build returns every rule group nubo evaluates for app, in evaluation
// order: each SLO's recording rules and burn-rate alerts (first, so that
// alerts written on the SLO series see this pass's values), then
// observability.alerts, then each database's monitoring.alerts (labelled
// database=NAME), the cost rules, and locally nubo's own alerts
// (BuiltinGroup). `nubo render` writes the same groups, but nubo's own, as
// PrometheusRule objects.
func Build(app *spec.App) ([]rulefmt.RuleGroup, error) { return BuildFor(app, Local) }

// BuildFor is Build for a target: the cost rules read different usage
// series in a cluster.
func BuildFor(app *spec.App, target Target) ([]rulefmt.RuleGroup, error) {
	interval := model.Duration(app.Observability.Metrics.Interval.Duration)
	groups, err := slo.RuleGroups(app)
	if err != nil {
		return nil, err
	}
	if len(app.Observability.Alerts) > 0 {
		groups = append(groups, rulefmt.RuleGroup{Name: AlertsGroup, Interval: interval, Rules: alertRules(app.Observability.Alerts, nil)})
	}
	dbs := make([]string, 0, len(app.Databases))
	for name, db := range app.Databases {
		if len(db.Monitoring.Alerts) > 0 {
			dbs = append(dbs, name)
		}
	}
	sort.Strings(dbs)
	for _, name := range dbs {
		groups = append(groups, rulefmt.RuleGroup{
			Name: DatabaseGroup(name), Interval: interval,
			Rules: alertRules(app.Databases[name].Monitoring.Alerts, map[string]string{"database": name}),
		})
	}
	if rules := costRules(app, target); len(rules) > 0 {
		g := rulefmt.RuleGroup{Name: CostGroup, Interval: interval, Rules: rules}
		if target == Local && interval > 0 {
			// A scrape's samples carry its start time but land when it
			// ends: an evaluation at that moment misses the newest sample
			// of its rate() window, and a cost integrated over the
			// evaluations comes out short (18% with 1s scrapes). Reading
			// one interval back, as Prometheus' query_offset does, sees
			// every window whole.
			offset := interval
			g.QueryOffset = &offset
		}
		groups = append(groups, g)
	}
	if target == Local {
		groups = append(groups, rulefmt.RuleGroup{Name: BuiltinGroup, Interval: interval, Rules: builtinRules()})
	}
	return groups, nil
}

// alertRules converts the spec's alert rules; severity becomes a label.
func alertRules(rules []*spec.AlertRule, extra map[string]string) []rulefmt.Rule {
	out := make([]rulefmt.Rule, 0, len(rules))
	for _, r := range rules {
		lbls := maps.Clone(r.Labels)
		if lbls == nil {
			lbls = map[string]string{}
		}
		maps.Copy(lbls, extra)
		if r.Severity != "" {
			lbls["severity"] = r.Severity
		}
		if len(lbls) == 0 {
			lbls = nil
		}
		out = append(out, rulefmt.Rule{
			Alert: r.Name, Expr: r.Expr, For: model.Duration(r.For.Duration),
			Labels: lbls, Annotations: maps.Clone(r.Annotations),
		})
	}
	return out
}
