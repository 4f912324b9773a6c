// Package slo turns the spec's SLOs into Prometheus rules and reads their
// state back. Each SLO becomes one rule group: recording rules for the
// error ratio of each indicator and of their weighted combination over the
// windows of Google's SRE workbook (5m, 30m, 1h, 2h, 6h, 1d, 3d) and the
// SLO's own window, for the error budget and for the burn rates; and the
// workbook's multi-window, multi-burn-rate alerts, page (14.4x over 1h and
// 5m, 6x over 6h and 30m) and ticket (3x over 1d and 2h, 1x over 3d and 6h).
// The same groups run in `nubo up` (internal/metrics evaluates them) and
// are rendered as PrometheusRule objects for Kubernetes.
//
// docs/observability.md documents every generated series and expression.
package slo

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Windows are the windows the error ratio is recorded over besides the
// SLO's own: those of the burn-rate alerts.
func Windows() []time.Duration {
	return []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}
}

// BurnRateCondition is one window pair of a multi-window, multi-burn-rate
// alert: the alert fires when the burn rate exceeds Factor over both Long
// and Short.
type BurnRateCondition struct {
	// Class is alerting.SLOPage or alerting.SLOTicket.
	Class string
	// Factor is the burn rate, a multiple of the rate that spends the
	// budget in exactly the window.
	Factor float64
	// Long shows that the budget is really burning; Short that it still is.
	Long, Short time.Duration
}

// BurnRateConditions are the SRE workbook's four conditions.
func BurnRateConditions() []BurnRateCondition {
	return []BurnRateCondition{
		{alerting.SLOPage, 14.4, time.Hour, 5 * time.Minute},
		{alerting.SLOPage, 6, 6 * time.Hour, 30 * time.Minute},
		{alerting.SLOTicket, 3, 24 * time.Hour, 2 * time.Hour},
		{alerting.SLOTicket, 1, 72 * time.Hour, 6 * time.Hour},
	}
}

// WindowString writes a window as PromQL does: 5m, 1h, 1d, 30d.
func WindowString(d time.Duration) string { return model.Duration(d).String() }

// IndicatorErrorsMetric names the error ratio of one indicator over a
// window. Every recorded series carries the label slo (the SLO's name) and
// the SLO's labels; the indicators' carry indicator too.
func IndicatorErrorsMetric(window string) string { return "slo:indicator_errors:ratio_rate" + window }

// ErrorsMetric is the weighted error ratio of all indicators over a window.
func ErrorsMetric(window string) string { return "slo:sli_errors:ratio_rate" + window }

// BurnRateMetric is the error ratio over a window divided by the budget.
func BurnRateMetric(window string) string { return "slo:burn_rate:" + window }

// The constant and budget series.
const (
	ObjectiveMetric       = "slo:objective:ratio"
	BudgetMetric          = "slo:error_budget:ratio"
	BudgetRemainingMetric = "slo:error_budget_remaining:ratio"
)

// The labels of the generated series.
const (
	SLOLabel       = "slo"
	IndicatorLabel = "indicator"
	AlertClass     = "slo_alert"
)

// LatencyMetric is the request-duration histogram of latency indicators:
// Istio's, which nubo's mesh writes under the same name and labels
// locally.
const LatencyMetric = "istio_request_duration_milliseconds"

