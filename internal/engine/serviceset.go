package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// readyTimeout bounds how long a reload waits for a changed service's new
// replicas before giving up and keeping the old ones.
const readyTimeout = 2 * time.Minute

// servicesComponent runs the spec's services, each as a supervisor of its
// replicas, started in dependency order and stopped in reverse. It is the
// mesh's source of endpoints.
//
// Lock order: servicesComponent.mu, then nothing; it is never held while a
// supervisor is called.
type servicesComponent struct {
	e   *Engine
	env *envSource
	// platform and mesh are set once, by build, before anything starts.
	platform *platform
	mesh     *mesh.Mesh

	bg     sync.WaitGroup // the services' goroutines
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex // guards the fields below
	app       *spec.App
	vals      secrets.Values
	runs      map[string]*serviceRun
	beenReady map[replicaKey]bool // replicas that have been ready once
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
	// ctx is the run's context, set by launch and done when it stops: the
	// work a run starts later (a restart, a scale) ends with it.
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{} // closed when the run's goroutine has returned
}

func newServicesComponent(e *Engine, app *spec.App, vals secrets.Values, env *envSource) *servicesComponent {
	ctx, cancel := context.WithCancel(context.Background())
	return &servicesComponent{e: e, env: env, app: app, vals: vals, runs: map[string]*serviceRun{},
		beenReady: map[replicaKey]bool{}, ctx: ctx, cancel: cancel}
}

func (c *servicesComponent) Name() string { return "services" }

// Start builds every service (in dependency order) and launches it; each
// starts once its dependencies are ready. It returns without waiting for
// readiness (waitReady does).
func (c *servicesComponent) Start(ctx context.Context) error {
	c.mu.Lock()
	app, vals := c.app, c.vals
	c.mu.Unlock()
	runs, err := c.prepare(ctx, app, vals, sortedServiceNames(app))
	if err != nil {
		return err
	}
	c.mu.Lock()
	for _, r := range runs {
		c.runs[r.name] = r
	}
	c.mu.Unlock()
	for _, r := range runs {
		c.launch(r)
	}
	return nil
}

