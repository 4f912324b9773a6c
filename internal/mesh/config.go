package mesh

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Endpoint is one replica of a service, as the mesh needs to know it.
type Endpoint struct {
	// ID identifies the replica while it lives; a replacement gets a new ID.
	ID string
	// Addr is host:port, 127.0.0.1:PORT for a local replica.
	Addr string
	// Ready says whether the replica takes traffic (its readiness).
	Ready bool
}

// Endpoints tells the mesh the replicas of a service. The engine adapts the
// supervisor's status to it. It is called when the mesh refreshes its view
// (see Mesh.EndpointsChanged and Config.EndpointRefresh), never per request,
// so it may take locks and allocate.
type Endpoints interface {
	Endpoints(service string) []Endpoint
}

// EndpointsFunc adapts a function to Endpoints.
type EndpointsFunc func(service string) []Endpoint

// Endpoints calls f.
func (f EndpointsFunc) Endpoints(service string) []Endpoint { return f(service) }

// Config is what the mesh runs: the services callers reach by name, with
// their traffic policy, the routes and policies of the spec's mesh section,
// the ingress rules and the mesh's own settings. ConfigFromSpec builds it.
type Config struct {
	// Namespace is the spec's namespace: names resolve as NAME.NAMESPACE
	// (.svc(.cluster.local)) and policies see it as source.namespace.
	// Default "default".
	Namespace string
	// Services are the services callers reach, by name.
	Services map[string]ServiceConfig
	// Mesh holds the weighted routes, the authorization policies, their
	// enforcement and the mTLS mode (spec's mesh section).
	Mesh spec.Mesh
	// Ingress routes outside traffic by host and path.
	Ingress []*spec.Ingress
	// IngressHTTP and IngressHTTPS are the addresses of the ingress
	// listeners; an empty address starts no listener.
	IngressHTTP, IngressHTTPS string
	// CADir holds the local CA that signs the HTTPS listener's certificates
	// (created on first use). Required with IngressHTTPS.
	CADir string

	// Workloads lists the processes of the workloads' replicas (pid:
	// service), from their cgroups: a connection to a caller's proxy
	// listener from a replica of another service is refused (see
	// peer.go). Nil checks nothing.
	Workloads func() map[int]string

	// Limits bound the clients of the loopback listeners (one cap shared by
	// all of them) and IngressLimits those of the ingress listeners (one
	// cap for both); unset fields take netguard's defaults.
	Limits, IngressLimits netguard.Limits

	// Logger receives the mesh's diagnostics, audit and denial logs; nil
	// discards them.
	Logger *slog.Logger
	// Metrics registers the Istio standard metrics; nil registers nothing.
	Metrics prometheus.Registerer
	// Egress holds the allow-lists of workloads that have one (functions'
	// vpc.egress): service:NAME, function:NAME, database:NAME or a host.
	Egress map[string][]string
	// ExtraDurationBuckets (milliseconds) are added to Istio's default buckets
	// of istio_request_duration_milliseconds, so that an SLO's latency
	// threshold is a bucket bound (slo.LatencyBuckets). Fixed at New.
	ExtraDurationBuckets []float64
	// IdentityCallers are the callers whose requests may carry identity
	// headers (Nubo-Principal, Nubo-Authorizer, Nubo-Context-*): those that
	// authenticate their own clients and set them, the gateway. Every
	// other caller's, and the ingress's clients', are removed.
	IdentityCallers []string
	// Tracer receives a span per hop; nil keeps traceparent as it came.
	Tracer Tracer

	// RetryBuffer bounds the request body kept to replay on a retry: a
	// request whose body is larger is not retried. Default 1 MiB, Envoy's
	// default buffer limit.
	RetryBuffer int64
	// EndpointRefresh is how often the mesh reads Endpoints even without
	// EndpointsChanged. Default 1s.
	EndpointRefresh time.Duration
	// ConnectTimeout bounds a connection to a replica. Default 10s, Istio's.
	ConnectTimeout time.Duration
}

// ServiceConfig is a service as callers see it through the mesh.
type ServiceConfig struct {
	// Port is the port callers use (expose.port); default 80. "users" and
	// "users:PORT" both reach the service.
	Port int
	// GRPC says the replicas speak HTTP/2 cleartext (h2c) or gRPC.
	GRPC bool
	// Traffic is the client-side policy: load balancing, circuit breaking,
	// retries, timeout and fault injection.
	Traffic spec.Traffic
}

// Principals of the mesh's own callers, for authorization policies and the
// source_workload label.
const (
	// IngressPrincipal calls services for the ingress listeners. Policies
	// may also name it as Istio's ingress gateway
	// (cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account),
	// and its namespace is istio-system, as in Kubernetes.
	IngressPrincipal = "ingress"
)

// Istio's identity of its ingress gateway, which nubo's ingress takes on so
// that policies and dashboards carry over.
const (
	ingressNamespace = "istio-system"
	ingressWorkload  = "istio-ingressgateway"
	ingressAccount   = "istio-ingressgateway-service-account"
)

// peerNamespace is the namespace of a caller: the app's, or Istio's for
// the ingress.
func peerNamespace(c *compiled, caller string) string {
	if caller == IngressPrincipal {
		return ingressNamespace
	}
	return c.ns
}

// Defaults.
const (
	defaultNamespace       = "default"
	defaultRetryBuffer     = 1 << 20
	defaultEndpointRefresh = time.Second
	defaultConnectTimeout  = 10 * time.Second
	defaultPort            = 80
	// maxEjectionTime caps an ejection, Envoy's max_ejection_time default.
	maxEjectionTime = 300 * time.Second
	// retryBase is Envoy's base retry back-off; the cap is ten times it.
	retryBase = 25 * time.Millisecond
)

// ConfigFromSpec maps a spec to the mesh's configuration: every service
// with its expose port, gRPC flag and traffic policy, the mesh section, the
// ingress rules and the local ingress addresses. Logger, Metrics, Tracer
// and CADir are the engine's to set.
func ConfigFromSpec(app *spec.App) Config {
	cfg := Config{
		Namespace:    app.Namespace,
		Services:     make(map[string]ServiceConfig, len(app.Services)),
		Mesh:         app.Mesh,
		Ingress:      app.Ingress,
		IngressHTTP:  app.Local.Ingress.HTTP,
		IngressHTTPS: app.Local.Ingress.HTTPS,
	}
	for name, s := range app.Services {
		cfg.Services[name] = ServiceConfig{Port: s.Expose.Port, GRPC: s.GRPC, Traffic: s.Traffic}
	}
	for name, f := range app.Functions {
		if len(f.VPC.Egress) > 0 {
			if cfg.Egress == nil {
				cfg.Egress = map[string][]string{}
			}
			cfg.Egress[name] = f.VPC.Egress
		}
	}
	// Only ingresses that ask for TLS need the HTTPS listener.
	tls := false
	for _, in := range app.Ingress {
		tls = tls || in.TLS
	}
	if !tls {
		cfg.IngressHTTPS = ""
	}
	if len(app.Ingress) == 0 {
		cfg.IngressHTTP = ""
	}
	return cfg
}

func (c *Config) fillDefaults() {
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RetryBuffer <= 0 {
		c.RetryBuffer = defaultRetryBuffer
	}
	if c.EndpointRefresh <= 0 {
		c.EndpointRefresh = defaultEndpointRefresh
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
}
