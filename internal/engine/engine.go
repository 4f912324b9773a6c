// Package engine runs a spec on one machine: it wires the components of
// `nubo up` (today the process supervisor, the admin console and hot reload;
// the broker, mesh, gateway and the rest as they arrive), starts them in
// dependency order and stops them in reverse.
//
// Start order: the state directory's lock, secrets (a missing key stops
// everything before anything starts), the console, builds, then services,
// each once everything in its dependsOn is ready. Stop is the reverse: a
// service stops only after every service that depends on it has stopped.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
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
	// NoWatch turns off hot reload of the spec and of services' watch paths.
	NoWatch bool
	// ReaperArgv starts the watchdog that kills every process group if nubo
	// itself is killed (see reaper.go): nubo's own binary and its hidden
	// reaper command. Empty runs no reaper.
	ReaperArgv []string
}

// Engine runs one spec. Create it with New, then Run (or Start and Stop).
type Engine struct {
	opts    Options
	log     *slog.Logger
	logs    *logs.Store
	out     *output
	metrics *engineMetrics

	mu       sync.Mutex // guards the fields below
	app      *spec.App
	vals     secrets.Values
	services map[string]*serviceRun
	lock     *stateLock
	admin    *console.Server
	mesh     *mesh.Mesh
	obs      *observability
	fns      *functions.Functions
	gateway  *gateway.Gateway
	broker   *broker.Broker
	events   *events.Dispatcher
	// eventsAPI and fnsAPI serve the platform API's routes of the events
	// and functions components, which a reload replaces.
	eventsAPI swapHandler
	fnsAPI    swapHandler
	// eventsCancel stops the queue triggers' workers of the running
	// dispatcher.
	eventsCancel context.CancelFunc
	// deadLetters publishes a function's failed event to its dead-letter
	// queue; nil until the events component runs.
	deadLetters func(context.Context, functions.DeadLetter) error
	reaper      *reaper
	// beenReady holds the replicas that have been ready once.
	beenReady map[replicaKey]bool
	started   time.Time
	stopped   bool

	shutdownOnce sync.Once
	shutdown     chan struct{} // closed when the console asks the engine to stop
	bg           sync.WaitGroup
	bgCtx        context.Context // the background loops' context, until Stop
	bgCancel     context.CancelFunc
}

// replicaKey names a replica across services: replica IDs are unique within
// one supervisor only (and a reloaded service's new supervisor counts
// again, which only costs a line of output).
type replicaKey struct {
	service string
	id      int
}

