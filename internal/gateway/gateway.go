// Package gateway is nubo's API gateway: the spec's gateway section served
// over HTTP, on local.gateway for `nubo up`, behind the ingress's
// `to: gateway` paths, and as `nubo serve gateway` in Kubernetes.
//
// # Overview
//
// A request goes through these steps, each compiled from the spec in New (or
// Update) so that the hot path only looks things up:
//
//  1. Stage: the first path segment names a stage; $default (or a spec
//     without stages) has no prefix.
//  2. Route: a trie of path segments, literal before {param} before
//     {proxy+}; a path with routes but not for the method gets 405 and Allow.
//  3. CORS: preflights are answered here (Fetch standard); other requests
//     from an allowed origin get the CORS response headers.
//  4. Throttle: token buckets of the stage, then of the route (per API key
//     on routes an apiKey authorizer guards); 429 with Retry-After.
//  5. Authorizer: jwt, apiKey or function; its context reaches the backend
//     as Nubo-Principal and Nubo-Context-* headers.
//  6. Cache: GET and HEAD 200s, per stage, LRU under a size bound,
//     optionally encrypted in memory.
//  7. Request: required headers and query parameters, body size, model
//     (JSON Schema), jq transform with $request.
//  8. Integration: a service through the mesh, a function, any URL, or a
//     mock answer.
//  9. Response: statusCodes mapping of backend errors, jq transform, headers.
//
// Every request is counted (route, stage, status), logged as one structured
// access-log record and, with a Tracer, reported as a span.
//
// What is hand-written and why: routing (a path-template trie with AWS API
// Gateway's precedence, which no Go router has), CORS (small, and the
// Fetch standard's exact rules matter more than a library's defaults), the
// cache (an LRU with a byte bound and encrypted entries). JWTs and key sets
// are github.com/lestrrat-go/jwx, token buckets golang.org/x/time/rate,
// JSON Schema santhosh-tekuri/jsonschema (through spec.CompileSchema), jq
// gojq.
package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/h1server"
	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/upstream"
)

// Services gives the base URL through which the gateway reaches a service
// (or a mesh route) by name. The engine adapts the mesh to it:
//
//	gateway.ServicesFunc(func(name string) (string, error) { return m.ServiceURL("gateway", name) })
//
// so that requests from the gateway carry the principal "gateway" and the
// service's traffic policy applies. It is called once per service and
// configuration, not per request.
type Services interface {
	ServiceURL(name string) (string, error)
}

// ServicesFunc adapts a function to Services.
type ServicesFunc func(name string) (string, error)

// ServiceURL calls f.
func (f ServicesFunc) ServiceURL(name string) (string, error) { return f(name) }

// Functions invokes functions, for function integrations and authorizers.
// *functions.Functions implements it; tests may count invocations with
// their own.
type Functions interface {
	Invoke(ctx context.Context, name string, e event.Event) (functions.Result, error)
}

// Config is the gateway's part of the spec and its dependencies.
type Config struct {
	// App is the spec; its gateway section is served (none: every request
	// is 404). Relative jwksFile paths start at App.Dir.
	App *spec.App
	// Services reaches services through the mesh; nil answers 502 for
	// service integrations.
	Services Services
	// Functions invokes functions; nil answers 502 for function
	// integrations and 503 for function authorizers.
	Functions Functions
	// Secrets returns a secret's value, for apiKey authorizers.
	Secrets func(name, key string) (string, bool)
	// Resolve gives the value of ${...} references other than
	// ${stage.NAME} in integrations and response headers (env, secrets,
	// config, services); nil refuses them.
	Resolve func(expr string) (string, error)
	// Addr is where Start listens; default App.Local.Gateway.
	Addr string

	// Logger receives diagnostics and authorization failures; nil
	// discards them.
	Logger *slog.Logger
	// AccessLog receives one record per request; nil uses Logger.
	AccessLog *slog.Logger
	// Metrics registers the gateway's metrics; nil registers nothing.
	Metrics prometheus.Registerer
	// DurationBuckets (milliseconds) are added to the request-duration
	// histogram's buckets (slo.LatencyBuckets).
	DurationBuckets []float64
	// Tracer receives a span per request; nil only passes traceparent on.
	Tracer Tracer

	// Transport carries http and service integrations; default the
	// upstream client for bodyless idempotent requests, in front of a
	// keep-alive transport that ignores the environment's proxy.
	Transport http.RoundTripper
	// ServiceTransport carries service integrations to the URLs Services
	// gives; default Transport. The engine gives the mesh's in-process
	// transport (mesh.Transport), so that a request crosses no loopback
	// connection between the gateway and the mesh.
	ServiceTransport http.RoundTripper
	// JWKSClient fetches key sets; default a client with a 10s timeout.
	JWKSClient *http.Client
	// JWKSRefresh is how long a fetched key set is used before it is
	// fetched again. Default 10m.
	JWKSRefresh time.Duration
	// JWKSMinRefresh is the least time between two fetches a token with an
	// unknown kid causes, so that forged kids cannot hammer the issuer.
	// Default 10s.
	JWKSMinRefresh time.Duration
	// Now is the clock of TTLs, token buckets and token validity; default
	// time.Now.
	Now func() time.Time
	// Limits bound the clients of the listener Start opens (connections,
	// header, body and idle timeouts); unset fields take netguard's
	// defaults, the cap from the open-file budget.
	Limits netguard.Limits
}

