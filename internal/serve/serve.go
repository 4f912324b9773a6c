// Package serve runs some of nubo's own components on their own, as the
// Deployments `nubo render` makes of them run them on Kubernetes
// (`nubo serve gateway|events|eventstore ...`): the same gateway and dispatcher code as
// `nubo up`, on the same component host, against a NATS server given by
// URL, reaching services and functions through Kubernetes' DNS.
//
// One HTTP listener serves each process: /healthz (the process runs),
// /readyz (every component has started), /metrics (the components' series)
// and the components' own routes: the platform API of the dispatcher under
// /v1/, the event store's under /v1/eventstore/, the gateway's routes on
// every other path.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Components are the names `nubo serve` takes, in start order.
var Components = []string{"gateway", "events", "eventstore"}

// DefaultListen is where a component listens when neither --listen nor
// NUBO_LISTEN says otherwise: loopback, as every nubo listener.
const DefaultListen = "127.0.0.1:8080"

// Config is what `nubo serve` runs.
type Config struct {
	// App is the loaded spec (the spec ConfigMap's main file).
	App *spec.App
	// Components to run: a subset of Components.
	Components []string
	// NATSURL is the NATS server of the events component.
	NATSURL string
	// Listen is the HTTP listener's address; default DefaultListen.
	Listen string
	// SecretsDir holds one folder per secret, one file per key.
	SecretsDir string
	// Namespace is the Kubernetes namespace services and functions are
	// reached in; default the spec's.
	Namespace string
	// Getenv reads NUBO_SERVICE_<NAME>_URL and NUBO_FUNCTION_<NAME>_URL,
	// which override the in-cluster URLs; default os.Getenv.
	Getenv func(string) string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Server is a running set of components. Create it with New.
type Server struct {
	cfg   Config
	log   *slog.Logger
	host  *host.Host
	http  *httpComponent
	ready atomic.Bool
}

// New checks cfg and builds the components; nothing runs until Start.
func New(cfg Config) (*Server, error) {
	if cfg.App == nil {
		return nil, errors.New("serve: no spec")
	}
	if len(cfg.Components) == 0 {
		return nil, fmt.Errorf("serve: name at least one component: %s", strings.Join(Components, ", "))
	}
	for _, c := range cfg.Components {
		if !slices.Contains(Components, c) {
			return nil, fmt.Errorf("serve: unknown component %q (one of %s)", c, strings.Join(Components, ", "))
		}
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Namespace == "" {
		cfg.Namespace = cfg.App.Namespace
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	vals, err := secrets.FromDir(cfg.App, cfg.SecretsDir)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.http = &httpComponent{addr: cfg.Listen, metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ready: &s.ready}
	remote := functions.Remote{URL: s.functionURL}

	var comps []host.Component
	// One connection to NATS serves the dispatcher and the event store.
	var b *broker.Broker
	if slices.Contains(cfg.Components, "events") || slices.Contains(cfg.Components, "eventstore") {
		if cfg.NATSURL == "" {
			return nil, errors.New("serve: events and eventstore need a NATS server: --nats-url or NUBO_NATS_URL")
		}
		var err error
		if b, err = broker.New(broker.Config{URL: cfg.NATSURL, Logger: s.log}); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		comps = append(comps, named{"broker", b})
	}
	if slices.Contains(cfg.Components, "events") {
		d, err := events.New(events.Config{
			App: cfg.App, Broker: b, Deliverer: clusterDeliverer{s, remote},
			Logger: s.log, Metrics: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		comps = append(comps, named{"events", d})
		s.http.api = d.Handler()
	}
	if slices.Contains(cfg.Components, "eventstore") {
		if cfg.App.EventStore == nil {
			return nil, errors.New("serve: eventstore: the spec has no eventStore section")
		}
		r := resolver{app: cfg.App, vals: vals, getenv: cfg.Getenv}
		key, err := eventstore.EncryptionKey(cfg.App, r.secret)
		if err != nil {
			return nil, err
		}
		es, err := eventstore.New(eventstore.Config{
			App: cfg.App, Broker: b, Handlers: clusterDeliverer{s, remote}, Key: key,
			Logger: s.log, Metrics: reg,
		})
		if err != nil {
			return nil, err
		}
		comps = append(comps, named{"eventstore", es})
		s.http.eventstore = es.Handler()
	}
	if slices.Contains(cfg.Components, "gateway") {
		if cfg.App.Gateway == nil {
			return nil, errors.New("serve: gateway: the spec has no gateway section")
		}
		r := resolver{app: cfg.App, vals: vals, getenv: cfg.Getenv}
		g, err := gateway.New(gateway.Config{
			App:             cfg.App,
			Services:        gateway.ServicesFunc(s.serviceURL),
			Functions:       remote,
			Secrets:         r.secret,
			Resolve:         r.lookup,
			Logger:          s.log.With("component", "gateway"),
			Metrics:         reg,
			DurationBuckets: slo.LatencyBuckets(cfg.App),
		})
		if err != nil {
			return nil, err // gateway.New names the gateway
		}
		// The gateway serves on the component's listener, not its own.
		comps = append(comps, host.Func{ComponentName: "gateway", OnStop: g.Stop})
		s.http.gateway = g.Handler()
	}
	// The listener comes last: once it answers /readyz, everything runs.
	s.host = host.New(s.log, 0, append(comps, s.http)...)
	return s, nil
}

// Start starts the components and the listener.
func (s *Server) Start(ctx context.Context) error {
	if err := s.host.Start(ctx); err != nil {
		return err
	}
	s.ready.Store(true)
	return nil
}

// Addr is the listener's address, once started.
func (s *Server) Addr() string { return s.http.Addr() }

// Stop stops the listener, then the components, in reverse.
func (s *Server) Stop(ctx context.Context) error {
	s.ready.Store(false)
	return s.host.Stop(ctx)
}

// serviceURL is where a service is reached in the cluster: its Kubernetes
// Service, or NUBO_SERVICE_<NAME>_URL.
func (s *Server) serviceURL(name string) (string, error) {
	if u := s.cfg.Getenv("NUBO_SERVICE_" + envName(name) + "_URL"); u != "" {
		return strings.TrimRight(u, "/"), nil
	}
	svc := s.cfg.App.Services[name]
	if svc == nil {
		return "", fmt.Errorf("no service %q", name)
	}
	port := svc.Expose.Port
	if port == 0 {
		port = 80
	}
	return "http://" + name + "." + s.cfg.Namespace + ".svc.cluster.local:" + strconv.Itoa(port), nil
}

// functionURL is where a function is reached: its Knative Service, or
// NUBO_FUNCTION_<NAME>_URL.
func (s *Server) functionURL(name string) string {
	if u := s.cfg.Getenv("NUBO_FUNCTION_" + envName(name) + "_URL"); u != "" {
		return u
	}
	return "http://" + name + "." + s.cfg.Namespace + ".svc.cluster.local"
}

// envName is a name as it appears in an environment variable: users-db ->
// USERS_DB, as NUBO_SERVICE_<NAME>_URL is named under nubo up.
func envName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// clusterDeliverer reaches services and functions of the cluster.
type clusterDeliverer struct {
	s      *Server
	remote functions.Remote
}

func (d clusterDeliverer) ServiceURL(name string) (string, error) { return d.s.serviceURL(name) }

func (d clusterDeliverer) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	return d.remote.DeliverToFunction(ctx, name, evs)
}

func (d clusterDeliverer) Invoke(ctx context.Context, name string, ev event.Event) (functions.Result, error) {
	return d.remote.Invoke(ctx, name, ev)
}

// named gives a component of another package the host's Name.
type named struct {
	name string
	c    interface {
		Start(context.Context) error
		Stop(context.Context) error
	}
}

func (n named) Name() string                    { return n.name }
func (n named) Start(ctx context.Context) error { return n.c.Start(ctx) }
func (n named) Stop(ctx context.Context) error  { return n.c.Stop(ctx) }

// resolver resolves the gateway's ${...} on Kubernetes: env, secrets (from
// the mounted folder), config, services' URLs.
type resolver struct {
	app    *spec.App
	vals   secrets.Values
	getenv func(string) string
}

func (r resolver) secret(name, key string) (string, bool) {
	v, ok := r.vals.Get(name, key)
	return v.Reveal(), ok
}

func (r resolver) lookup(expr string) (string, error) {
	return spec.Refs{App: r.app, Getenv: r.getenv, Secret: r.secret,
		SecretHint: " (is it mounted under NUBO_SECRETS_DIR?)",
		Other: func(expr string, _ []string) (string, error) {
			return "", fmt.Errorf("${%s} cannot be resolved by nubo serve", expr)
		}}.Lookup(expr)
}

// httpComponent is the component's one listener.
type httpComponent struct {
	addr    string
	metrics http.Handler
	api     http.Handler // the dispatcher's platform API, under /v1/
	// eventstore is the event store's part of the platform API, under
	// /v1/eventstore/.
	eventstore http.Handler
	gateway    http.Handler // every other path
	ready      *atomic.Bool

	srv *http.Server
	ln  net.Listener
}

func (h *httpComponent) Name() string { return "http" }

func (h *httpComponent) Start(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !h.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", h.metrics)
	if h.api != nil {
		mux.Handle("/v1/", h.api)
	}
	if h.eventstore != nil {
		mux.Handle("/v1/eventstore/", h.eventstore)
	}
	if h.gateway != nil {
		mux.Handle("/", h.gateway)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", h.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", h.addr, err)
	}
	// In a pod as on one machine: capped connections, header, body and
	// idle timeouts (see internal/netguard).
	limits := netguard.Limits{}.WithDefaults(netguard.Gateway)
	h.ln = netguard.NewLimiter(limits.MaxConns).Listener(ln)
	ln = h.ln
	h.srv = &http.Server{
		Handler:        mux,
		MaxHeaderBytes: 1 << 20,
	}
	netguard.Server(h.srv, limits)
	go func() { _ = h.srv.Serve(ln) }()
	return nil
}

func (h *httpComponent) Stop(ctx context.Context) error {
	if err := h.srv.Shutdown(ctx); err != nil {
		_ = h.srv.Close()
		return err
	}
	return nil
}

// Addr is the listener's address, once it listens.
func (h *httpComponent) Addr() string {
	if h.ln == nil {
		return ""
	}
	return h.ln.Addr().String()
}