// serviceRun is one running service: its supervisor and the loops around it.
type serviceRun struct {
	name string
	spec *spec.Service
	cfg  supervisor.ServiceConfig
	// specEnv is the part of cfg.Env the spec decides, compared on reload.
	specEnv []string
	sup     *supervisor.Supervisor
	auto    *supervisor.Autoscaler
	ready   chan struct{} // closed once every replica has been ready
	stop    context.CancelFunc
	done    chan struct{} // closed when the run's goroutine has returned
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
	store := logs.New(0)
	return &Engine{
		opts:     opts,
		log:      opts.Logger,
		logs:     store,
		out:      newOutput(opts.Out, opts.Color, store),
		metrics:  newEngineMetrics(),
		app:      app,
		services: map[string]*serviceRun{},
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
// the background (WaitReady waits for them).
func (e *Engine) Start(ctx context.Context) (err error) {
	e.mu.Lock()
	app := e.app
	e.started = time.Now()
	e.mu.Unlock()
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), e.maxGrace()+10*time.Second)
			defer cancel()
			_ = e.Stop(stopCtx)
		}
	}()

	consoleAddr := app.Local.Console
	if e.opts.ConsoleAddr != "" {
		consoleAddr = e.opts.ConsoleAddr
	}
	if len(e.opts.ReaperArgv) > 0 {
		rp, err := startReaper(e.opts.ReaperArgv)
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.reaper = rp
		e.mu.Unlock()
	}
	lock, err := lockStateDir(app.StatePath(), LockInfo{PID: os.Getpid(), Console: consoleAddr, Spec: app.File, Started: e.started})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.lock = lock
	e.mu.Unlock()

	vals, err := e.resolveSecrets(app)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.vals = vals
	e.mu.Unlock()

	for _, w := range skippedSections(app) {
		e.out.event("", "skipping "+w.Section+": "+w.Reason)
	}

	b, err := e.startBroker(ctx, app)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.broker = b
	e.mu.Unlock()
	d, err := e.newDispatcher(app, b)
	if err != nil {
		return err
	}
	e.eventsAPI.set(d.Handler())
	obs, err := e.newObservability(app, consoleAddr)
	if err != nil {
		return err
	}
	fns, err := e.newFunctions(app)
	if err != nil {
		return err
	}
	routes := append(obs.routes(), e.functionRoutes(fns)...)
	routes = append(routes, console.Route{Pattern: "/v1/", Handler: &e.eventsAPI})
	admin, err := e.startAdmin(ctx, consoleAddr, routes)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.admin = admin
	e.mu.Unlock()
	// The lock records the address the console really got (port 0 in tests).
	lock.update(LockInfo{PID: os.Getpid(), Console: admin.Addr(), Spec: app.File, Started: e.started})
	e.out.event("", fmt.Sprintf("console and admin API on http://%s", admin.Addr()))

	m, err := e.startMesh(ctx, app)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.mesh = m
	e.obs = obs
	e.fns = fns
	e.mu.Unlock()
	if err := obs.start(ctx); err != nil {
		return err
	}
	if err := fns.Start(ctx); err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	if names := fns.Names(); len(names) > 0 {
		e.out.event("", "functions ready, at their minimum instances: "+strings.Join(names, ", "))
	}

	g, err := e.startGateway(ctx, app)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.gateway = g
	e.mu.Unlock()

	bgCtx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	e.bgCtx, e.bgCancel = bgCtx, cancel
	e.mu.Unlock()
	if err := e.startEvents(bgCtx, app, d); err != nil {
		return err
	}

	runs, err := e.prepareServices(ctx, app, sortedServiceNames(app))
	if err != nil {
		return err
	}
	e.mu.Lock()
	for _, r := range runs {
		e.services[r.name] = r
	}
	e.mu.Unlock()
	for _, r := range runs {
		e.launch(bgCtx, r)
	}
	if !e.opts.NoWatch {
		e.startWatchers(bgCtx)
	}
	return nil
}

// WaitReady blocks until every service has been ready once, or ctx is done.
func (e *Engine) WaitReady(ctx context.Context) error {
	e.mu.Lock()
	runs := make([]*serviceRun, 0, len(e.services))
	for _, r := range e.services {
		runs = append(runs, r)
	}
	e.mu.Unlock()
	for _, r := range runs {
		select {
		case <-r.ready:
		case <-ctx.Done():
			return fmt.Errorf("service %q not ready: %w", r.name, ctx.Err())
		}
	}
	return nil
}

// Stop stops every service in reverse dependency order, then the console,
// then releases the state directory. Safe to call more than once.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	app := e.app
	runs := e.services
	e.services = map[string]*serviceRun{}
	admin, lock, m, obs, fns, d, b, g := e.admin, e.lock, e.mesh, e.obs, e.fns, e.events, e.broker, e.gateway
	e.mu.Unlock()
	var errs []error

	if e.bgCancel != nil {
		e.bgCancel()
	}
	// The gateway and the dispatcher stop first: no new requests or
	// deliveries while services stop (they would turn into retries and dead
	// letters).
	if g != nil {
		if err := g.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
		}
	}
	if d != nil {
		if err := d.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("events: %w", err))
		}
	}
	for _, level := range stopLevels(app, runs) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, r := range level {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.stopRun(ctx, r); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	e.bg.Wait()
	if fns != nil {
		if err := fns.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("functions: %w", err))
		}
	}
	// The mesh stops after the services (their last calls and streams end)
	// and before the console.
	if err := m.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("mesh: %w", err))
	}
	if err := obs.stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if b != nil {
		if err := b.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
		}
	}
	if admin != nil {
		if err := admin.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	lock.release()
	e.mu.Lock()
	rp := e.reaper
	e.reaper = nil
	e.mu.Unlock()
	rp.close()
	if len(errs) == 0 {
		e.out.event("", "stopped")
	}
	return errors.Join(errs...)
}

