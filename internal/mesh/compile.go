package mesh

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// compiled is one immutable configuration: everything a request needs,
// resolved once in New or Update and read without locks.
type compiled struct {
	cfg      Config
	ns       string
	hosts    map[string]*target // every accepted name, lower-case, without port
	services map[string]*service
	names    []string // hosts callers can name (services and routes), sorted
	ingHTTP  *ingressTable
	ingHTTPS *ingressTable
	enforce  bool
	// egress holds the allow-lists of the callers that have one.
	egress map[string]*egressRule
	// peerSecurity is the connection_security_policy label the destination
	// reporter uses: mutual_tls unless mtls is disabled, as Istio reports.
	peerSecurity string
}

// target is what a host name resolves to: a service, or a weighted route
// over services.
type target struct {
	name  string
	ports []int  // ports callers may name; none means any is refused but the bare name
	host  string // Host header for callers that reached the target by URL (NAME or NAME:PORT)
	dests []dest
	total int
}

type dest struct {
	svc  *service
	upTo int // cumulative weight
}

// service is a destination service with its compiled policy.
type service struct {
	name string
	fqdn string // NAME.NS.svc.cluster.local, the destination_service label
	// spanName is Istio's operation name for the hop: FQDN:PORT/*.
	spanName string
	port     int
	grpc     bool
	cl       *cluster // attached by Mesh.attach
	lb       lbPolicy
	retry    retryPolicy
	// timeout bounds the whole request, retries included; 0 is none.
	timeout       time.Duration
	fault         faultPolicy
	authz         authz
	clusterPolicy clusterPolicy
}

// retryPolicy is a service's retry policy: attempts after the first try.
type retryPolicy struct {
	attempts int
	perTry   time.Duration
	on       retryOn
}

type retryOn uint8

const (
	retry5xx retryOn = 1 << iota
	retryGatewayError
	retryConnectFailure
	retryReset
	retryRetriable4xx
)

var retryOnNames = map[string]retryOn{
	"5xx":             retry5xx,
	"gateway-error":   retryGatewayError,
	"connect-failure": retryConnectFailure,
	"reset":           retryReset,
	"retriable-4xx":   retryRetriable4xx,
}

// faultPolicy holds fault injection; percentages are 0 to 100.
type faultPolicy struct {
	delayPct    float64
	delay       time.Duration
	abortPct    float64
	abortStatus int
}

func compile(cfg Config) (*compiled, error) {
	c := &compiled{
		cfg:          cfg,
		ns:           strings.ToLower(cfg.Namespace),
		hosts:        map[string]*target{},
		services:     make(map[string]*service, len(cfg.Services)),
		enforce:      cfg.Mesh.Enforcement != "audit",
		peerSecurity: "mutual_tls",
		egress:       compileEgress(cfg.Egress),
	}
	switch cfg.Mesh.Enforcement {
	case "", "enforce", "audit":
	default:
		return nil, fmt.Errorf("mesh: enforcement %q: want enforce or audit", cfg.Mesh.Enforcement)
	}
	if cfg.Mesh.MTLS == "disable" {
		c.peerSecurity = "none"
	}
	for _, name := range sortedKeys(cfg.Services) {
		svc, err := compileService(c.ns, name, cfg.Services[name])
		if err != nil {
			return nil, err
		}
		c.services[name] = svc
		c.addTarget(&target{
			name:  name,
			ports: []int{svc.port},
			host:  hostHeader(name, svc.port),
			dests: []dest{{svc: svc, upTo: 1}},
			total: 1,
		})
	}
	for _, host := range sortedKeys(cfg.Mesh.Routes) {
		t, err := c.compileRoute(host, cfg.Mesh.Routes[host])
		if err != nil {
			return nil, err
		}
		c.addTarget(t)
	}
	if err := c.compilePolicies(cfg.Mesh.Policies); err != nil {
		return nil, err
	}
	var err error
	if c.ingHTTP, c.ingHTTPS, err = compileIngress(c, cfg.Ingress); err != nil {
		return nil, err
	}
	if cfg.IngressHTTPS != "" && cfg.CADir == "" {
		return nil, fmt.Errorf("mesh: ingress https listener %s: no CA directory", cfg.IngressHTTPS)
	}
	return c, nil
}

// addTarget registers t under every name Kubernetes DNS gives a Service:
// NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.cluster.local. A route wins
// over a service of the same name, as a VirtualService does.
func (c *compiled) addTarget(t *target) {
	n := strings.ToLower(t.name)
	for _, h := range []string{n, n + "." + c.ns, n + "." + c.ns + ".svc", n + "." + c.ns + ".svc.cluster.local"} {
		c.hosts[h] = t
	}
	if i := sort.SearchStrings(c.names, t.name); i == len(c.names) || c.names[i] != t.name {
		c.names = append(c.names, "")
		copy(c.names[i+1:], c.names[i:])
		c.names[i] = t.name
	}
}

func hostHeader(name string, port int) string {
	if port == defaultPort {
		return name
	}
	return name + ":" + strconv.Itoa(port)
}

