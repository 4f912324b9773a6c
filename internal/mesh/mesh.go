// Package mesh is nubo's service mesh for `nubo up`: the sidecar-like proxy
// through which services call each other by name, and the ingress that
// routes outside traffic to them.
//
// # Overview
//
// Each calling workload gets its own loopback listener (ProxyURL), which the
// engine passes to its processes as HTTP_PROXY; a request for http://users/
// arrives there, so the mesh knows who calls (the principal of
// authorization policies) without TLS. Env adds NUBO_SERVICE_<NAME>_URL, a
// listener per caller and target, for code that ignores proxies.
//
// A request goes through the same steps as in Istio: the host is resolved
// (users, users:80, users.NS, users.NS.svc, users.NS.svc.cluster.local;
// other hosts go out directly, HTTPS through CONNECT), a weighted route
// picks the destination service, fault injection delays or aborts it, the
// destination's authorization policies decide (audit, deny, allow), and the
// request is forwarded to a ready, non-ejected replica chosen by the load
// balancer, with retries, per-try and overall timeouts and outlier
// detection. Every request is counted under Istio's standard metric names
// and labels, and W3C trace context is propagated.
//
// The semantics follow Envoy and Istio; docs/mesh.md lists where nubo
// differs. The proxy is written by hand over net/http rather than on
// httputil.ReverseProxy because retries, endpoint choice, outlier
// accounting and metrics must see each attempt, and the hot path must not
// clone requests.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/upstream"
)

// Mesh is the running mesh. Create it with New, then Start; ProxyURL, Env
// and ServiceURL hand out listeners for callers; Update swaps the
// configuration; Stop ends it.
type Mesh struct {
	eps Endpoints
	tel *telemetry
	h1  *http.Transport  // HTTP/1.1 keep-alive, to replicas and direct hosts
	h2c *http.Transport  // HTTP/2 cleartext, to grpc services
	up  *upstream.Client // bodyless HTTP/1.1 requests on the handler's goroutine, h1 for the rest
	// rt1 and rt2 are up and h2c as the proxy uses them; benchmarks put an
	// in-memory replica there to measure the proxy alone.
	rt1, rt2 http.RoundTripper
	dialer   *net.Dialer

	cur     atomic.Pointer[compiled]
	gateway atomic.Pointer[gatewayHolder]
	tracer  atomic.Pointer[tracerHolder]
	log     atomic.Pointer[slog.Logger]

	// umu serializes Update, so that configurations are attached and
	// published in the order they were compiled.
	umu sync.Mutex

	mu        sync.Mutex // guards the fields below
	clusters  map[string]*cluster
	listeners map[listenerKey]*listener
	ingress   *ingressServers
	started   bool
	stopped   bool
	cancel    context.CancelFunc
	bg        sync.WaitGroup

	hijacked sync.Map // net.Conn -> struct{}: upgraded and tunnelled connections, closed by Stop

	// conns and ingressConns cap the connections of the loopback and of
	// the ingress listeners, with the timeouts of limits and ingressLimits.
	conns, ingressConns   *netguard.Limiter
	limits, ingressLimits netguard.Limits

	// workloads is Config.Workloads.
	workloads func() map[int]string
}

type gatewayHolder struct{ h http.Handler }

type tracerHolder struct{ t Tracer }

// New checks cfg, compiles its routes, matchers and policies, and returns
// a mesh that is not started: it binds nothing and starts no goroutine.
func New(cfg Config, eps Endpoints) (*Mesh, error) {
	if eps == nil {
		return nil, errors.New("mesh: no Endpoints")
	}
	cfg.fillDefaults()
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	m := &Mesh{
		eps:       eps,
		clusters:  map[string]*cluster{},
		listeners: map[listenerKey]*listener{},
		dialer:    &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second},

		workloads:     cfg.Workloads,
		limits:        cfg.Limits.WithDefaults(netguard.Mesh),
		ingressLimits: cfg.IngressLimits.WithDefaults(netguard.Ingress),
	}
	m.conns, m.ingressConns = netguard.NewLimiter(m.limits.MaxConns), netguard.NewLimiter(m.ingressLimits.MaxConns)
	m.tel, err = newTelemetry(cfg.Metrics, cfg.ExtraDurationBuckets)
	if err != nil {
		return nil, err
	}
	m.h1, m.h2c = m.newTransports()
	m.up = upstream.New(m.dialer.DialContext, m.h1)
	m.rt1, m.rt2 = m.up, m.h2c
	m.log.Store(cfg.Logger)
	m.tracer.Store(&tracerHolder{cfg.Tracer})
	m.attach(c)
	m.cur.Store(c)
	return m, nil
}

func (m *Mesh) newTransports() (h1, h2c *http.Transport) {
	h1 = &http.Transport{
		// Never the environment's proxy: the mesh is the proxy.
		Proxy:       nil,
		DialContext: m.dialer.DialContext,
		// Bodies go through untouched: no transparent gzip.
		DisableCompression:  true,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		// The client's Expect: 100-continue is answered by the server side.
		ExpectContinueTimeout: 0,
	}
	var p1 http.Protocols
	p1.SetHTTP1(true)
	h1.Protocols = &p1
	h2c = &http.Transport{
		Proxy:              nil,
		DialContext:        m.dialer.DialContext,
		DisableCompression: true,
		IdleConnTimeout:    90 * time.Second,
	}
	var p2 http.Protocols
	p2.SetUnencryptedHTTP2(true)
	h2c.Protocols = &p2
	return h1, h2c
}

