package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/procgroup"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// build makes every component of app, in start order. Nothing runs yet:
// what can fail here is the spec (a route that does not compile), not the
// machine. Components that need each other get each other here, once.
func (e *Engine) build(app *spec.App, vals secrets.Values) ([]host.Component, error) {
	consoleAddr := app.Local.Console
	if e.opts.ConsoleAddr != "" {
		consoleAddr = e.opts.ConsoleAddr
	}
	// Tracing first: the databases, the mesh, the gateway, events and
	// functions record their spans into its tracer.
	var err error
	if e.tracing, err = newTracingComponent(e, app); err != nil {
		return nil, err
	}
	dbs, err := newDatabasesComponent(e, app, vals)
	if err != nil {
		return nil, err
	}
	e.dbs = dbs
	env := &envSource{getenv: e.opts.Getenv, out: e.out, databases: dbs}
	pipe, err := logs.NewPipeline(app.Observability.Logs)
	if err != nil {
		return nil, err
	}
	e.out.pipe.Store(pipe)
	if e.audit == nil {
		e.audit = newAuditTrail(app, e.metrics.reg)
	}

	bc, err := newBrokerComponent(app, e.log, e.metrics.reg)
	if err != nil {
		return nil, err
	}
	e.broker = bc
	e.services = newServicesComponent(e, app, vals, env)
	mc, err := newMeshComponent(e, app, e.services)
	if err != nil {
		return nil, err
	}
	e.mesh = mc
	// The platform gives every process its mesh proxy, the platform API
	// and the broker; the console's address is known once it listens.
	e.admin = &consoleComponent{e: e, addr: consoleAddr}
	plat := &platform{mesh: mc.m, console: e.admin, broker: e.broker, tracing: e.tracing}
	e.services.platform = plat
	e.services.mesh = mc.m

	e.events = newEventsComponent(e, mc.m, e.broker)
	fns, err := newFunctionsComponent(e, app, vals, env, plat, e.events)
	if err != nil {
		return nil, err
	}
	e.fns = fns
	e.events.functions = fns
	if err := e.events.build(app); err != nil {
		return nil, err
	}
	es, err := newEventStoreComponent(e, app, vals, e.broker, storeHandlers{mesh: mc.m, fns: fns})
	if err != nil {
		return nil, err
	}
	e.eventStore = es
	obs, err := newObservability(e, app, vals, env, e.admin)
	if err != nil {
		return nil, err
	}
	e.obs = obs
	gw, err := newGatewayComponent(e, app, vals, env, mc.m, fns)
	if err != nil {
		return nil, err
	}
	e.gateway = gw
	routes := append(obs.routes(), fns.routes()...)
	routes = append(routes, e.tracing.routes()...)
	routes = append(routes, e.events.routes()...)
	if es != nil {
		routes = append(routes, es.routes()...)
	}
	routes = append(routes, dbs.routes()...)
	routes = append(routes, (&backups{e: e}).routes()...)
	if err := e.admin.build(routes); err != nil {
		return nil, err
	}

	comps := []host.Component{
		host.Func{ComponentName: "reaper", OnStart: e.startReaper, OnStop: func(context.Context) error {
			// Every service has stopped: what is left in their cgroups,
			// or adopted without them, escaped its process group, and
			// dies now.
			err := errors.Join(e.orphans.kill(), e.cgroups.Close())
			e.reaper.close()
			return err
		}},
		host.Func{ComponentName: "state", OnStart: func(context.Context) error {
			lock, err := lockStateDir(app.StatePath(), LockInfo{PID: os.Getpid(), Console: consoleAddr, Spec: app.File, Started: e.started})
			if err != nil {
				return err
			}
			e.lock = lock
			d, err := logs.OpenDisk(filepath.Join(app.StatePath(), "logs"), app.Observability.Logs.Retention.Duration, 0)
			if err != nil {
				lock.release()
				return err
			}
			e.out.disk.Store(d)
			return nil
		}, OnStop: func(context.Context) error {
			err := e.out.disk.Swap(nil).Close()
			e.lock.release()
			return err
		}},
		e.broker,
		e.admin,
		obs,
		e.tracing,
		dbs,
		mc,
		fns,
	}
	if gw != nil {
		comps = append(comps, gw)
	}
	comps = append(comps, e.events)
	if es != nil {
		// After events: projections deliver to functions and, through the
		// mesh, to services, and stop (checkpointing) before them.
		comps = append(comps, es)
	}
	return append(comps, e.services), nil
}