// Stop stops the services in reverse dependency order: a service stops only
// after every service that depends on it has stopped.
func (c *servicesComponent) Stop(ctx context.Context) error {
	c.mu.Lock()
	app, runs := c.app, c.runs
	c.runs = map[string]*serviceRun{}
	c.mu.Unlock()
	c.cancel()
	var errs []error
	for _, level := range stopLevels(app, runs) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, r := range level {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := stopRun(ctx, r); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	c.bg.Wait()
	return errors.Join(errs...)
}

func stopRun(ctx context.Context, r *serviceRun) error {
	r.stop()
	err := r.sup.Stop(ctx)
	<-r.done
	if err != nil {
		return fmt.Errorf("service %q: stop: %w", r.name, err)
	}
	return nil
}

// prepare builds the named services (in dependency order) and creates their
// supervisors, without starting them.
func (c *servicesComponent) prepare(ctx context.Context, app *spec.App, vals secrets.Values, names []string) ([]*serviceRun, error) {
	e := c.e
	var runs []*serviceRun
	for _, name := range names {
		s := app.Services[name]
		if s.Run == "" {
			e.out.event(name, fmt.Sprintf("skipping service %s: no run command (Kubernetes only)", name))
			continue
		}
		cfg, specEnv, err := c.config(app, vals, name, s)
		if err != nil {
			return nil, err
		}
		if s.Build != "" {
			if err := c.build(ctx, name, s.Build, cfg); err != nil {
				return nil, err
			}
		}
		sup, err := supervisor.New(cfg,
			supervisor.WithLogger(e.log.With("service", name)),
			supervisor.WithLineSink(e.out),
			supervisor.WithEventSink(supervisor.EventFunc(c.onEvent)),
			supervisor.WithSampleInterval(app.Local.Supervisor.SampleInterval.Duration),
			supervisor.WithCgroups(replicaCgroups{e}),
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

// build runs a service's build command, its output under `name-build |`.
func (c *servicesComponent) build(ctx context.Context, name, command string, cfg supervisor.ServiceConfig) error {
	e := c.e
	e.out.event(name, fmt.Sprintf("building %s: %s", name, command))
	start := time.Now()
	if err := runBuild(ctx, fmt.Sprintf("service %q", name), command, cfg.Dir, cfg.Env, func(l string) { e.out.buildLine(name, l) }, e.trackBuild); err != nil {
		e.metrics.builds.WithLabelValues(name, "failure").Inc()
		return err
	}
	e.metrics.builds.WithLabelValues(name, "success").Inc()
	e.out.event(name, fmt.Sprintf("built %s in %s", name, time.Since(start).Round(time.Millisecond)))
	return nil
}

// runBuild runs a build of what (`service "api"`), its output lines going
// to line.
func runBuild(ctx context.Context, what, command, dir string, env []string, line func(string), track func(pgid int, alive bool)) error {
	return supervisor.RunBuild(ctx, what, command, dir, env, func(b []byte) { line(string(b)) }, track)
}

// config resolves a service's environment and maps it for the supervisor.
// The environment has two parts: the platform's (mesh proxies, NUBO_API),
// then the spec's, which wins on a clash. specEnv is returned apart so that
// reload compares only what the spec decides: a service added elsewhere
// changes everyone's NUBO_SERVICE_*_URL, but restarts no one.
func (c *servicesComponent) config(app *spec.App, vals secrets.Values, name string, s *spec.Service) (cfg supervisor.ServiceConfig, specEnv []string, err error) {
	specEnv, err = serviceEnv(app, name, s.Env, s.EnvFrom, c.env.resolver(app, vals, "service", name))
	if err != nil {
		return cfg, nil, err
	}
	platform, err := c.platform.env(name)
	if err != nil {
		return cfg, nil, fmt.Errorf("service %q: %w", name, err)
	}
	return supervisorConfig(app, name, s, append(platform, specEnv...)), specEnv, nil
}

// launch starts a service once its dependencies are ready, in the
// background, and closes r.ready when all its replicas are ready.
func (c *servicesComponent) launch(r *serviceRun) {
	ctx, cancel := context.WithCancel(c.ctx)
	r.ctx, r.stop = ctx, cancel
	deps := c.dependencies(r)
	out := c.e.out
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer close(r.done)
		for _, d := range deps {
			select {
			case <-d.ready:
			case <-ctx.Done():
				return
			default:
				msg := fmt.Sprintf("%s waiting for %s to be ready", r.name, d.name)
				if d.failure != nil {
					if why := d.failure(); why != "" {
						msg += ": " + why
					}
				}
				out.event(r.name, msg)
				select {
				case <-d.ready:
				case <-ctx.Done():
					return
				}
			}
		}
		if err := r.sup.Start(ctx); err != nil {
			out.event(r.name, fmt.Sprintf("%s failed to start: %v", r.name, err))
			return
		}
		if r.auto != nil {
			c.bg.Add(1)
			go func() {
				defer c.bg.Done()
				_ = r.auto.Run(ctx)
			}()
		}
		if err := r.sup.WaitReady(ctx); err != nil {
			return
		}
		close(r.ready)
		out.event(r.name, fmt.Sprintf("%s ready (%d replicas)", r.name, r.sup.Status().Ready))
	}()
}

// dependency is something a service waits for: a service's replicas all
// ready once, or a database answering queries.
type dependency struct {
	name  string
	ready <-chan struct{}
	// failure says why a failed dependency is not ready; nil for services.
	failure func() string
}

// dependencies returns what r waits for: the running services and the
// databases it depends on. Functions are running before any service
// starts.
func (c *servicesComponent) dependencies(r *serviceRun) []dependency {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []dependency
	for _, d := range r.spec.DependsOn {
		if dr, ok := c.runs[d]; ok {
			out = append(out, dependency{name: d, ready: dr.ready})
			continue
		}
		if db := c.e.dbs.get(d); db != nil {
			out = append(out, dependency{name: d, ready: db.Ready(), failure: db.Failure})
		}
	}
	return out
}

func (c *servicesComponent) onEvent(ev supervisor.Event) {
	c.e.metrics.observe(ev)
	switch ev.Kind {
	case supervisor.EventStarted:
		c.e.reaper.track(ev.PID)
	case supervisor.EventExited:
		c.e.reaper.untrack(ev.PID)
	}
	c.endpointsChanged(ev)
	if c.startupNoise(ev) {
		return
	}
	c.e.out.Event(ev)
}

// startupNoise reports a probe failure of a replica that has not been ready
// yet and has not reached its failure threshold: a process still opening its
// port fails its first probes, which is worth a line only if it goes on.
// Status and metrics still count it.
func (c *servicesComponent) startupNoise(ev supervisor.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := replicaKey{ev.Service, ev.ReplicaID}
	switch ev.Kind {
	case supervisor.EventReady:
		c.beenReady[k] = true
	case supervisor.EventStopped, supervisor.EventFailed:
		delete(c.beenReady, k)
	case supervisor.EventUnhealthy:
		return !c.beenReady[k] && ev.Failures < ev.Threshold
	}
	return false
}

// Endpoints implements mesh.Endpoints: where a service's replicas listen
// and which are ready; a retiring replica (being replaced or removed) takes
// no new requests.
func (c *servicesComponent) Endpoints(service string) []mesh.Endpoint {
	c.mu.Lock()
	r := c.runs[service]
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	st := r.sup.Status()
	out := make([]mesh.Endpoint, 0, len(st.Replicas))
	for _, rep := range st.Replicas {
		if rep.Port == 0 {
			continue
		}
		out = append(out, mesh.Endpoint{
			ID:    strconv.Itoa(rep.ID),
			Addr:  "127.0.0.1:" + strconv.Itoa(rep.Port),
			Ready: rep.Ready && !rep.Retiring,
		})
	}
	return out
}

// endpointsChanged tells the mesh at once when a replica's readiness may
// have changed, rather than at its next periodic refresh.
func (c *servicesComponent) endpointsChanged(ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.EventStarted, supervisor.EventReady, supervisor.EventNotReady, supervisor.EventExited,
		supervisor.EventStopped, supervisor.EventFailed, supervisor.EventKilling:
		c.mesh.EndpointsChanged(ev.Service)
	}
}

// waitReady blocks until every service has been ready once, or ctx is done.
func (c *servicesComponent) waitReady(ctx context.Context) error {
	for _, r := range c.list() {
		select {
		case <-r.ready:
		case <-ctx.Done():
			return fmt.Errorf("service %q not ready: %w", r.name, ctx.Err())
		}
	}
	return nil
}

// list returns the running services in start order.
func (c *servicesComponent) list() []*serviceRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	order := map[string]int{}
	for i, n := range sortedServiceNames(c.app) {
		order[n] = i
	}
	runs := make([]*serviceRun, 0, len(c.runs))
	for _, r := range c.runs {
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return order[runs[i].name] < order[runs[j].name] })
	return runs
}