// attach gives each compiled service its cluster, creating clusters for new
// services and handing their policy to existing ones, so that endpoint and
// outlier state survive a reload. Clusters of removed services are stopped.
func (m *Mesh) attach(c *compiled) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, svc := range c.services {
		cl, ok := m.clusters[name]
		if !ok {
			cl = newCluster(name, m.eps, m.logger().With("service", name))
			m.clusters[name] = cl
		}
		cl.setPolicy(svc.clusterPolicy, m.started && !m.stopped)
		svc.cl = cl
	}
	for name, cl := range m.clusters {
		if _, ok := c.services[name]; !ok {
			cl.stop()
			delete(m.clusters, name)
		}
	}
}

func (m *Mesh) logger() *slog.Logger { return m.log.Load() }

// Start serves the listeners handed out so far and the ingress, and starts
// the endpoint refresh and outlier sweeps. It returns once every listener
// accepts connections.
func (m *Mesh) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return errors.New("mesh: start after stop")
	}
	if m.started {
		return nil
	}
	c := m.cur.Load()
	ing, err := m.bindIngress(c, nil)
	if err != nil {
		return err
	}
	m.ingress = ing
	m.started = true
	for _, l := range m.listeners {
		m.serve(l)
	}
	ing.serve(m)
	for _, cl := range m.clusters {
		cl.start()
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.bg.Add(1)
	go m.refreshLoop(bgCtx, c.cfg.EndpointRefresh)
	return nil
}

// refreshLoop reads every cluster's endpoints periodically: a safety net
// for changes the engine did not report through EndpointsChanged.
func (m *Mesh) refreshLoop(ctx context.Context, every time.Duration) {
	defer m.bg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		cls := make([]*cluster, 0, len(m.clusters))
		for _, cl := range m.clusters {
			cls = append(cls, cl)
		}
		m.mu.Unlock()
		for _, cl := range cls {
			cl.refresh()
		}
	}
}

// EndpointsChanged tells the mesh that a service's replicas changed (one
// became ready or not ready, started or stopped); the mesh reads Endpoints
// for it at once. The engine calls it from the supervisor's event sink.
func (m *Mesh) EndpointsChanged(service string) {
	m.mu.Lock()
	cl := m.clusters[service]
	m.mu.Unlock()
	if cl != nil {
		cl.refresh()
	}
}

// Update compiles cfg and swaps it in atomically: requests in flight finish
// with the configuration they started with. On an error the running
// configuration is kept. Listeners handed out keep their ports; ingress
// listeners move if their addresses changed. Metrics cannot be changed.
func (m *Mesh) Update(cfg Config) error {
	m.umu.Lock()
	defer m.umu.Unlock()
	cfg.fillDefaults()
	c, err := compile(cfg)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return errors.New("mesh: update after stop")
	}
	var old, next *ingressServers
	if m.started {
		ing, err := m.bindIngress(c, m.ingress)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		old, next = m.ingress, ing
		m.ingress = ing
		ing.serve(m)
	}
	m.mu.Unlock()
	m.log.Store(cfg.Logger)
	m.tracer.Store(&tracerHolder{cfg.Tracer})
	m.attach(c)
	m.cur.Store(c)
	if old != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = old.shutdown(ctx, next)
	}
	return nil
}

// SetGateway routes the ingress's `to: gateway` paths to h; until it is
// called they answer 502 "gateway: not running". A nil h goes back to that.
func (m *Mesh) SetGateway(h http.Handler) {
	if h == nil {
		m.gateway.Store(nil)
		return
	}
	m.gateway.Store(&gatewayHolder{h})
}

// Stop closes every listener and connection, waiting for requests in
// flight until ctx is done, then cutting them. It is idempotent and
// nil-safe.
func (m *Mesh) Stop(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	ls := make([]*listener, 0, len(m.listeners))
	for _, l := range m.listeners {
		ls = append(ls, l)
	}
	ing := m.ingress
	for _, cl := range m.clusters {
		cl.stop()
	}
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ls)+1)
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.shutdown(ctx)
		}()
	}
	if ing != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[len(ls)] = ing.shutdown(ctx, nil)
		}()
	}
	wg.Wait()
	// Upgraded and tunnelled connections are not the servers' to close;
	// once the servers are shut no new ones appear.
	m.hijacked.Range(func(k, _ any) bool {
		k.(net.Conn).Close()
		return true
	})
	m.bg.Wait()
	m.up.Close()
	m.h1.CloseIdleConnections()
	m.h2c.CloseIdleConnections()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mesh: stop: %w", err)
	}
	return nil
}

func (m *Mesh) trackHijacked(c net.Conn) func() {
	m.hijacked.Store(c, struct{}{})
	return func() { m.hijacked.Delete(c) }
}
