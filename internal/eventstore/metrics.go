package eventstore

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's series. The projections' position and lag are
// read at scrape time (projectionCollector), so they never go stale.
// Collectors already registered by a previous store on the same registry
// (a reload) are taken over, so counters go on counting.
type metrics struct {
	appends     *prometheus.CounterVec
	appended    prometheus.Counter
	appendTime  prometheus.Histogram
	readTime    prometheus.Histogram
	snapshots   *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	projections *projectionCollector
}

// latencyBuckets cover 50µs to ~3s.
var latencyBuckets = prometheus.ExponentialBuckets(0.00005, 3, 11)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appends: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_eventstore_appends_total",
			Help: "Appends by result: ok, duplicate (a retried append), conflict (wrong expected version or id), invalid, error.",
		}, []string{"result"})),
		appended: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nubo_eventstore_events_appended_total",
			Help: "Events stored by appends.",
		})),
		appendTime: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nubo_eventstore_append_duration_seconds", Help: "Time to store an append, acknowledged on disk.", Buckets: latencyBuckets,
		})),
		readTime: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nubo_eventstore_read_duration_seconds", Help: "Time to read a page of a stream or of all streams.", Buckets: latencyBuckets,
		})),
		snapshots: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_eventstore_snapshots_total",
			Help: "Snapshots asked of a snapshot's handler, by result (stored, failed).",
		}, []string{"snapshot", "result"})),
		deliveries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nubo_eventstore_projection_deliveries_total",
			Help: "Batches delivered to a projection's handler, by result (ok, failed).",
		}, []string{"projection", "result"})),
	}
	m.projections = &projectionCollector{}
	if reg != nil {
		// A previous store's collector stays registered after a reload;
		// its source is switched instead.
		if err := reg.Register(m.projections); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if old, ok := are.ExistingCollector.(*projectionCollector); ok {
					m.projections = old
				}
			}
		}
	}
	return m
}

// register registers c, or returns the collector of the same description
// registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

func (m *metrics) observeAppend(start time.Time, n int, dup bool, err error) {
	result := "ok"
	var wv *WrongVersionError
	var ic *IDConflictError
	switch {
	case err == nil && dup:
		result = "duplicate"
	case err == nil:
		m.appended.Add(float64(n))
	case errors.As(err, &wv) || errors.As(err, &ic):
		result = "conflict"
	case errors.Is(err, ErrInvalid):
		result = "invalid"
	default:
		result = "error"
	}
	m.appends.WithLabelValues(result).Inc()
	m.appendTime.Observe(time.Since(start).Seconds())
}

func (m *metrics) observeRead(start time.Time) { m.readTime.Observe(time.Since(start).Seconds()) }