func (c *servicesComponent) status() []console.ServiceStatus {
	var out []console.ServiceStatus
	for _, r := range c.list() {
		ss := console.ServiceStatus{ServiceStatus: r.sup.Status(), Kind: console.KindService}
		if r.auto != nil {
			p := r.auto.Policy()
			sc := &console.ScalingStatus{Min: p.MinReplicas, Max: p.MaxReplicas}
			if d, ok := r.auto.LastDecision(); ok {
				sc.LastDecision, sc.LastDecisionTime = d.Reason, d.Time
			}
			ss.Scaling = sc
		}
		out = append(out, ss)
	}
	return out
}

func (c *servicesComponent) supervisorStatuses() []supervisor.ServiceStatus {
	runs := c.list()
	out := make([]supervisor.ServiceStatus, len(runs))
	for i, r := range runs {
		out[i] = r.sup.Status()
	}
	return out
}

// restart replaces every replica of a service, one by one.
func (c *servicesComponent) restart(ctx context.Context, name string) error {
	c.mu.Lock()
	r, ok := c.runs[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("service %q: %w", name, console.ErrNotFound)
	}
	c.e.out.event(name, "restarting "+name)
	c.background(r, func(ctx context.Context) {
		if err := r.sup.RestartAll(ctx); err != nil && ctx.Err() == nil {
			c.e.out.event(name, fmt.Sprintf("restart of %s failed: %v", name, err))
		}
	})
	return nil
}

