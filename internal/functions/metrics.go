package functions

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the per-function series. Counters and histograms are updated
// on the hot path through children resolved once per function; gauges are
// read from the pools at scrape time, so they never go stale.
type metrics struct {
	registered []prometheus.Collector // on reg, unregistered by Stop
	reg        prometheus.Registerer

	invocations      *prometheus.CounterVec
	errors           *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	coldStarts       *prometheus.CounterVec
	coldStartSeconds *prometheus.HistogramVec
	startFailures    *prometheus.CounterVec
	gbSeconds        *prometheus.CounterVec
	retries          *prometheus.CounterVec
	deadLetters      *prometheus.CounterVec
}

// poolMetrics are one function's children.
type poolMetrics struct {
	invocations      prometheus.Counter
	duration         prometheus.Observer
	coldStarts       prometheus.Counter
	coldStartSeconds prometheus.Observer
	startFailures    prometheus.Counter
	gbSeconds        prometheus.Counter
	retries          prometheus.Counter
	deadLetters      prometheus.Counter
	errors           map[string]prometheus.Counter // by reason
}

// Error reasons, the `reason` label of nubo_function_errors_total.
var errorReasons = []struct {
	kind   error
	reason string
}{
	{ErrFunction, "function"},
	{ErrTimeout, "timeout"},
	{ErrThrottled, "throttled"},
	{ErrOOMKilled, "oom_killed"},
	{ErrCrashed, "crashed"},
	{ErrStart, "start"},
	{ErrTooLarge, "too_large"},
	{ErrStopped, "stopped"},
}

// durationBuckets reach from a millisecond, a warm call's scale, to a
// minute.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics() *metrics {
	label := []string{"function"}
	m := &metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_invocations_total", Help: "Invocations of a function, successful or not.",
		}, label),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_errors_total", Help: "Failed invocations, by reason: function (a non-2xx answer), timeout, throttled, oom_killed, crashed, start, too_large, stopped, canceled.",
		}, []string{"function", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nubo_function_duration_seconds", Help: "Time a function took to answer an invocation (waiting for a slot or a cold start excluded).",
			Buckets: durationBuckets,
		}, label),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_cold_starts_total", Help: "Instances started.",
		}, label),
		coldStartSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nubo_function_cold_start_seconds", Help: "Time from an instance's process start until its port accepted connections.",
			Buckets: durationBuckets,
		}, label),
		startFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_start_failures_total", Help: "Instances that failed to start.",
		}, label),
		gbSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_gb_seconds_total", Help: "Memory (the function's memory, or 128Mi when unset, in GiB) times invocation duration: the pay-per-use figure.",
		}, label),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_retries_total", Help: "Retries of failed deliveries.",
		}, label),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_function_dead_letters_total", Help: "Events sent to a function's dead-letter queue.",
		}, label),
	}
	return m
}

// register registers the series and the pools' gauges; after the pools
// exist, as a scrape may come at once.
func (m *metrics) register(reg prometheus.Registerer, f *Functions) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.invocations, m.errors, m.duration, m.coldStarts, m.coldStartSeconds,
		m.startFailures, m.gbSeconds, m.retries, m.deadLetters, poolCollector{f}} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return fmt.Errorf("functions: register metrics: %w", err)
		}
		m.reg, m.registered = reg, append(m.registered, c)
	}
	return nil
}

// unregister removes the series, so that the next component (a reload)
// can register its own on the same registry.
func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

func (m *metrics) forPool(name string) *poolMetrics {
	pm := &poolMetrics{
		invocations:      m.invocations.WithLabelValues(name),
		duration:         m.duration.WithLabelValues(name),
		coldStarts:       m.coldStarts.WithLabelValues(name),
		coldStartSeconds: m.coldStartSeconds.WithLabelValues(name),
		startFailures:    m.startFailures.WithLabelValues(name),
		gbSeconds:        m.gbSeconds.WithLabelValues(name),
		retries:          m.retries.WithLabelValues(name),
		deadLetters:      m.deadLetters.WithLabelValues(name),
		errors:           map[string]prometheus.Counter{},
	}
	for _, r := range errorReasons {
		pm.errors[r.reason] = m.errors.WithLabelValues(name, r.reason)
	}
	pm.errors["canceled"] = m.errors.WithLabelValues(name, "canceled")
	return pm
}

// errorFor returns the counter of err's reason.
func (pm *poolMetrics) errorFor(err error) prometheus.Counter {
	for _, r := range errorReasons {
		if errors.Is(err, r.kind) {
			return pm.errors[r.reason]
		}
	}
	return pm.errors["canceled"]
}

var (
	descInstances = prometheus.NewDesc("nubo_function_instances", "Instances of a function, by state (starting, ready, draining).", []string{"function", "state"}, nil)
	descInUse     = prometheus.NewDesc("nubo_function_concurrency_in_use", "Invocations in flight.", []string{"function"}, nil)
	descCapacity  = prometheus.NewDesc("nubo_function_concurrency_capacity", "Slots of the ready instances (instances times concurrency).", []string{"function"}, nil)
	descQueued    = prometheus.NewDesc("nubo_function_queued", "Invocations waiting for a slot.", []string{"function"}, nil)
)

// poolCollector reads the gauges from the pools at scrape time.
type poolCollector struct{ f *Functions }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descInUse, descCapacity, descQueued} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.f.names {
		p := c.f.pools[name]
		p.mu.Lock()
		starting, ready, draining := p.countLocked(stateStarting), p.countLocked(stateReady), p.countLocked(stateDraining)
		inUse, queued := p.inUse, len(p.waiters)
		p.mu.Unlock()
		for state, n := range map[string]int{"starting": starting, "ready": ready, "draining": draining} {
			ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(n), name, state)
		}
		ch <- prometheus.MustNewConstMetric(descInUse, prometheus.GaugeValue, float64(inUse), name)
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(ready*p.conc), name)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(queued), name)
	}
}
