package engine

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/metrics"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// databasesComponent runs the spec's databases (internal/databases) before
// functions and services, which get their URLs and wait for them. A
// changed databases section needs a restart of nubo up.
type databasesComponent struct {
	e *Engine
	d *databases.Databases
	// exporters serve the metrics of the monitored databases, by name.
	exporters map[string]http.Handler
}

func newDatabasesComponent(e *Engine, app *spec.App, vals secrets.Values) (*databasesComponent, error) {
	sv := app.Local.Supervisor
	d, err := databases.New(databases.Config{
		App:      app,
		StateDir: app.StatePath(),
		Finder:   databases.FinderFor(app),
		Store:    &lazyStore{stateDir: app.StatePath(), identity: e.opts.IdentityPath},
		Logger:   e.log.With("component", "databases"),
		Lines:    e.out,
		Events:   supervisor.EventFunc(e.onDatabaseEvent),
		Notify:   e.out.event,
		Backoff:  supervisor.Backoff{Base: sv.Backoff.Duration, Max: sv.MaxBackoff.Duration, Reset: sv.BackoffReset.Duration},
		Secret:   secretLookup(vals).Get,
		Metrics:  e.metrics.reg,
		CADir:    CADir(app),
		Tracer:   e.tracing.t,
	})
	if err != nil {
		return nil, err
	}
	c := &databasesComponent{e: e, d: d, exporters: map[string]http.Handler{}}
	for _, name := range d.Names() {
		if db := d.Get(name); db.Monitored() {
			c.exporters[name] = db.Exporter()
		}
	}
	return c, nil
}

// targets are the monitored databases' metrics endpoints for the scraper:
// job and database are the database's name, instance its server's
// address, as a PodMonitor of the exporter would label them.
func (c *databasesComponent) targets() []metrics.Target {
	if c == nil {
		return nil
	}
	var out []metrics.Target
	for _, name := range c.d.Names() {
		h, db := c.exporters[name], c.d.Get(name)
		if h == nil {
			continue
		}
		select {
		case <-db.Ready(): // the port is known, and safe to read, once it is
		default:
			continue
		}
		instance := "127.0.0.1:" + strconv.Itoa(db.Port())
		out = append(out, metrics.Target{URL: "http://" + instance + "/metrics", Handler: h,
			Labels: map[string]string{"job": name, "instance": instance, "database": name}})
	}
	return out
}

func (e *Engine) onDatabaseEvent(ev supervisor.Event) {
	e.metrics.observe(ev)
	switch ev.Kind {
	case supervisor.EventStarted:
		e.reaper.track(ev.PID)
	case supervisor.EventExited:
		e.reaper.untrack(ev.PID)
	case supervisor.EventUnhealthy, supervisor.EventReady:
		// The server's own port probe: the database's readiness is the
		// query it answers, which the component reports.
		return
	}
	e.out.Event(ev)
}

func (c *databasesComponent) Name() string { return "databases" }

func (c *databasesComponent) Start(ctx context.Context) error { return c.d.Start(ctx) }

func (c *databasesComponent) Stop(ctx context.Context) error { return c.d.Stop(ctx) }

// Prepare takes no database change while running: a server's data, port
// and roles are not swapped under the workloads using them.
func (c *databasesComponent) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	if old, _ := c.e.current(); !reflect.DeepEqual(old.Databases, next.Databases) {
		c.e.out.event("", "the databases section changed: restart nubo up to apply it")
	}
	return nil, nil
}

func (c *databasesComponent) status() []apitype.Database {
	if c == nil {
		return nil
	}
	return c.d.Status()
}

// routes are the databases' admin API (nubo db).
func (c *databasesComponent) routes() []console.Route {
	var out []console.Route
	for _, r := range c.d.Routes() {
		out = append(out, console.Route{Pattern: r.Pattern, Handler: r.Handler})
	}
	return out
}

// get returns the named database, or nil.
func (c *databasesComponent) get(name string) *databases.Database {
	if c == nil {
		return nil
	}
	return c.d.Get(name)
}

// lookup resolves ${databases.NAME.ATTR} for workload.
func (c *databasesComponent) lookup(name, attr, workload string) (string, error) {
	return c.d.Lookup(name, attr, workload)
}

// lazyStore opens the secrets store the first time a database needs a
// password: building the engine (nubo validate) reads and creates nothing.
type lazyStore struct {
	stateDir, identity string

	once  sync.Once
	store *secrets.Store
	err   error
}

func (l *lazyStore) open() (*secrets.Store, error) {
	l.once.Do(func() {
		id := l.identity
		if id == "" {
			if id, l.err = secrets.DefaultIdentityPath(); l.err != nil {
				return
			}
		}
		l.store, l.err = secrets.OpenStore(l.stateDir, id)
	})
	return l.store, l.err
}

func (l *lazyStore) Get(name, key string) (secrets.Value, bool, error) {
	s, err := l.open()
	if err != nil {
		return secrets.Value{}, false, err
	}
	return s.Get(name, key)
}

func (l *lazyStore) Set(name, key string, v secrets.Value) error {
	s, err := l.open()
	if err != nil {
		return err
	}
	return s.Set(name, key, v)
}
