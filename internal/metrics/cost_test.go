package metrics

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestCostRules evaluates the cost rules of a price list on known usage
// and compares each cost series with the hand-computed figure.
func TestCostRules(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(`name: priced
cost: {vcpuHour: 0.04, memoryGiBHour: 0.005, functionGBSecond: 0.0000166667, millionInvocations: 0.2, millionRequests: 1, monthlyBudget: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := rulegroups.Build(app)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	const step = 15 * time.Second
	n := 41 // ten minutes
	series := func(name string, lbls []string, v func(i int) float64) {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = v(i)
		}
		appendSeries(t, store, labels.FromStrings(append([]string{"__name__", name}, lbls...)...), step, vals...)
	}
	// Service api: 1.5 cores and 2 GiB over two replicas.
	series("nubo_replica_cpu_seconds_total", []string{"service", "api", "replica", "0"}, func(i int) float64 { return float64(i) * 1 * 15 })
	series("nubo_replica_cpu_seconds_total", []string{"service", "api", "replica", "1"}, func(i int) float64 { return float64(i) * 0.5 * 15 })
	series("nubo_replica_memory_rss_bytes", []string{"service", "api", "replica", "0"}, func(int) float64 { return 1 << 30 })
	series("nubo_replica_memory_rss_bytes", []string{"service", "api", "replica", "1"}, func(int) float64 { return 1 << 30 })
	// Function resize: 2 GB-seconds and 10 invocations a second.
	series("nubo_function_gb_seconds_total", []string{"function", "resize"}, func(i int) float64 { return float64(i) * 2 * 15 })
	series("nubo_function_invocations_total", []string{"function", "resize"}, func(i int) float64 { return float64(i) * 10 * 15 })
	// The gateway: 100 requests a second.
	series("nubo_gateway_requests_total", []string{"route", "/x"}, func(i int) float64 { return float64(i) * 100 * 15 })

	ev, err := NewEvaluator(store, EvaluatorOptions{Interval: step})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetRules(groups); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(t0, 0).Add(time.Duration(n-1) * step)
	ev.Evaluate(context.Background(), at)
	value := func(expr string) float64 {
		t.Helper()
		vec, err := store.Query(context.Background(), expr, at)
		if err != nil || len(vec) != 1 {
			t.Fatalf("%s: %v %v", expr, vec, err)
		}
		return vec[0].F
	}
	service := 1.5*0.04 + 2*0.005
	function := 2*3600*0.0000166667 + 10*3600/1e6*0.2
	gateway := 100 * 3600 / 1e6 * 1.0
	for expr, want := range map[string]float64{
		`nubo:cost_per_hour:service{service="api"}`:      service,
		`nubo:cost_per_hour:function{function="resize"}`: function,
		`nubo:cost_per_hour:gateway`:                     gateway,
		`nubo:cost_per_hour`:                             service + function + gateway,
	} {
		if got := value(expr); math.Abs(got-want) > want*1e-9 {
			t.Errorf("%s = %g, want %g", expr, got, want)
		}
	}
	// (0.07 + 0.192 + 0.36) * 730 = 454 a month, over the budget of 10.
	if alerts := ev.Alerts(); len(alerts) != 1 || alerts[0].Name() != "cost_over_budget" {
		t.Errorf("alerts: %+v", alerts)
	}
}
