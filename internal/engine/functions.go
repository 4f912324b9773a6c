package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// functionsComponent runs the functions' pools. A reload starts the new
// pools beside the old ones (Prepare: builds and minimum instances), then
// switches invocations to them and stops the old (Commit), so that a build
// that fails leaves the old functions serving. Each generation's series are
// on a registry of its own, which the engine's /metrics gathers.
type functionsComponent struct {
	e           *Engine
	env         *envSource
	plat        *platform
	deadLetters functions.DeadLetterSink

	cur atomic.Pointer[functions.Functions]
	reg atomic.Pointer[prometheus.Registry]
	api swapHandler
	// app is the spec the running pools were built from: what a reload
	// compares with (the host serializes Prepare and Commit).
	app *spec.App
}

func newFunctionsComponent(e *Engine, app *spec.App, vals secrets.Values, env *envSource, plat *platform, dl functions.DeadLetterSink) (*functionsComponent, error) {
	c := &functionsComponent{e: e, env: env, plat: plat, deadLetters: dl, app: app}
	f, reg, err := c.newFunctions(app, vals)
	if err != nil {
		return nil, err
	}
	c.cur.Store(f)
	c.reg.Store(reg)
	c.api.set(f.Handler())
	e.metrics.addGatherer(c)
	return c, nil
}

// newFunctions builds the component for app; nothing runs until Start.
func (c *functionsComponent) newFunctions(app *spec.App, vals secrets.Values) (*functions.Functions, *prometheus.Registry, error) {
	e := c.e
	reg := prometheus.NewRegistry()
	f, err := functions.New(functions.Config{
		App:     app,
		Logger:  e.log,
		Metrics: reg,
		Tracer:  e.tracing.t,
		Env:     func(name string) []string { return c.functionEnv(app, vals, name) },
		Lines:   e.out,
		// Instance processes are reported through Track, so their events
		// only go to the output.
		Events: supervisor.EventFunc(e.out.Event),
		Notify: func(fn, msg string) { e.out.event(fn, msg) },
		Track:  e.trackBuild,
		// Instances' process trees in the engine's cgroups, as replicas'.
		Cgroups:       replicaCgroups{e},
		MemoryCgroups: func(dir string) { e.reaper.trackCgroups(dir) },
		Build: func(ctx context.Context, fn, cmd, dir string, env []string) error {
			return runBuild(ctx, fmt.Sprintf("function %q", fn), cmd, dir, env, func(l string) { e.out.buildLine(fn, l) }, e.trackBuild)
		},
		DeadLetters: c.deadLetters,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("functions: %w", err)
	}
	return f, reg, nil
}

// functionEnv is a function's environment, as a service's: the platform's,
// then its env with ${...} resolved.
func (c *functionsComponent) functionEnv(app *spec.App, vals secrets.Values, name string) []string {
	f := app.Functions[name]
	if f == nil {
		return nil
	}
	env, err := serviceEnv(app, name, f.Env, spec.EnvFrom{}, c.env.resolver(app, vals, "function", name))
	if err != nil {
		c.e.out.event(name, fmt.Sprintf("function %s: %v", name, err))
	}
	platform, err := c.plat.env(name)
	if err != nil {
		c.e.out.event(name, fmt.Sprintf("function %s: %v", name, err))
	}
	return append(platform, env...)
}

func (c *functionsComponent) Name() string { return "functions" }

func (c *functionsComponent) Start(ctx context.Context) error {
	f := c.cur.Load()
	if err := f.Start(ctx); err != nil {
		return err
	}
	if names := f.Names(); len(names) > 0 {
		c.e.out.event("", "functions ready, at their minimum instances: "+strings.Join(names, ", "))
	}
	return nil
}

func (c *functionsComponent) Stop(ctx context.Context) error { return c.cur.Load().Stop(ctx) }

// Prepare builds and starts the new functions beside the running ones.
// The console's routes are fixed when it starts, so an http trigger on a
// new path needs a restart of nubo up, and says so.
func (c *functionsComponent) Prepare(ctx context.Context, next *spec.App) (host.Change, error) {
	if reflect.DeepEqual(c.app.Functions, next.Functions) {
		return nil, nil
	}
	var added []string // new functions, whose proxies Start binds
	for name := range next.Functions {
		if c.app.Functions[name] == nil {
			added = append(added, name)
		}
	}
	nf, reg, err := c.newFunctions(next, c.e.valuesFor(next))
	if err != nil {
		return nil, err
	}
	if err := nf.Start(ctx); err != nil {
		c.plat.forget(context.WithoutCancel(ctx), added)
		return nil, err
	}
	return changeFuncs{
		commit: func(ctx context.Context) error {
			cur := c.cur.Load()
			known := map[string]bool{}
			for _, p := range cur.Patterns() {
				known[p] = true
			}
			for _, p := range nf.Patterns() {
				if !known[p] {
					c.e.out.event("", fmt.Sprintf("the route %q is new: restart nubo up to serve it", p))
				}
			}
			c.cur.Store(nf)
			c.reg.Store(reg)
			c.api.set(nf.Handler())
			c.app = next
			if err := cur.Stop(ctx); err != nil {
				c.e.out.event("", fmt.Sprintf("functions: stop of the old instances: %v", err))
			}
			c.e.out.event("", "functions reloaded: "+strings.Join(nf.Names(), ", "))
			return nil
		},
		abort: func(ctx context.Context) {
			_ = nf.Stop(ctx)
			c.plat.forget(ctx, added)
		},
	}, nil
}

// Gather implements prometheus.Gatherer: the running generation's series.
func (c *functionsComponent) Gather() ([]*dto.MetricFamily, error) { return c.reg.Load().Gather() }

// routes are the platform API's /v1/functions routes and the http
// triggers, served on the console through a handler a reload replaces.
func (c *functionsComponent) routes() []console.Route {
	var out []console.Route
	for _, p := range c.cur.Load().Patterns() {
		out = append(out, console.Route{Pattern: p, Handler: &c.api})
	}
	return out
}

// Invoke invokes a function of the running generation (the gateway's
// function integrations and authorizers).
func (c *functionsComponent) Invoke(ctx context.Context, name string, ev event.Event) (functions.Result, error) {
	return c.cur.Load().Invoke(ctx, name, ev)
}

// DeliverToFunction delivers events of a route or a queue trigger. A
// function whose own retries ended in its dead-letter queue has taken the
// events: the route must not retry them again.
func (c *functionsComponent) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	err := c.cur.Load().DeliverToFunction(ctx, name, evs)
	if errors.Is(err, functions.ErrDeadLettered) {
		return nil
	}
	return err
}

func (c *functionsComponent) status() []functions.Status { return c.cur.Load().Status() }

// skipped names the functions nubo up does not run (no run command).
func (c *functionsComponent) skipped() []console.Skipped {
	s := c.cur.Load().Skipped()
	if len(s) == 0 {
		return nil
	}
	return []console.Skipped{{Section: "functions", Reason: "no run command, Kubernetes only (" + strings.Join(s, ", ") + ")"}}
}

// swapHandler serves through a handler that a reload replaces.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, `{"error":"not running"}`, http.StatusServiceUnavailable)
}