// RuleGroups returns one rule group per SLO of app, by name, evaluated at
// observability.metrics.interval.
func RuleGroups(app *spec.App) ([]rulefmt.RuleGroup, error) {
	names := make([]string, 0, len(app.Observability.SLOs))
	for name := range app.Observability.SLOs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]rulefmt.RuleGroup, 0, len(names))
	for _, name := range names {
		g, err := RuleGroup(name, app.Observability.SLOs[name], app.Observability.Metrics.Interval.Duration)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// GroupName names an SLO's rule group.
func GroupName(slo string) string { return "slo:" + slo }

// RuleGroup builds the rules of one SLO, in evaluation order: indicators,
// their combination, objective and budget, burn rates, then the alerts.
func RuleGroup(name string, s *spec.SLO, interval time.Duration) (rulefmt.RuleGroup, error) {
	if s.Objective <= 0 || s.Objective >= 100 {
		return rulefmt.RuleGroup{}, fmt.Errorf("slo %q: objective %g is not between 0 and 100", name, s.Objective)
	}
	if len(s.Indicators) == 0 {
		return rulefmt.RuleGroup{}, fmt.Errorf("slo %q: no indicators", name)
	}
	windows := allWindows(s)
	base := sloLabels(name, s)
	sel := selector(base)
	budget := BudgetRatio(s)
	g := rulefmt.RuleGroup{Name: GroupName(name), Interval: model.Duration(interval)}

	for _, ind := range s.Indicators {
		lbls := maps.Clone(base)
		lbls[IndicatorLabel] = ind.Name
		for _, w := range windows {
			expr, err := IndicatorExpr(ind, WindowString(w))
			if err != nil {
				return rulefmt.RuleGroup{}, fmt.Errorf("slo %q: indicator %q: %w", name, ind.Name, err)
			}
			g.Rules = append(g.Rules, rulefmt.Rule{Record: IndicatorErrorsMetric(WindowString(w)), Expr: expr, Labels: lbls})
		}
	}
	for _, w := range windows {
		ws := WindowString(w)
		g.Rules = append(g.Rules, rulefmt.Rule{Record: ErrorsMetric(ws), Expr: combineExpr(name, s, ws), Labels: base})
	}
	g.Rules = append(g.Rules,
		rulefmt.Rule{Record: ObjectiveMetric, Expr: fmt.Sprintf("vector(%s)", num(roundRatio(s.Objective/100))), Labels: base},
		rulefmt.Rule{Record: BudgetMetric, Expr: fmt.Sprintf("vector(%s)", num(budget)), Labels: base},
		rulefmt.Rule{
			Record: BudgetRemainingMetric, Labels: base,
			Expr: fmt.Sprintf("1 - %s%s / %s", ErrorsMetric(WindowString(Window(s))), sel, num(budget)),
		},
	)
	for _, w := range windows {
		ws := WindowString(w)
		g.Rules = append(g.Rules, rulefmt.Rule{Record: BurnRateMetric(ws), Expr: fmt.Sprintf("%s%s / %s", ErrorsMetric(ws), sel, num(budget)), Labels: base})
	}
	for _, class := range []string{alerting.SLOPage, alerting.SLOTicket} {
		g.Rules = append(g.Rules, alertRule(name, s, class, base, sel))
	}
	return g, nil
}

// Window is the SLO's window, 30d when the spec leaves it out.
func Window(s *spec.SLO) time.Duration {
	if s.Window.Duration > 0 {
		return s.Window.Duration
	}
	return 30 * 24 * time.Hour
}

// allWindows are Windows and the SLO's window, without a repeat.
func allWindows(s *spec.SLO) []time.Duration {
	ws := Windows()
	window := Window(s)
	for _, w := range ws {
		if w == window {
			return ws
		}
	}
	return append(ws, window)
}

func sloLabels(name string, s *spec.SLO) map[string]string {
	l := maps.Clone(s.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[SLOLabel] = name
	return l
}

// selector is {slo="NAME"}: the SLO's series need no other matcher, since
// its name is unique.
func selector(base map[string]string) string {
	return fmt.Sprintf("{%s=%s}", SLOLabel, strconv.Quote(base[SLOLabel]))
}

// BudgetRatio is an SLO's error budget as a ratio: 1 - objective, 0.001 for
// 99.9. It is rounded to 12 decimals, so that 99.9 gives 0.001 and not the
// 0.0009999999999998899 of float arithmetic.
func BudgetRatio(s *spec.SLO) float64 { return roundRatio((100 - s.Objective) / 100) }

func roundRatio(f float64) float64 { return math.Round(f*1e12) / 1e12 }

// num writes a number as PromQL reads it back exactly.
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// windowTemplate matches {{.window}} as the spec's validator does.
var windowTemplate = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

// IndicatorExpr is the error ratio of one indicator over window:
//
//	ratio:   (ERRORS or TOTAL * 0) / (TOTAL > 0)
//	latency: (COUNT - BUCKET{le=THRESHOLD}) / (COUNT > 0)
//
// with {{.window}} replaced in ERRORS and TOTAL. "or TOTAL * 0" stands in
// for an errors expression with no series (no error has happened yet), and
// "> 0" leaves the ratio out, rather than NaN, while there is no traffic.
func IndicatorExpr(ind *spec.Indicator, window string) (string, error) {
	switch ind.Type {
	case "ratio":
		errs, err := expandWindow(ind.Errors, window)
		if err != nil {
			return "", fmt.Errorf("errors: %w", err)
		}
		total, err := expandWindow(ind.Total, window)
		if err != nil {
			return "", fmt.Errorf("total: %w", err)
		}
		return fmt.Sprintf("((%s) or (%s) * 0) / ((%s) > 0)", errs, total, total), nil
	case "latency":
		slow, total := LatencyExprs(ind.Service, ind.Threshold.Duration, window)
		return fmt.Sprintf("(%s) / (%s > 0)", slow, total), nil
	}
	return "", fmt.Errorf("unknown indicator type %q", ind.Type)
}

func expandWindow(expr, window string) (string, error) {
	var bad string
	out := windowTemplate.ReplaceAllStringFunc(expr, func(m string) string {
		if inner := windowTemplate.FindStringSubmatch(m)[1]; inner != ".window" {
			bad = m
			return m
		}
		return window
	})
	if bad != "" {
		return "", fmt.Errorf("unknown template %s: only {{.window}} is replaced", bad)
	}
	return out, nil
}

// LatencyExprs are the rates of slow and of all requests to service over
// window, from Istio's request-duration histogram: a request is slow when
// it is not in the bucket whose upper bound is the threshold, in
// milliseconds and written as Prometheus 3 normalizes bucket bounds
// (le="300.0"). destination_service matches both the local name (users) and
// Kubernetes' (users.shop.svc.cluster.local).
func LatencyExprs(service string, threshold time.Duration, window string) (slow, total string) {
	dest := fmt.Sprintf(`destination_service=~%s`, strconv.Quote(regexp.QuoteMeta(service)+`(\..*)?`))
	le := labels.FormatOpenMetricsFloat(float64(threshold) / float64(time.Millisecond))
	total = fmt.Sprintf("sum(rate(%s_count{%s}[%s]))", LatencyMetric, dest, window)
	bucket := fmt.Sprintf("sum(rate(%s_bucket{%s,le=%s}[%s]))", LatencyMetric, dest, strconv.Quote(le), window)
	return total + " - " + bucket, total
}

// LatencyBuckets are the bucket bounds, in milliseconds, that the latency
// indicators of app need in the request-duration histograms: each
// threshold, sorted. The mesh and the gateway add them to their buckets.
func LatencyBuckets(app *spec.App) []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, s := range app.Observability.SLOs {
		for _, ind := range s.Indicators {
			if ind.Type != "latency" || !ind.Threshold.IsSet() {
				continue
			}
			ms := float64(ind.Threshold.Duration) / float64(time.Millisecond)
			if !seen[ms] {
				seen[ms] = true
				out = append(out, ms)
			}
		}
	}
	sort.Float64s(out)
	return out
}

// combineExpr is the weighted mean of the indicators' error ratios, over
// the indicators that have data:
//
//	sum without (indicator) (W1 * I1 or W2 * I2)
//	/
//	sum without (indicator) (0 * I1 + W1 or 0 * I2 + W2)
//
// One indicator alone is sum without (indicator) (I1).
func combineExpr(name string, s *spec.SLO, window string) string {
	series := func(ind *spec.Indicator) string {
		return fmt.Sprintf("%s{%s=%s,%s=%s}", IndicatorErrorsMetric(window), SLOLabel, strconv.Quote(name), IndicatorLabel, strconv.Quote(ind.Name))
	}
	if len(s.Indicators) == 1 {
		return fmt.Sprintf("sum without (%s) (%s)", IndicatorLabel, series(s.Indicators[0]))
	}
	var weighted, weights []string
	for _, ind := range s.Indicators {
		w := 1.0
		if ind.Weight != nil {
			w = *ind.Weight
		}
		weighted = append(weighted, fmt.Sprintf("%s * %s", num(w), series(ind)))
		weights = append(weights, fmt.Sprintf("0 * %s + %s", series(ind), num(w)))
	}
	return fmt.Sprintf("sum without (%s) (%s) / sum without (%s) (%s)",
		IndicatorLabel, strings.Join(weighted, " or "), IndicatorLabel, strings.Join(weights, " or "))
}

// alertRule is one class of burn-rate alert: its two window pairs joined
// with or, as the SRE workbook writes it.
func alertRule(name string, s *spec.SLO, class string, base map[string]string, sel string) rulefmt.Rule {
	var conds []string
	var text []string
	for _, c := range BurnRateConditions() {
		if c.Class != class {
			continue
		}
		long, short := WindowString(c.Long), WindowString(c.Short)
		conds = append(conds, fmt.Sprintf("(%s%s > %s and %s%s > %s)", BurnRateMetric(long), sel, num(c.Factor), BurnRateMetric(short), sel, num(c.Factor)))
		text = append(text, fmt.Sprintf("%sx over %s and %s", num(c.Factor), long, short))
	}
	lbls := maps.Clone(base)
	lbls[AlertClass] = class
	sev := "critical"
	route := s.Alerting.Page
	if class == alerting.SLOTicket {
		sev, route = "warning", s.Alerting.Ticket
	}
	if route != nil && route.Severity != "" {
		sev = route.Severity
	}
	lbls["severity"] = sev
	return rulefmt.Rule{
		Alert:  alerting.SLOAlertName(name, class),
		Expr:   strings.Join(conds, " or "),
		Labels: lbls,
		Annotations: map[string]string{
			"summary": fmt.Sprintf("SLO %s burns its error budget {{ $value | humanize }}x too fast", name),
			"description": fmt.Sprintf("SLO %s (%s%% over %s) spends its error budget faster than %s.",
				name, num(s.Objective), WindowString(Window(s)), strings.Join(text, ", or ")),
		},
	}
}
