package rulegroups

import (
	"fmt"
	"strconv"

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
	var service string
	switch target {
	case Kubernetes:
		ns := app.Namespace
		service = fmt.Sprintf(`sum by (service) (label_replace(rate(container_cpu_usage_seconds_total{namespace=%q,container!="",container!="POD"}[5m]), "service", "$1", "container", "(.*)")) * %s`+
			` + sum by (service) (label_replace(container_memory_working_set_bytes{namespace=%q,container!="",container!="POD"}, "service", "$1", "container", "(.*)")) / %s * %s`,
			ns, num(c.VCPUHour), ns, gib, num(c.MemoryGiBHour))
	default:
		service = fmt.Sprintf(`sum by (service) (nubo_replica_cpu_cores) * %s + sum by (service) (nubo_replica_memory_rss_bytes) / %s * %s`,
			num(c.VCPUHour), gib, num(c.MemoryGiBHour))
	}
	function := fmt.Sprintf(`sum by (function) (rate(nubo_function_gb_seconds_total[5m])) * 3600 * %s + sum by (function) (rate(nubo_function_invocations_total[5m])) * 3600 / 1e6 * %s`,
		num(c.FunctionGBSecond), num(c.MillionInvocations))
	gateway := fmt.Sprintf(`sum(rate(nubo_gateway_requests_total[5m])) * 3600 / 1e6 * %s`, num(c.MillionRequests))
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