// scale sets a service's replicas by hand, until the spec's replicas
// change or nubo up restarts (as kubectl scale holds until the next apply). A service that
// autoscales is the autoscaler's to scale.
func (c *servicesComponent) scale(ctx context.Context, name string, replicas int) error {
	c.mu.Lock()
	r, ok := c.runs[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("service %q: %w", name, console.ErrNotFound)
	}
	if r.auto != nil {
		p := r.auto.Policy()
		return fmt.Errorf("service %q autoscales between %d and %d replicas: change its scaling in the spec: %w", name, p.MinReplicas, p.MaxReplicas, console.ErrConflict)
	}
	c.e.out.event(name, fmt.Sprintf("scaling %s to %d replicas (by hand)", name, replicas))
	c.background(r, func(ctx context.Context) {
		if err := r.sup.Scale(ctx, replicas); err != nil && ctx.Err() == nil {
			c.e.out.event(name, fmt.Sprintf("scale of %s failed: %v", name, err))
		}
	})
	return nil
}

// background runs work of r's that outlives the request asking for it (a
// restart, a scale): on the run's context, counted by the component's
// goroutines, so that a stop waits for it.
func (c *servicesComponent) background(r *serviceRun, work func(context.Context)) {
	ctx := r.ctx
	if ctx == nil {
		ctx = c.ctx
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		work(ctx)
	}()
}

// serviceChange is what a reload does to one service.
type serviceChange struct {
	name string
	cur  *serviceRun // nil for a new service
	// One of: next (a new version, built, not started), remove, or
	// replicas (a scale of cur), or only spec (cur takes the new spec).
	next     *serviceRun
	remove   bool
	replicas int
	spec     *spec.Service
	cfg      supervisor.ServiceConfig
	specEnv  []string
}

// Prepare decides, per service, whether it is unchanged, scaled, removed,
// added or changed, and builds the new versions of the added and changed
// ones. A failed build refuses the whole reload; nothing has started.
func (c *servicesComponent) Prepare(ctx context.Context, next *spec.App) (host.Change, error) {
	c.mu.Lock()
	old := c.app
	cur := maps.Clone(c.runs)
	c.mu.Unlock()
	vals := c.e.valuesFor(next)
	names := map[string]bool{}
	for n := range old.Services {
		names[n] = true
	}
	for n := range next.Services {
		names[n] = true
	}
	var changes []serviceChange
	var built []*serviceRun
	var added []string // new workloads, whose proxies Prepare binds
	abort := func(ctx context.Context) {
		for _, r := range built {
			_ = r.sup.Stop(ctx)
		}
		c.platform.forget(ctx, added)
	}
	for _, name := range depOrder(next, keys(names)) {
		if cur[name] == nil && next.Services[name] != nil {
			added = append(added, name)
		}
		ch, err := c.prepareOne(ctx, next, vals, name, cur[name])
		if err != nil {
			abort(context.WithoutCancel(ctx))
			return nil, err
		}
		if ch.next != nil {
			built = append(built, ch.next)
		}
		changes = append(changes, ch)
	}
	return changeFuncs{
		commit: func(ctx context.Context) error {
			c.mu.Lock()
			c.app, c.vals = next, vals
			c.mu.Unlock()
			changed := 0
			for _, ch := range changes {
				if c.apply(ctx, ch) {
					changed++
				}
			}
			if changed == 0 {
				c.e.out.event("", "no service changed")
			}
			return nil
		},
		abort: abort,
	}, nil
}

