package rulegroups

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nubo-dev/nubo/internal/spec"
)

// CostGroup names the group of the cost series.
const CostGroup = "cost"

// Target is where the cost rules run: their usage series differ.
type Target int

const (
	// Local is nubo up: the supervisor's per-replica CPU and memory.
	Local Target = iota
	// Kubernetes is a cluster's Prometheus: cAdvisor's container series.
	Kubernetes
)

// costRules turns the spec's price list into recording rules of cost per
// hour, by service, function and the gateway, and their sum; with a monthly
// budget, an alert on the projected month (730 hours).
func costRules(app *spec.App, target Target) []rulefmt.Rule {
	c := app.Cost
	if c == nil {
		return nil
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	const gib = "1073741824"
	// CPU is priced from counters of CPU-seconds with rate(), never from a
	// gauge of cores: a gauge is a rate between two samples taken on
	// another clock than the scrape's, and its integral drifts when a
	// sample runs late (7.7% was seen under load). The window is five
	// minutes for a cluster's cAdvisor; locally four of whichever comes
	// less often, usage samples or scrapes (Prometheus' advice for
	// rate()), since the counter moves once a sample.
	window := "5m"
	var service string
	switch target {
	case Kubernetes:
		ns := app.Namespace
		service = fmt.Sprintf(`sum by (service) (label_replace(rate(container_cpu_usage_seconds_total{namespace=%q,container!="",container!="POD"}[5m]), "service", "$1", "container", "(.*)")) * %s`+
			` + sum by (service) (label_replace(container_memory_working_set_bytes{namespace=%q,container!="",container!="POD"}, "service", "$1", "container", "(.*)")) / %s * %s`,
			ns, num(c.VCPUHour), ns, gib, num(c.MemoryGiBHour))
	default:
		window = model.Duration(4 * max(app.Observability.Metrics.Interval.Duration, app.Local.Supervisor.SampleInterval.Duration, time.Second)).String()
		// Either part alone while the other has no series yet (a rate
		// needs two samples of a replica's counter): A + B or A or B.
		cpu := fmt.Sprintf(`sum by (service) (rate(nubo_replica_cpu_seconds_total[%s])) * %s`, window, num(c.VCPUHour))
		mem := fmt.Sprintf(`sum by (service) (nubo_replica_memory_rss_bytes) / %s * %s`, gib, num(c.MemoryGiBHour))
		service = fmt.Sprintf(`(%s + %s) or %[1]s or %[2]s`, cpu, mem)
	}
	function := fmt.Sprintf(`sum by (function) (rate(nubo_function_gb_seconds_total[%s])) * 3600 * %s + sum by (function) (rate(nubo_function_invocations_total[%s])) * 3600 / 1e6 * %s`,
		window, num(c.FunctionGBSecond), window, num(c.MillionInvocations))
	gateway := fmt.Sprintf(`sum(rate(nubo_gateway_requests_total[%s])) * 3600 / 1e6 * %s`, window, num(c.MillionRequests))
	rules := []rulefmt.Rule{
		{Record: "nubo:cost_per_hour:service", Expr: service},
		{Record: "nubo:cost_per_hour:function", Expr: function},
		{Record: "nubo:cost_per_hour:gateway", Expr: gateway},
		// Each part is absent without usage; 0 keeps the sum defined.
		{Record: "nubo:cost_per_hour", Expr: `(sum(nubo:cost_per_hour:service) or vector(0)) + (sum(nubo:cost_per_hour:function) or vector(0)) + (sum(nubo:cost_per_hour:gateway) or vector(0))`},
	}
	if c.MonthlyBudget > 0 {
		currency := c.Currency
		if currency == "" {
			currency = "USD"
		}
		rules = append(rules, rulefmt.Rule{
			Alert: "cost_over_budget", Expr: fmt.Sprintf(`nubo:cost_per_hour * 730 > %s`, num(c.MonthlyBudget)),
			For:         model.Duration(15 * 60 * 1e9),
			Labels:      map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": fmt.Sprintf("The projected month costs {{ $value | printf \"%%.2f\" }} %s, over the budget of %s", currency, num(c.MonthlyBudget))},
		})
	}
	return rules
}

// WindowCost returns, for each kind of cost (service, function, gateway),
// the PromQL of what it cost over the window ending at the query's time,
// from nubo up's usage series: the increase of the counters at the
// prices, and the resident memory summed over its scrapes. It is what
// nubo cost prints as the past window. Integrating the per-hour series
// instead would lose a rule evaluation's share of the cost for every
// evaluation missed and add rate()'s extrapolation at each step. The
// increase is anchored (Prometheus' extended range selector): the
// difference from the last sample before the window to the last in it,
// resets counted, with no extrapolation, which over a short window adds up
// to a scrape interval's share of the whole (an 8 s window's increase came
// out 14% high, a 46 s window's 2.5%).
func WindowCost(app *spec.App, window time.Duration) map[string]string {
	c := app.Cost
	if c == nil {
		return nil
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	w := model.Duration(window).String()
	scrape := app.Observability.Metrics.Interval.Duration.Seconds()
	return map[string]string{
		"service": fmt.Sprintf(`sum by (service) (increase(nubo_replica_cpu_seconds_total[%s] anchored)) / 3600 * %s + sum by (service) (sum_over_time(nubo_replica_memory_rss_bytes[%s])) * %s / 3600 / 1073741824 * %s`,
			w, num(c.VCPUHour), w, num(scrape), num(c.MemoryGiBHour)),
		"function": fmt.Sprintf(`sum by (function) (increase(nubo_function_gb_seconds_total[%s] anchored)) * %s + sum by (function) (increase(nubo_function_invocations_total[%s] anchored)) / 1e6 * %s`,
			w, num(c.FunctionGBSecond), w, num(c.MillionInvocations)),
		"gateway": fmt.Sprintf(`sum(increase(nubo_gateway_requests_total[%s] anchored)) / 1e6 * %s`, w, num(c.MillionRequests)),
	}
}
