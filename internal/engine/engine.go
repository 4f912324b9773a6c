// Package engine runs a spec on one machine (`nubo up`). It is a list of
// components on one host (internal/host): the engine builds them from the
// spec in components.go, the one place that says their order, and the host
// starts them in that order, rolls back in reverse when one fails, stops
// them in reverse and reloads them in two phases.
//
// Start order: the reaper and the state directory's lock; the broker; the
// console (admin and platform API, Prometheus API); observability; the
// databases; the mesh and ingress; functions; the gateway; events; the event
// store; services, each once everything in its dependsOn is ready. Secrets are resolved before any of
// it, so a missing key starts nothing.
//
// Runtime cycles (events deliver to functions, functions dead-letter into
// events; the mesh reaches services' replicas, services get their proxies
// from the mesh; the ingress hands paths to the gateway, the gateway reaches
// services through the mesh) are closed once, when the components are
// built, through small interfaces: never by reading the engine under a lock
// on each delivery.
//
// # Locking
//
// Engine.mu guards the running spec and its secrets' values, which a reload
// replaces. It is never held while a component is called.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/procgroup"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Options are the engine's dependencies; zero values take sensible defaults.
type Options struct {
	// Logger receives the engine's own diagnostics; nil discards them.
	Logger *slog.Logger
	// Out receives the `docker compose up`-like stream; nil discards it.
	Out io.Writer
	// Color prefixes lines with ANSI colors (for a terminal).
	Color bool
	// Getenv reads the environment of `nubo up`; default os.Getenv.
	Getenv func(string) string
	// IdentityPath is the age identity of the secrets store; default
	// secrets.DefaultIdentityPath().
	IdentityPath string
	// ConsoleAddr overrides local.console (tests use 127.0.0.1:0).
	ConsoleAddr string
	// OTLPAddr overrides local.otlp (tests use 127.0.0.1:0).
	OTLPAddr string
	// StateDir overrides local.stateDir (nubo up --state): a second copy of
	// the same spec gets its own state, lock and secrets store. Relative
	// paths are taken from the working directory.
	StateDir string
	// NoWatch turns off hot reload of the spec and of services' watch paths.
	NoWatch bool
	// ReaperArgv starts the watchdog that kills every process group if nubo
	// itself is killed (see reaper.go): nubo's own binary and its hidden
	// reaper command. Empty runs no reaper.
	ReaperArgv []string
	// NoCgroups gives replicas and function instances no cgroups, as on a
	// machine where none is writable: nubo becomes a child subreaper
	// instead (see orphans.go). For tests of that path.
	NoCgroups bool
}

// Engine runs one spec. Create it with New, then Run (or Start and Stop).
type Engine struct {
	opts    Options
	log     *slog.Logger
	logs    *logs.Store
	out     *output
	metrics *engineMetrics

	// The components, set by Start (components.go) and not replaced after.
	host   *host.Host
	reaper *reaper
	// cgroups hold the replicas' process trees (see internal/procgroup).
	cgroups *procgroup.Tree
	// orphans is the child subreaper where there are no cgroups; nil
	// otherwise (orphans.go).
	orphans *orphans
	lock    *stateLock
	broker  *brokerComponent
	admin   *consoleComponent
	obs     *observability
	tracing *tracingComponent
	dbs     *databasesComponent
	mesh    *meshComponent
	fns     *functionsComponent
	gateway *gatewayComponent
	events  *eventsComponent
	// eventStore is nil when the spec has no eventStore section.
	eventStore *eventStoreComponent
	services   *servicesComponent
	audit      *auditTrail

	mu   sync.Mutex // guards the fields below
	app  *spec.App
	vals secrets.Values
	// next and nextVals are the spec a reload prepares, and its values.
	next        *spec.App
	nextVals    secrets.Values
	started     time.Time
	running     bool // Start succeeded and Stop has not begun
	startCalled bool

	shutdownOnce sync.Once
	shutdown     chan struct{} // closed when the console asks the engine to stop
	bg           sync.WaitGroup
	bgCancel     context.CancelFunc // stops the watchers
}

