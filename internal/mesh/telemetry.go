package mesh

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Istio's standard metric labels, in Istio's order, so that dashboards,
// alerts and SLOs written against a Kubernetes mesh read nubo's series
// unchanged.
var istioLabels = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace", "destination_cluster",
	"request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
}

// istioDurationBuckets are Istio's default buckets for
// istio_request_duration_milliseconds.
var istioDurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Values Istio reports when it does not know better.
const (
	unknown = "unknown"
	// clusterID is Istio's default cluster name.
	clusterID = "Kubernetes"
	// passthrough is Istio's name for traffic to hosts outside the mesh.
	passthrough = "PassthroughCluster"
)

const (
	reporterSource uint8 = iota
	reporterDestination
)

const (
	protoHTTP uint8 = iota
	protoGRPC
	protoTCP
)

var protoNames = [...]string{"http", "grpc", "tcp"}

// telemetry records the Istio standard metrics. The label values of each
// combination are computed once and their series cached, so that the hot
// path does one map lookup and two atomic updates per reporter.
type telemetry struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	cells    sync.Map // cellKey -> *cell
}

// cellKey identifies one series. dst is a service name, or the host of a
// request to a host outside the mesh (external set).
type cellKey struct {
	reporter uint8
	proto    uint8
	external bool
	code     uint16
	src      string
	srcNS    string
	dst      string
	dstNS    string
	flags    string
	grpc     string
	security string
}

type cell struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newTelemetry(reg prometheus.Registerer, extraBuckets []float64) (*telemetry, error) {
	buckets := append(slices.Clone(istioDurationBuckets), extraBuckets...)
	slices.Sort(buckets)
	buckets = slices.Compact(buckets)
	t := &telemetry{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests through the mesh, as Istio counts them.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Duration of requests through the mesh, in milliseconds, as Istio measures them.",
			Buckets: buckets,
		}, istioLabels),
	}
	if reg == nil {
		return t, nil
	}
	for _, c := range []prometheus.Collector{t.requests, t.duration} {
		if err := reg.Register(c); err != nil {
			are := prometheus.AlreadyRegisteredError{}
			if errors.As(err, &are) {
				return nil, fmt.Errorf("mesh: register metrics: %w (one mesh per registry)", err)
			}
			return nil, fmt.Errorf("mesh: register metrics: %w", err)
		}
	}
	return t, nil
}

// observe counts one request (or attempt) and its duration in ms.
func (t *telemetry) observe(k cellKey, ms float64) {
	v, ok := t.cells.Load(k)
	if !ok {
		v, _ = t.cells.LoadOrStore(k, t.newCell(k))
	}
	c := v.(*cell)
	c.requests.Inc()
	c.duration.Observe(ms)
}

func (t *telemetry) newCell(k cellKey) *cell {
	reporter := "source"
	if k.reporter == reporterDestination {
		reporter = "destination"
	}
	srcWorkload, srcNS := k.src, k.srcNS
	srcPrincipal := "spiffe://" + spiffeID(peer{principal: k.src, namespace: k.srcNS})
	switch k.src {
	case "":
		srcWorkload, srcNS, srcPrincipal = unknown, unknown, unknown
	case IngressPrincipal:
		srcWorkload = ingressWorkload
	}
	dstWorkload, dstNS, dstPrincipal := k.dst, k.dstNS, "spiffe://cluster.local/ns/"+k.dstNS+"/sa/"+k.dst
	dstService, dstServiceName := k.dst+"."+k.dstNS+".svc.cluster.local", k.dst
	if k.external {
		dstWorkload, dstNS, dstPrincipal = unknown, unknown, unknown
		dstService, dstServiceName = k.dst, passthrough
	}
	flags := k.flags
	if flags == "" {
		flags = "-"
	}
	vals := []string{
		reporter,
		srcWorkload, srcNS, srcPrincipal, srcWorkload, unknown, clusterID,
		dstWorkload, dstNS, dstPrincipal, dstWorkload, unknown,
		dstService, dstServiceName, dstNS, clusterID,
		protoNames[k.proto], strconv.Itoa(int(k.code)), k.grpc, flags, k.security,
	}
	return &cell{requests: t.requests.WithLabelValues(vals...), duration: t.duration.WithLabelValues(vals...)}
}