func (c *servicesComponent) prepareOne(ctx context.Context, next *spec.App, vals secrets.Values, name string, cur *serviceRun) (serviceChange, error) {
	ch := serviceChange{name: name, cur: cur}
	ns := next.Services[name]
	if ns == nil || ns.Run == "" {
		ch.remove = cur != nil
		return ch, nil
	}
	if cur != nil {
		cfg, specEnv, err := c.config(next, vals, name, ns)
		if err != nil {
			return ch, err
		}
		curCmp, cfgCmp := cur.cfg, cfg
		curCmp.Env, cfgCmp.Env = cur.specEnv, specEnv
		sameBuild := cur.spec.Build == ns.Build && slices.Equal(cur.spec.Watch, ns.Watch)
		if reflect.DeepEqual(curCmp, cfgCmp) && sameBuild && reflect.DeepEqual(cur.spec.Scaling, ns.Scaling) &&
			reflect.DeepEqual(cur.spec.Resources, ns.Resources) && slices.Equal(cur.spec.DependsOn, ns.DependsOn) {
			ch.spec = ns
			return ch, nil
		}
		if cfg.Replicas != cur.cfg.Replicas && ns.Scaling == nil && cur.spec.Scaling == nil && sameBuild {
			cc := curCmp
			cc.Replicas = cfg.Replicas
			if reflect.DeepEqual(cc, cfgCmp) {
				ch.replicas, ch.spec, ch.cfg, ch.specEnv = cfg.Replicas, ns, cfg, specEnv
				return ch, nil
			}
		}
	}
	runs, err := c.prepare(ctx, next, vals, []string{name})
	if err != nil {
		return ch, err
	}
	ch.next = runs[0]
	return ch, nil
}

// apply commits one service's change and reports whether there was one.
func (c *servicesComponent) apply(ctx context.Context, ch serviceChange) bool {
	out, name, cur := c.e.out, ch.name, ch.cur
	switch {
	case ch.remove:
		out.event(name, fmt.Sprintf("%s removed from the spec: stopping it", name))
		c.mu.Lock()
		delete(c.runs, name)
		c.mu.Unlock()
		stopCtx, cancel := context.WithTimeout(ctx, cur.cfg.StopGracePeriod+10*time.Second)
		defer cancel()
		if err := stopRun(stopCtx, cur); err != nil {
			out.event(name, err.Error())
		}
		if err := c.mesh.RemoveCaller(stopCtx, name); err != nil {
			out.event(name, err.Error())
		}
		return true
	case ch.replicas > 0:
		out.event(name, fmt.Sprintf("scaling %s: %d -> %d replicas", name, cur.cfg.Replicas, ch.replicas))
		if err := cur.sup.Scale(ctx, ch.replicas); err != nil {
			out.event(name, fmt.Sprintf("scale of %s failed: %v", name, err))
		}
		c.mu.Lock()
		cur.cfg, cur.specEnv, cur.spec = ch.cfg, ch.specEnv, ch.spec
		c.mu.Unlock()
		return true
	case ch.next == nil:
		if cur != nil && ch.spec != nil {
			c.mu.Lock()
			cur.spec = ch.spec
			c.mu.Unlock()
		}
		return false
	}
	r := ch.next
	if cur == nil {
		out.event(name, fmt.Sprintf("%s added to the spec: starting it", name))
		c.mu.Lock()
		c.runs[name] = r
		c.mu.Unlock()
		c.launch(r)
		c.watch(r)
		return true
	}
	// A changed service's old replicas stop once the new ones are ready.
	out.event(name, fmt.Sprintf("%s changed: starting the new version", name))
	c.launch(r)
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	select {
	case <-r.ready:
	case <-r.done: // it failed to start, and said why
		out.event(name, fmt.Sprintf("the new version of %s did not start; keeping the old one", name))
		stopCtx, c1 := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StopGracePeriod+10*time.Second)
		defer c1()
		_ = stopRun(stopCtx, r)
		return true
	case <-readyCtx.Done():
		why := fmt.Sprintf("did not become ready in %s", readyTimeout)
		if ctx.Err() != nil {
			why = "was stopped before it became ready"
		}
		out.event(name, fmt.Sprintf("the new version of %s %s; keeping the old one", name, why))
		stopCtx, c2 := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StopGracePeriod+10*time.Second)
		defer c2()
		_ = stopRun(stopCtx, r)
		return true
	}
	c.mu.Lock()
	c.runs[name] = r
	c.mu.Unlock()
	c.watch(r)
	stopCtx, c3 := context.WithTimeout(context.WithoutCancel(ctx), cur.cfg.StopGracePeriod+10*time.Second)
	defer c3()
	if err := stopRun(stopCtx, cur); err != nil {
		out.event(name, err.Error())
	}
	return true
}