// New checks the spec and prepares an engine; it starts nothing.
func New(app *spec.App, opts Options) (*Engine, error) {
	if app == nil {
		return nil, errors.New("engine: no spec")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.StateDir != "" {
		abs, err := filepath.Abs(opts.StateDir)
		if err != nil {
			return nil, fmt.Errorf("state directory %q: %w", opts.StateDir, err)
		}
		opts.StateDir = abs
		app.Local.StateDir = abs
	}
	store := logs.New(0)
	return &Engine{
		opts:     opts,
		log:      opts.Logger,
		logs:     store,
		out:      newOutput(opts.Out, opts.Color, store),
		metrics:  newEngineMetrics(),
		app:      app,
		shutdown: make(chan struct{}),
	}, nil
}

// Run starts the engine, waits until ctx is done or the console asks it to
// stop, then stops it. A failed start returns the error, having stopped what
// had started.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-e.shutdown:
	}
	e.out.event("", "stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), e.maxGrace()+10*time.Second)
	defer cancel()
	return e.Stop(stopCtx)
}

// Shutdown asks Run to stop the engine; it returns at once.
func (e *Engine) Shutdown() {
	e.shutdownOnce.Do(func() { close(e.shutdown) })
}

// Start brings the system up and returns once the console answers and every
// service has been started in dependency order; services become ready in
// the background (WaitReady waits for them). A failed start leaves nothing
// running.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.startCalled {
		e.mu.Unlock()
		return errors.New("engine: Start called twice (an engine runs once; make a new one)")
	}
	e.startCalled = true
	app := e.app
	e.started = time.Now()
	e.mu.Unlock()

	vals, err := e.resolveSecrets(app)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.vals = vals
	e.mu.Unlock()
	for _, s := range skippedSections(app) {
		e.out.event("", "skipping "+s.Section+": "+s.Reason)
	}
	// Every listener's connection cap comes from the open-file limit, so
	// that a flood of clients leaves the broker its descriptors.
	limit, err := netguard.RaiseFileLimit()
	if err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	b := netguard.BudgetFor(limit)
	e.log.Debug("open-file budget", "limit", b.Limit, "reserve", b.Reserve,
		"gateway", b.Gateway, "ingress", b.Ingress, "mesh", b.Mesh, "console", b.Console)
	comps, err := e.build(app, vals)
	if err != nil {
		return err
	}
	e.host = host.New(e.log, e.maxGrace()+10*time.Second, comps...)
	if err := e.host.Start(ctx); err != nil {
		return err
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	e.running, e.bgCancel = true, cancel
	e.mu.Unlock()
	if !e.opts.NoWatch {
		e.watchSpec(bgCtx)
		e.services.watchAll()
	}
	return nil
}

// WaitReady blocks until every service has been ready once, or ctx is done.
func (e *Engine) WaitReady(ctx context.Context) error {
	if e.services == nil {
		return errors.New("engine: not started")
	}
	return e.services.waitReady(ctx)
}

// Stop stops every component in the reverse of their start order: the
// dispatcher and the gateway stop before the services (no new deliveries or
// requests while they stop), services in reverse dependency order, the mesh
// after them, the console last but for the lock. Safe to call more than
// once.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	h, cancel := e.host, e.bgCancel
	wasRunning := e.running
	e.running = false
	e.mu.Unlock()
	if h == nil {
		return nil
	}
	if cancel != nil {
		cancel()
	}
	e.bg.Wait()
	err := h.Stop(ctx)
	if err == nil && wasRunning {
		e.out.event("", "stopped")
	}
	return err
}

// current returns the running spec and its secrets' values.
func (e *Engine) current() (*spec.App, secrets.Values) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.app, e.vals
}

// maxGrace is the longest stopGracePeriod of the spec's services.
func (e *Engine) maxGrace() time.Duration {
	app, _ := e.current()
	d := 30 * time.Second
	for _, s := range app.Services {
		d = max(d, s.StopGracePeriod.Duration)
	}
	return d
}

func (e *Engine) resolveSecrets(app *spec.App) (secrets.Values, error) {
	if len(app.Secrets) == 0 {
		return secrets.Values{}, nil
	}
	idPath := e.opts.IdentityPath
	if idPath == "" {
		p, err := secrets.DefaultIdentityPath()
		if err != nil {
			return nil, err
		}
		idPath = p
	}
	store, err := secrets.OpenStore(app.StatePath(), idPath)
	if err != nil {
		return nil, err
	}
	return secrets.Resolve(app, store, e.opts.Getenv)
}