func (e *Engine) stopRun(ctx context.Context, r *serviceRun) error {
	r.stop()
	err := r.sup.Stop(ctx)
	<-r.done
	if err != nil {
		return fmt.Errorf("service %q: stop: %w", r.name, err)
	}
	return nil
}

// maxGrace is the longest stopGracePeriod of the spec's services.
func (e *Engine) maxGrace() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := 30 * time.Second
	for _, s := range e.app.Services {
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

// prepareServices builds the named services (in dependency order) and
// creates their supervisors, without starting them.
func (e *Engine) prepareServices(ctx context.Context, app *spec.App, names []string) ([]*serviceRun, error) {
	var runs []*serviceRun
	for _, name := range names {
		s := app.Services[name]
		if s.Run == "" {
			e.out.event(name, fmt.Sprintf("skipping service %s: no run command (Kubernetes only)", name))
			continue
		}
		cfg, specEnv, err := e.serviceConfig(app, name, s)
		if err != nil {
			return nil, err
		}
		if s.Build != "" {
			e.out.event(name, fmt.Sprintf("building %s: %s", name, s.Build))
			start := time.Now()
			if err := runBuild(ctx, name, s.Build, cfg.Dir, cfg.Env, func(l string) { e.out.buildLine(name, l) }, e.trackBuild); err != nil {
				e.metrics.builds.WithLabelValues(name, "failure").Inc()
				return nil, err
			}
			e.metrics.builds.WithLabelValues(name, "success").Inc()
			e.out.event(name, fmt.Sprintf("built %s in %s", name, time.Since(start).Round(time.Millisecond)))
		}
		sup, err := supervisor.New(cfg,
			supervisor.WithLogger(e.log.With("service", name)),
			supervisor.WithLineSink(e.out),
			supervisor.WithEventSink(supervisor.EventFunc(e.onEvent)),
			supervisor.WithSampleInterval(app.Local.Supervisor.SampleInterval.Duration),
		)
		if err != nil {
			return nil, err
		}
		r := &serviceRun{name: name, spec: s, cfg: cfg, specEnv: specEnv, sup: sup, ready: make(chan struct{}), done: make(chan struct{}), stop: func() {}}
		if p := autoscalePolicy(app, s); p != nil {
			if r.auto, err = supervisor.NewAutoscaler(sup, *p); err != nil {
				return nil, fmt.Errorf("service %q: scaling: %w", name, err)
			}
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// serviceConfig resolves a service's environment and maps it for the supervisor.
// The environment has two parts: the platform's (mesh proxies, NUBO_API),
// then the spec's, which wins on a clash. specEnv is returned apart so that
// reload compares only what the spec decides: a service added elsewhere
// changes everyone's NUBO_SERVICE_*_URL, but restarts no one.
func (e *Engine) serviceConfig(app *spec.App, name string, s *spec.Service) (cfg supervisor.ServiceConfig, specEnv []string, err error) {
	e.mu.Lock()
	vals := e.vals
	e.mu.Unlock()
	r := &envResolver{app: app, getenv: e.opts.Getenv, secrets: secretLookup(vals), notYet: func(expr string) {
		e.out.event(name, fmt.Sprintf("service %s: ${%s} is empty: nubo up does not run that part yet", name, expr))
	}}
	specEnv, err = serviceEnv(app, name, s.Env, s.EnvFrom, r)
	if err != nil {
		return cfg, nil, err
	}
	platform, err := e.platformEnv(name)
	if err != nil {
		return cfg, nil, fmt.Errorf("service %q: %w", name, err)
	}
	return supervisorConfig(app, name, s, append(platform, specEnv...)), specEnv, nil
}

type secretLookup secrets.Values

func (v secretLookup) Get(name, key string) (string, bool) {
	val, ok := secrets.Values(v).Get(name, key)
	return val.Reveal(), ok
}

// launch starts a service once its dependencies are ready, in the
// background, and closes r.ready when all its replicas are ready.
func (e *Engine) launch(parent context.Context, r *serviceRun) {
	ctx, cancel := context.WithCancel(parent)
	r.stop = cancel
	deps := e.dependencyRuns(r)
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer close(r.done)
		for _, d := range deps {
			select {
			case <-d.ready:
			case <-ctx.Done():
				return
			default:
				e.out.event(r.name, fmt.Sprintf("%s waiting for %s to be ready", r.name, d.name))
				select {
				case <-d.ready:
				case <-ctx.Done():
					return
				}
			}
		}
		if err := r.sup.Start(ctx); err != nil {
			e.out.event(r.name, fmt.Sprintf("%s failed to start: %v", r.name, err))
			return
		}
		if r.auto != nil {
			e.bg.Add(1)
			go func() {
				defer e.bg.Done()
				_ = r.auto.Run(ctx)
			}()
		}
		if err := r.sup.WaitReady(ctx); err != nil {
			return
		}
		close(r.ready)
		e.out.event(r.name, fmt.Sprintf("%s ready (%d replicas)", r.name, r.sup.Status().Ready))
	}()
}

// dependencyRuns returns the running services r depends on. Dependencies on
// parts nubo up does not run yet (databases, functions) are reported and
// count as met.
func (e *Engine) dependencyRuns(r *serviceRun) []*serviceRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*serviceRun
	for _, d := range r.spec.DependsOn {
		if dr, ok := e.services[d]; ok {
			out = append(out, dr)
			continue
		}
		if _, isService := e.app.Services[d]; !isService {
			e.out.event(r.name, fmt.Sprintf("%s depends on %s, which nubo up does not run yet: not waiting for it", r.name, d))
		}
	}
	return out
}

func (e *Engine) onEvent(ev supervisor.Event) {
	e.metrics.observe(ev)
	e.trackProcess(ev)
	e.endpointsChanged(ev)
	if e.startupNoise(ev) {
		return
	}
	e.out.Event(ev)
}

// startupNoise reports a probe failure of a replica that has not been ready
// yet and has not reached its failure threshold: a process still opening its
// port fails its first probes, which is worth a line only if it goes on.
// Status and metrics still count it.
func (e *Engine) startupNoise(ev supervisor.Event) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.beenReady == nil {
		e.beenReady = map[replicaKey]bool{}
	}
	k := replicaKey{ev.Service, ev.ReplicaID}
	switch ev.Kind {
	case supervisor.EventReady:
		e.beenReady[k] = true
	case supervisor.EventStopped, supervisor.EventFailed:
		delete(e.beenReady, k)
	case supervisor.EventUnhealthy:
		return !e.beenReady[k] && ev.Failures < ev.Threshold
	}
	return false
}

// trackProcess tells the reaper about replicas' process groups as they come
// and go: every process's end is an Exited event with its pid.
func (e *Engine) trackProcess(ev supervisor.Event) {
	e.mu.Lock()
	rp := e.reaper
	e.mu.Unlock()
	switch ev.Kind {
	case supervisor.EventStarted:
		rp.track(ev.PID)
	case supervisor.EventExited:
		rp.untrack(ev.PID)
	}
}

// trackBuild tells the reaper about a build's process group.
func (e *Engine) trackBuild(pgid int, alive bool) {
	e.mu.Lock()
	rp := e.reaper
	e.mu.Unlock()
	if alive {
		rp.track(pgid)
	} else {
		rp.untrack(pgid)
	}
}

// bgContext is the context of the engine's background loops.
func (e *Engine) bgContext() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bgCtx == nil {
		return context.Background()
	}
	return e.bgCtx
}
