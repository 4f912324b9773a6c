package engine

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nubo-dev/nubo/internal/supervisor"
)

// engineMetrics are the engine's own series, on a registry of its own (no
// global state): counters updated from supervisor events, and gauges read
// from the supervisors' status at scrape time so they never go stale.
type engineMetrics struct {
	reg *prometheus.Registry
	// more are the registries of components that replace theirs on
	// reload (functions), gathered with reg.
	more          prometheus.Gatherers
	restarts      *prometheus.CounterVec
	probeFailures *prometheus.CounterVec
	builds        *prometheus.CounterVec
	scalings      *prometheus.CounterVec
}

func newEngineMetrics() *engineMetrics {
	m := &engineMetrics{
		reg: prometheus.NewRegistry(),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_service_restarts_total", Help: "Restarts of a service's replicas after an exit or a failed liveness probe.",
		}, []string{"service"}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_probe_failures_total", Help: "Failed probe attempts, by probe.",
		}, []string{"service", "probe"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_builds_total", Help: "Builds run, by result.",
		}, []string{"service", "result"}),
		scalings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_autoscaler_scalings_total", Help: "Replica count changes made by the autoscaler.",
		}, []string{"service"}),
	}
	m.reg.MustRegister(m.restarts, m.probeFailures, m.builds, m.scalings,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts what an event says.
func (m *engineMetrics) observe(ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.EventBackOff:
		m.restarts.WithLabelValues(ev.Service).Inc()
	case supervisor.EventUnhealthy:
		m.probeFailures.WithLabelValues(ev.Service, string(ev.Probe)).Inc()
	case supervisor.EventAutoscaled:
		m.scalings.WithLabelValues(ev.Service).Inc()
	}
}

// addGatherer adds a component's registry; before the console is built.
func (m *engineMetrics) addGatherer(g prometheus.Gatherer) { m.more = append(m.more, g) }

func (m *engineMetrics) handler() http.Handler {
	return promhttp.HandlerFor(append(prometheus.Gatherers{m.reg}, m.more...), promhttp.HandlerOpts{})
}

// statusCollector reports replica gauges from the supervisors at scrape time.
type statusCollector struct {
	statuses func() []supervisor.ServiceStatus
}

var (
	descReplicas = prometheus.NewDesc("nubo_service_replicas", "Replicas of a service by state.", []string{"service", "state"}, nil)
	descDesired  = prometheus.NewDesc("nubo_service_replicas_desired", "Replicas the supervisor keeps.", []string{"service"}, nil)
	descReady    = prometheus.NewDesc("nubo_service_replicas_ready", "Ready replicas of a service.", []string{"service"}, nil)
	descCPU      = prometheus.NewDesc("nubo_replica_cpu_cores", "CPU used by a replica's process group, in cores.", []string{"service", "replica"}, nil)
	descCPUTotal = prometheus.NewDesc("nubo_replica_cpu_seconds_total", "CPU time used by a replica's process groups, over its restarts.", []string{"service", "replica"}, nil)
	descRSS      = prometheus.NewDesc("nubo_replica_memory_rss_bytes", "Resident memory of a replica's process group.", []string{"service", "replica"}, nil)
	descRestarts = prometheus.NewDesc("nubo_replica_restarts", "Restarts of a replica, as kubectl shows them.", []string{"service", "replica"}, nil)
)

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReplicas, descDesired, descReady, descCPU, descCPUTotal, descRSS, descRestarts} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.statuses() {
		byState := map[supervisor.State]int{}
		for _, r := range s.Replicas {
			byState[r.State]++
			idx := strconv.Itoa(r.Index)
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.GaugeValue, float64(r.Restarts), s.Name, idx)
			if r.Usage != nil {
				ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, r.Usage.CPU, s.Name, idx)
				ch <- prometheus.MustNewConstMetric(descCPUTotal, prometheus.CounterValue, r.Usage.CPUSeconds, s.Name, idx)
				ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(r.Usage.RSS), s.Name, idx)
			}
		}
		for state, n := range byState {
			ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(n), s.Name, string(state))
		}
		ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(s.Desired), s.Name)
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(s.Ready), s.Name)
	}
}
