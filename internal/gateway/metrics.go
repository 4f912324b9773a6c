package gateway

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the gateway. Durations are in milliseconds with Istio's
// buckets, as the mesh's are, so that dashboards and SLOs read both alike.
const (
	MetricRequests  = "nubo_gateway_requests_total"
	MetricDuration  = "nubo_gateway_request_duration_milliseconds"
	MetricAuth      = "nubo_gateway_authorizer_results_total"
	MetricCache     = "nubo_gateway_cache_requests_total"
	MetricThrottled = "nubo_gateway_throttled_requests_total"
	MetricBackend   = "nubo_gateway_integration_duration_milliseconds"
)

// durationBuckets are Istio's request-duration buckets, in milliseconds.
var durationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	auth      *prometheus.CounterVec
	cache     *prometheus.CounterVec
	throttled *prometheus.CounterVec
	backend   *prometheus.HistogramVec
	// unmatched counts requests no route answers (404 and unknown stages).
	unmatchedMu sync.Mutex
	unmatched   map[string]*routeObs
}

func newMetrics(reg prometheus.Registerer, extra []float64) (*metrics, error) {
	buckets := append(slices.Clone(durationBuckets), extra...)
	slices.Sort(buckets)
	buckets = slices.Compact(buckets)
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests, Help: "Requests answered by the API gateway, by stage, route, method and status.",
		}, []string{"stage", "route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricDuration, Help: "Time the API gateway took to answer, in milliseconds.", Buckets: buckets,
		}, []string{"stage", "route", "method", "status"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAuth, Help: "Authorizer decisions, by authorizer and result (allowed, unauthorized, denied, error).",
		}, []string{"authorizer", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCache, Help: "Cache lookups of the API gateway, by stage, route and result (hit, miss, bypass).",
		}, []string{"stage", "route", "result"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricThrottled, Help: "Requests answered 429 by a throttle, by stage, route and scope (stage, route, key).",
		}, []string{"stage", "route", "scope"}),
		backend: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricBackend, Help: "Time the integrations took, in milliseconds.", Buckets: buckets,
		}, []string{"stage", "route", "integration"}),
		unmatched: map[string]*routeObs{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.auth, m.cache, m.throttled, m.backend} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// routeObs holds the series of one route in one stage, so that the hot
// path finds them without hashing label values.
type routeObs struct {
	m            *metrics
	stage, route string
	// series maps method and status to their counter and histogram; it is
	// copied on write, as new pairs are rare after warm-up.
	series atomic.Pointer[map[obsKey]obsPair]
	mu     sync.Mutex // serializes writers of series

	// The route's other series, resolved once by prepare.
	cacheHit, cacheMiss, cacheBypass          prometheus.Counter
	throttleStage, throttleRoute, throttleKey prometheus.Counter
	backend                                   prometheus.Observer
}

// prepare resolves the route's cache, throttle and integration series.
func (o *routeObs) prepare(integration string) {
	m := o.m
	o.cacheHit = m.cache.WithLabelValues(o.stage, o.route, "hit")
	o.cacheMiss = m.cache.WithLabelValues(o.stage, o.route, "miss")
	o.cacheBypass = m.cache.WithLabelValues(o.stage, o.route, "bypass")
	o.throttleStage = m.throttled.WithLabelValues(o.stage, o.route, "stage")
	o.throttleRoute = m.throttled.WithLabelValues(o.stage, o.route, "route")
	o.throttleKey = m.throttled.WithLabelValues(o.stage, o.route, "key")
	o.backend = m.backend.WithLabelValues(o.stage, o.route, integration)
}

// authCounters are an authorizer's result series.
type authCounters struct {
	allowed, unauthorized, denied, failed prometheus.Counter
}

func (m *metrics) authorizer(name string) *authCounters {
	return &authCounters{
		allowed:      m.auth.WithLabelValues(name, "allowed"),
		unauthorized: m.auth.WithLabelValues(name, "unauthorized"),
		denied:       m.auth.WithLabelValues(name, "denied"),
		failed:       m.auth.WithLabelValues(name, "error"),
	}
}

func (a *authCounters) count(result string) {
	switch result {
	case "allowed":
		a.allowed.Inc()
	case "unauthorized":
		a.unauthorized.Inc()
	case "denied":
		a.denied.Inc()
	default:
		a.failed.Inc()
	}
}

type obsKey struct {
	method string
	status int
}

type obsPair struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

func (m *metrics) route(stage, route string) *routeObs {
	o := &routeObs{m: m, stage: stage, route: route}
	empty := map[obsKey]obsPair{}
	o.series.Store(&empty)
	return o
}

// unmatchedObs is the routeObs of requests no route answers in stage.
func (m *metrics) unmatchedObs(stage string) *routeObs {
	m.unmatchedMu.Lock()
	defer m.unmatchedMu.Unlock()
	o := m.unmatched[stage]
	if o == nil {
		o = m.route(stage, "")
		m.unmatched[stage] = o
	}
	return o
}

func (o *routeObs) observe(method string, status int, ms float64) {
	k := obsKey{methodLabel(method), status}
	p, ok := (*o.series.Load())[k]
	if !ok {
		o.mu.Lock()
		cur := *o.series.Load()
		if p, ok = cur[k]; !ok {
			code := strconv.Itoa(status)
			p = obsPair{
				count: o.m.requests.WithLabelValues(o.stage, o.route, k.method, code),
				dur:   o.m.duration.WithLabelValues(o.stage, o.route, k.method, code),
			}
			next := make(map[obsKey]obsPair, len(cur)+1)
			for kk, vv := range cur {
				next[kk] = vv
			}
			next[k] = p
			o.series.Store(&next)
		}
		o.mu.Unlock()
	}
	p.count.Inc()
	p.dur.Observe(ms)
}

// methodLabel keeps the method label to the methods HTTP defines: any
// other string a client sends would be a new series.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "OTHER"
}
