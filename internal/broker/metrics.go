package broker

import "github.com/prometheus/client_golang/prometheus"

// Metric names of the broker's health, for nubo's own /metrics; the
// built-in alert broker_degraded (internal/rulegroups) reads the first.
const (
	MetricDegraded    = "nubo_broker_degraded"
	MetricStoreErrors = "nubo_broker_store_errors_total"
	MetricRestarts    = "nubo_broker_restarts_total"
)

var (
	degradedDesc = prometheus.NewDesc(MetricDegraded,
		"1 while the embedded broker is degraded by a store failure (it restarts itself once file descriptors are free), else 0.", nil, nil)
	storeErrorsDesc = prometheus.NewDesc(MetricStoreErrors,
		"Store failures the embedded broker reported (a failed write, JetStream disabled).", nil, nil)
	restartsDesc = prometheus.NewDesc(MetricRestarts,
		"Restarts of the embedded broker's server after a store failure.", nil, nil)
)

// healthCollector exports the broker's health as it is at each scrape:
// the state lives in one place (health), so the metric and `nubo status`
// cannot disagree.
type healthCollector struct{ h *health }

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- degradedDesc
	ch <- storeErrorsDesc
	ch <- restartsDesc
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.h.snapshot()
	degraded := 0.0
	if s.State == StateDegraded {
		degraded = 1
	}
	ch <- prometheus.MustNewConstMetric(degradedDesc, prometheus.GaugeValue, degraded)
	ch <- prometheus.MustNewConstMetric(storeErrorsDesc, prometheus.CounterValue, float64(s.StoreErrors))
	ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(s.Recoveries))
}
