package server

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// bucketBounds are the upper bounds of the latency histogram, in seconds:
// Prometheus' defaults plus 0.3, the users SLO's latency threshold, so that the
// SLO's "slower than 300ms" is an exact bucket rather than an interpolation.
var bucketBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10}

// knownMethods bounds the method label: any other method counts as "other", so
// a client cannot create series at will.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true,
}

type seriesKey struct{ code, method string }

// metrics holds the two series the spec's alerts, SLO and dashboards query:
// http_requests_total{code,method} and http_request_duration_seconds. nubo's
// scraper adds the service and replica labels.
type metrics struct {
	mu       sync.Mutex
	requests map[seriesKey]uint64
	buckets  []uint64 // per bucket, not cumulative; made cumulative on write
	count    uint64
	sum      float64
}

func newMetrics() *metrics {
	return &metrics{requests: map[seriesKey]uint64{}, buckets: make([]uint64, len(bucketBounds))}
}

func (m *metrics) observe(status int, method string, d time.Duration) {
	if !knownMethods[method] {
		method = "other"
	}
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[seriesKey{strconv.Itoa(status), method}]++
	m.count++
	m.sum += secs
	for i, le := range bucketBounds {
		if secs <= le {
			m.buckets[i]++
			break
		}
	}
}

// ServeHTTP writes the Prometheus text exposition format, version 0.0.4.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	keys := make([]seriesKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].code != keys[j].code {
			return keys[i].code < keys[j].code
		}
		return keys[i].method < keys[j].method
	})
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprintln(w, "# HELP http_requests_total HTTP requests answered, by status code and method.")
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "http_requests_total{code=%q,method=%q} %d\n", k.code, k.method, m.requests[k])
	}
	fmt.Fprintln(w, "# HELP http_request_duration_seconds Time to answer an HTTP request.")
	fmt.Fprintln(w, "# TYPE http_request_duration_seconds histogram")
	var cum uint64
	for i, le := range bucketBounds {
		cum += m.buckets[i]
		fmt.Fprintf(w, "http_request_duration_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	fmt.Fprintf(w, "http_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", m.count)
	fmt.Fprintf(w, "http_request_duration_seconds_sum %g\n", m.sum)
	fmt.Fprintf(w, "http_request_duration_seconds_count %d\n", m.count)
	m.mu.Unlock()
}
