package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's series. Counters are labelled by kind
// (queue, topic, rule, schedule; bus for the published ones), name, and
// for topics the subscription's index. Pending and lag are read from
// JetStream at scrape time, so they never go stale.
//
// Counters are looked up again when a second dispatcher registers on the
// same registry (a reload), so they go on counting.
type metrics struct {
	reg          prometheus.Registerer
	publishedVec *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	acked        *prometheus.CounterVec
	redelivered  *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	filtered     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	queues       map[string]*consumerMetrics
	depth        *depthCollector
}

// consumerMetrics are the counters of one queue or route, bound once.
type consumerMetrics struct {
	delivered, acked, redelivered, deadLettered, filtered prometheus.Counter
	latency                                               prometheus.Observer
}

// routeMetrics are a route's counters.
type routeMetrics = consumerMetrics

var consumerLabels = []string{"kind", "name", "subscription"}

func newMetrics(reg prometheus.Registerer, d *Dispatcher) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{reg: reg, queues: map[string]*consumerMetrics{}}
	var err error
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		if err != nil {
			return c
		}
		if rerr := reg.Register(c); rerr != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(rerr, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					return existing
				}
			}
			err = fmt.Errorf("events: metrics: %w", rerr)
		}
		return c
	}
	m.publishedVec = counter("nubo_events_published_total", "Events stored in a queue, topic, the bus (kind bus) or fired by a schedule.", []string{"kind", "name"})
	m.delivered = counter("nubo_events_delivered_total", "Deliveries of events to a queue's workers or a route's target, retries included.", consumerLabels)
	m.acked = counter("nubo_events_acked_total", "Events acknowledged: taken by a worker or a target.", consumerLabels)
	m.redelivered = counter("nubo_events_redelivered_total", "Deliveries that were not an event's first.", consumerLabels)
	m.deadLettered = counter("nubo_events_dead_lettered_total", "Events moved to dead letters after failing.", consumerLabels)
	m.filtered = counter("nubo_events_filtered_total", "Events a subscription's or rule's filter (or a transform without output) skipped.", consumerLabels)
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nubo_events_delivery_latency_seconds",
		Help:    "Time from an event's publish to its acknowledgement.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12), // 0.5ms .. ~35min
	}, consumerLabels)
	if rerr := reg.Register(m.latency); rerr != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(rerr, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				m.latency = existing
			}
		} else if err == nil {
			err = fmt.Errorf("events: metrics: %w", rerr)
		}
	}
	if err != nil {
		return nil, err
	}
	for name := range d.queues {
		m.queues[name] = m.bind("queue", name, "")
	}
	for _, r := range d.routes {
		r.m = m.bind(r.kind, r.name, r.sub)
	}
	m.depth = &depthCollector{d: d}
	return m, nil
}

func (m *metrics) bind(kind, name, sub string) *consumerMetrics {
	return &consumerMetrics{
		delivered:    m.delivered.WithLabelValues(kind, name, sub),
		acked:        m.acked.WithLabelValues(kind, name, sub),
		redelivered:  m.redelivered.WithLabelValues(kind, name, sub),
		deadLettered: m.deadLettered.WithLabelValues(kind, name, sub),
		filtered:     m.filtered.WithLabelValues(kind, name, sub),
		latency:      m.latency.WithLabelValues(kind, name, sub),
	}
}

func (m *metrics) forQueue(name string) *consumerMetrics { return m.queues[name] }

func (m *metrics) published(to Destination) prometheus.Counter {
	return m.publishedVec.WithLabelValues(string(to.Kind), to.Name)
}

// registerDepth adds the scrape-time gauges; Start calls it and Stop
// takes them away, so that a reloaded dispatcher can add its own.
func (m *metrics) registerDepth() error {
	if err := m.reg.Register(m.depth); err != nil {
		return fmt.Errorf("events: metrics: %w", err)
	}
	return nil
}

func (m *metrics) unregisterDepth() { m.reg.Unregister(m.depth) }

var (
	descPending = prometheus.NewDesc("nubo_events_pending",
		"Events waiting or in flight: for a queue, the events it stores; for a route, those not yet acknowledged by its target.",
		consumerLabels, nil)
	descLag = prometheus.NewDesc("nubo_events_consumer_lag",
		"Events stored and not yet delivered to the queue's workers or the route's target.", consumerLabels, nil)
	descInFlight = prometheus.NewDesc("nubo_events_in_flight",
		"Events delivered and not yet acknowledged.", consumerLabels, nil)
)

// scrapeTimeout bounds the JetStream requests of one scrape.
const scrapeTimeout = 2 * time.Second

// depthCollector reads queue and route depths from JetStream at scrape time.
type depthCollector struct{ d *Dispatcher }

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descLag
	ch <- descInFlight
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	if _, err := d.jetStream(); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for _, name := range sortedKeys(d.queues) {
		st, err := d.queues[name].status(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.Messages), "queue", name, "")
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(st.Waiting), "queue", name, "")
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight), "queue", name, "")
	}
	for _, r := range d.routes {
		var lag uint64
		var inFlight int
		ok := true
		for _, src := range r.sources {
			if src.cons == nil {
				ok = false
				break
			}
			ci, err := src.cons.Info(ctx)
			if err != nil {
				ok = false
				break
			}
			lag += ci.NumPending
			inFlight += ci.NumAckPending
		}
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(lag)+float64(inFlight), r.kind, r.name, r.sub)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(lag), r.kind, r.name, r.sub)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(inFlight), r.kind, r.name, r.sub)
	}
}