// Gateway is the running API gateway. Create it with New; Handler serves
// it (the ingress uses it), Start also listens on Config.Addr; Update swaps
// the configuration; Stop ends it.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	access *slog.Logger
	now    func() time.Time
	met    *metrics
	rt     http.RoundTripper
	svcRT  http.RoundTripper // service integrations' (Config.ServiceTransport)
	// up and h1 are the default rt (no Config.Transport): up sends
	// bodyless idempotent requests itself, h1 carries the rest.
	up *upstream.Client
	h1 *http.Transport
	// seal encrypts cache entries of stages with encrypted: true, under a
	// key drawn at New and never stored: entries die with the process.
	seal    cipher.AEAD
	hashKey []byte

	cur atomic.Pointer[compiled]
	// umu serializes Update, so that configurations are published in the
	// order they were compiled.
	umu sync.Mutex
	// state keeps token buckets and fetched key sets across reloads.
	state *carried

	mu      sync.Mutex // guards the fields below
	srv     *http.Server
	loop    *h1server.Server // serves HTTP/1.x in front of srv
	ln      net.Listener
	conns   *netguard.Limiter // the listener's connection cap
	served  chan struct{}     // closed when Serve has returned
	started bool
	stopped bool
}

// New checks and compiles the spec's gateway section. It binds nothing and
// starts no goroutine.
func New(cfg Config) (*Gateway, error) {
	if cfg.App == nil {
		return nil, errors.New("gateway: no spec")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AccessLog == nil {
		cfg.AccessLog = cfg.Logger
	}
	if cfg.Addr == "" {
		cfg.Addr = cfg.App.Local.Gateway
	}
	if cfg.Addr == "" {
		cfg.Addr = spec.DefaultGateway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.JWKSRefresh <= 0 {
		cfg.JWKSRefresh = 10 * time.Minute
	}
	if cfg.JWKSMinRefresh <= 0 {
		cfg.JWKSMinRefresh = 10 * time.Second
	}
	if cfg.JWKSClient == nil {
		cfg.JWKSClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	}
	g := &Gateway{
		cfg:    cfg,
		log:    cfg.Logger,
		access: cfg.AccessLog,
		now:    cfg.Now,
		rt:     cfg.Transport,
		state:  newCarried(),
	}
	if g.rt == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		g.h1 = newTransport(d)
		g.up = upstream.New(d.DialContext, g.h1)
		g.rt = g.up
	}
	g.svcRT = cfg.ServiceTransport
	if g.svcRT == nil {
		g.svcRT = g.rt
	}
	key := make([]byte, 32)
	g.hashKey = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("gateway: cache key: %w", err)
	}
	if _, err := rand.Read(g.hashKey); err != nil {
		return nil, fmt.Errorf("gateway: cache key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("gateway: cache cipher: %w", err)
	}
	if g.seal, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("gateway: cache cipher: %w", err)
	}
	if g.met, err = newMetrics(cfg.Metrics, cfg.DurationBuckets); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	c, err := g.compile(cfg.App)
	if err != nil {
		return nil, err
	}
	g.cur.Store(c)
	return g, nil
}

// newTransport is the transport of http and service integrations for the
// requests upstream.Direct refuses: many idle connections per host (a
// gateway talks to few hosts, a lot), never the environment's proxy
// (service integrations already go through the mesh), bodies untouched.
func newTransport(d *net.Dialer) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
}

// Handler serves the gateway; the engine hands it to the mesh's ingress
// (mesh.SetGateway) as well as serving it on Config.Addr.
func (g *Gateway) Handler() http.Handler { return g }

// Start listens on Config.Addr and serves the gateway. It returns once the
// listener accepts connections.
func (g *Gateway) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.stopped:
		return errors.New("gateway: start after stop")
	case g.started:
		return nil
	}
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", g.cfg.Addr, err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	g.srv = &http.Server{
		Handler:   g,
		Protocols: &p,
		ErrorLog:  slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	// A flood of clients is held at the cap, and slow ones are cut off,
	// so that it cannot take the descriptors the broker needs.
	limits := g.cfg.Limits.WithDefaults(netguard.Gateway)
	g.conns = netguard.NewLimiter(limits.MaxConns)
	ln = g.conns.Listener(ln)
	netguard.Server(g.srv, limits)
	// nubo's HTTP/1.1 server loop serves HTTP/1.x with the same handler
	// and timeouts; g.srv takes HTTP/2 with prior knowledge on its first
	// bytes (see internal/h1server).
	g.loop = &h1server.Server{
		Handler: g.srv.Handler, Fallback: g.srv, ReadHeaderTimeout: g.srv.ReadHeaderTimeout, IdleTimeout: g.srv.IdleTimeout, Log: g.log,
	}
	g.ln = ln
	g.served = make(chan struct{})
	g.started = true
	go func() {
		defer close(g.served)
		if err := g.loop.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("gateway: serve", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr is the address the gateway listens on, once started ("" before).
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Update compiles app and swaps it in; requests in flight finish on the
// configuration they started with. On an error the running configuration
// stays and the error says why.
func (g *Gateway) Update(app *spec.App) error {
	if app == nil {
		return errors.New("gateway: update: no spec")
	}
	g.umu.Lock()
	defer g.umu.Unlock()
	c, err := g.compile(app)
	if err != nil {
		g.log.Warn("gateway: reload refused, the running configuration stays", "err", err)
		return err
	}
	g.cur.Store(c)
	g.state.prune(c)
	return nil
}

// Stop stops listening and waits for requests in flight until ctx is done,
// then closes their connections. It is idempotent and nil-safe.
func (g *Gateway) Stop(ctx context.Context) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return nil
	}
	g.stopped = true
	loop, served := g.loop, g.served
	g.mu.Unlock()
	if g.up != nil {
		defer g.h1.CloseIdleConnections()
		defer g.up.Close()
	}
	if loop == nil {
		return nil
	}
	err := loop.Shutdown(ctx) // g.srv's too
	if err != nil {
		_ = loop.Close()
	}
	<-served
	if err != nil {
		return fmt.Errorf("gateway: stop: %w", err)
	}
	return nil
}