func (e *Engine) startReaper(context.Context) error {
	if e.opts.NoCgroups {
		e.cgroups = procgroup.Off("turned off by the engine's options")
	} else {
		e.cgroups = procgroup.Open(e.log)
	}
	if len(e.opts.ReaperArgv) > 0 {
		rp, err := startReaper(e.opts.ReaperArgv)
		if err != nil {
			return err
		}
		e.reaper = rp
		rp.trackCgroups(e.cgroups.Dir())
	}
	if !e.cgroups.Enabled() {
		e.log.Debug("replicas without cgroups: nubo adopts what leaves a replica's process group instead (child subreaper)", "reason", e.cgroups.Reason())
		e.orphans = startOrphans(e.log, e.reaper, func(msg string) { e.out.event("", msg) })
	}
	return nil
}

// replicaCgroups gives the supervisors the engine's cgroups.
type replicaCgroups struct{ e *Engine }

func (c replicaCgroups) New(name string) (supervisor.Cgroup, error) {
	t := c.e.cgroups
	if !t.Enabled() {
		return nil, nil // said once at start; the subreaper stands in
	}
	g, err := t.New(name)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// trackBuild tells the reaper about a build's process group.
func (e *Engine) trackBuild(pgid int, alive bool) {
	if alive {
		e.reaper.track(pgid)
	} else {
		e.reaper.untrack(pgid)
	}
}

// platform is what the platform gives every process of a workload: its mesh
// proxy (HTTP_PROXY, NUBO_SERVICE_<NAME>_URL), the platform API (NUBO_API)
// and the broker (NUBO_NATS_URL).
type platform struct {
	mesh interface {
		Env(workload string) ([]string, error)
		RemoveCaller(ctx context.Context, caller string) error
	}
	console *consoleComponent
	broker  *brokerComponent
	tracing *tracingComponent
}

// forget releases the proxy listeners env bound for workloads that a
// reload meant to add and then aborted.
func (p *platform) forget(ctx context.Context, workloads []string) {
	for _, w := range workloads {
		_ = p.mesh.RemoveCaller(ctx, w)
	}
}

func (p *platform) env(workload string) ([]string, error) {
	var env []string
	if addr := p.console.Addr(); addr != "" {
		env = append(env, "NUBO_API=http://"+addr)
	}
	if u := p.broker.clientURL(); u != "" {
		env = append(env, "NUBO_NATS_URL="+u)
	}
	if p.tracing != nil {
		app, _ := p.tracing.e.current()
		env = append(env, p.tracing.env(app, workload)...)
	}
	menv, err := p.mesh.Env(workload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", workload, err)
	}
	return append(env, menv...), nil
}

// envSource resolves the spec's ${...} for one spec and its secrets' values.
type envSource struct {
	getenv    func(string) string
	out       *output
	databases *databasesComponent
}

// resolver returns the ${...} resolver of app with vals; who names the
// workload in the line that says a reference resolves empty, or is empty
// for parts with no workload (the gateway, alerting).
func (s *envSource) resolver(app *spec.App, vals secrets.Values, who, name string) *envResolver {
	r := &envResolver{app: app, getenv: s.getenv, secrets: secretLookup(vals), workload: name}
	if s.databases != nil {
		r.databases = s.databases.lookup
	}
	if who != "" {
		r.notYet = func(expr string) {
			s.out.event(name, fmt.Sprintf("%s %s: ${%s} is empty: nubo up does not run that part yet", who, name, expr))
		}
	}
	return r
}

type secretLookup secrets.Values

func (v secretLookup) Get(name, key string) (string, bool) {
	val, ok := secrets.Values(v).Get(name, key)
	return val.Reveal(), ok
}

// Check builds every component of app as Start does, without starting any:
// what nubo up would refuse while it builds its components (a route the
// gateway cannot compile, a key-set file it cannot read), `nubo validate`
// reports first. Nothing listens, no process starts, the state directory
// is not touched. Secrets' values are not read: each key stands for a
// placeholder (a missing value is reported by nubo up, which reads them).
func Check(app *spec.App) error {
	e, err := New(app, Options{Getenv: func(string) string { return "" }, NoWatch: true})
	if err != nil {
		return err
	}
	vals := secrets.Values{}
	for name, s := range app.Secrets {
		vals[name] = map[string]secrets.Value{}
		for _, k := range s.Keys {
			vals[name][k] = secrets.NewValue(checkPlaceholder)
		}
	}
	e.vals = vals
	_, err = e.build(app, vals)
	return err
}

// checkPlaceholder stands for every secret's value in Check: a URL, as
// channels' and integrations' URLs are often secrets.
const checkPlaceholder = "https://secret.invalid/"