func compileService(ns, name string, sc ServiceConfig) (*service, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("mesh: service %q: %s", name, fmt.Sprintf(format, args...))
	}
	svc := &service{name: name, port: sc.Port, grpc: sc.GRPC, fqdn: name + "." + ns + ".svc.cluster.local"}
	if svc.port == 0 {
		svc.port = defaultPort
	}
	if svc.port < 1 || svc.port > 65535 {
		return nil, fail("port %d is not within 1..65535", svc.port)
	}
	svc.spanName = svc.fqdn + ":" + strconv.Itoa(svc.port) + "/*"
	tr := sc.Traffic
	var err error
	if svc.lb, err = compileLB(tr.LoadBalancing); err != nil {
		return nil, fail("%v", err)
	}
	svc.clusterPolicy.ring = svc.lb.alg == lbRingHash
	if cb := tr.CircuitBreaker; cb != nil {
		od := &outlierPolicy{
			consecutive: cb.ConsecutiveErrors,
			interval:    cb.Interval.Duration,
			base:        cb.Timeout.Duration,
			maxPercent:  cb.MaxEjectionPercent,
		}
		// The spec fills these; a Config built by hand may not.
		if od.consecutive <= 0 {
			od.consecutive = 5
		}
		if od.interval <= 0 {
			od.interval = 10 * time.Second
		}
		if od.base <= 0 {
			od.base = 30 * time.Second
		}
		if od.maxPercent == 0 {
			od.maxPercent = 50
		}
		if od.maxPercent < 0 || od.maxPercent > 100 {
			return nil, fail("circuitBreaker.maxEjectionPercent %d is not within 0..100", od.maxPercent)
		}
		od.max = max(maxEjectionTime, od.base)
		svc.clusterPolicy.outlier = od
	}
	if r := tr.Retry; r != nil {
		svc.retry = retryPolicy{attempts: r.Attempts, perTry: r.PerTryTimeout.Duration}
		if svc.retry.attempts < 0 {
			return nil, fail("retry.attempts %d is negative", r.Attempts)
		}
		on := r.On
		if len(on) == 0 {
			on = []string{"connect-failure", "reset", "5xx"}
		}
		for _, o := range on {
			bit, ok := retryOnNames[o]
			if !ok {
				return nil, fail("retry.on %q: want 5xx, gateway-error, connect-failure, reset or retriable-4xx", o)
			}
			svc.retry.on |= bit
		}
	}
	svc.timeout = tr.Timeout.Duration
	if f := tr.Fault; f != nil {
		if d := f.Delay; d != nil {
			if d.Percent < 0 || d.Percent > 100 {
				return nil, fail("fault.delay.percent %v is not within 0..100", d.Percent)
			}
			svc.fault.delayPct, svc.fault.delay = d.Percent, d.Fixed.Duration
		}
		if a := f.Abort; a != nil {
			if a.Percent < 0 || a.Percent > 100 {
				return nil, fail("fault.abort.percent %v is not within 0..100", a.Percent)
			}
			if a.Status < 200 || a.Status > 599 {
				return nil, fail("fault.abort.status %d is not within 200..599", a.Status)
			}
			svc.fault.abortPct, svc.fault.abortStatus = a.Percent, a.Status
		}
	}
	return svc, nil
}

func (c *compiled) compileRoute(host string, dests []*spec.RouteDestination) (*target, error) {
	if len(dests) == 0 {
		return nil, fmt.Errorf("mesh: route %q: no destinations", host)
	}
	t := &target{name: host}
	for i, d := range dests {
		svc, ok := c.services[d.Destination]
		if !ok {
			return nil, fmt.Errorf("mesh: route %q: destination %d: no service %q", host, i, d.Destination)
		}
		if d.Weight < 0 {
			return nil, fmt.Errorf("mesh: route %q: destination %q: negative weight %d", host, d.Destination, d.Weight)
		}
		if d.Weight == 0 {
			continue
		}
		t.total += d.Weight
		t.dests = append(t.dests, dest{svc: svc, upTo: t.total})
		if !containsInt(t.ports, svc.port) {
			t.ports = append(t.ports, svc.port)
		}
	}
	if t.total == 0 {
		return nil, fmt.Errorf("mesh: route %q: every weight is 0", host)
	}
	port := t.ports[0]
	if svc, ok := c.services[host]; ok {
		// The service of the route's own name sets the port callers use.
		port = svc.port
		if !containsInt(t.ports, port) {
			t.ports = append([]int{port}, t.ports...)
		}
	}
	t.host = hostHeader(host, port)
	return t, nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// pick chooses the destination of one request by weight, as Envoy's
// weighted clusters do.
func (t *target) pick() *service {
	if len(t.dests) == 1 {
		return t.dests[0].svc
	}
	n := randIntN(t.total)
	for _, d := range t.dests {
		if n < d.upTo {
			return d.svc
		}
	}
	return t.dests[len(t.dests)-1].svc
}

func (t *target) acceptsPort(p int) bool { return containsInt(t.ports, p) }

// lookup resolves a request's host (with or without a port) to a target,
// reporting the port named (0 for none).
func (c *compiled) lookup(hostport string) (t *target, port int, badPort bool) {
	host, port, ok := splitHostPort(hostport)
	if !ok {
		return nil, 0, false
	}
	t = c.hosts[lowerASCII(host)]
	if t == nil {
		return nil, port, false
	}
	if port != 0 && !t.acceptsPort(port) {
		return t, port, true
	}
	return t, port, false
}

// splitHostPort splits "name:port" or "name"; ok is false for an invalid
// port. IPv6 literals never name a service and come back whole.
func splitHostPort(hp string) (host string, port int, ok bool) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 || strings.IndexByte(hp, ']') > i {
		return hp, 0, true
	}
	if strings.IndexByte(hp[:i], ':') >= 0 {
		return hp, 0, true // bare IPv6
	}
	p, err := strconv.Atoi(hp[i+1:])
	if err != nil || p < 1 || p > 65535 {
		return hp[:i], 0, false
	}
	return hp[:i], p, true
}

// lowerASCII lower-cases s without allocating when it already is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// canonicalHeader is http.CanonicalHeaderKey, named for readability where
// header names from the spec are compiled.
func canonicalHeader(s string) string { return http.CanonicalHeaderKey(s) }
