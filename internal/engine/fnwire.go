package engine

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// newFunctions builds the functions component; its processes start in
// startFunctions. Dead letters go through deadLetters, which the events
// component provides once it runs.
func (e *Engine) newFunctions(app *spec.App) (*functions.Functions, error) {
	fns, err := functions.New(functions.Config{
		App:     app,
		Logger:  e.log.With("component", "functions"),
		Metrics: e.metrics.reg,
		Env:     e.functionEnv,
		Lines:   e.out,
		// Instance processes are reported through Track, so their events
		// only go to the output.
		Events: supervisor.EventFunc(e.out.Event),
		Notify: func(fn, msg string) { e.out.event(fn, msg) },
		Track:  e.trackBuild,
		Build: func(ctx context.Context, fn, cmd, dir string, env []string) error {
			return runBuild(ctx, fn, cmd, dir, env, func(l string) { e.out.buildLine(fn, l) }, e.trackBuild)
		},
		DeadLetters: functions.DeadLetterFunc(e.functionDeadLetter),
	})
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	return fns, nil
}

// functionRoutes are the platform API's /v1/functions routes and the http
// triggers, served on the console through a handler a reload replaces.
func (e *Engine) functionRoutes(fns *functions.Functions) []console.Route {
	e.fnsAPI.set(fns.Handler())
	var out []console.Route
	for _, p := range fns.Patterns() {
		out = append(out, console.Route{Pattern: p, Handler: &e.fnsAPI})
	}
	return out
}

// reloadFunctions replaces the functions component when the spec's
// functions changed: the old instances stop, then the new pools start (from
// their minimum); invocations in between fail. The console's routes are fixed
// when it starts, so an http trigger on a new path needs a restart of nubo up,
// and says so.
func (e *Engine) reloadFunctions(ctx context.Context, old, next *spec.App) {
	if reflect.DeepEqual(old.Functions, next.Functions) {
		return
	}
	e.mu.Lock()
	cur := e.fns
	e.mu.Unlock()
	// The old pools stop first: the new component registers the same
	// metrics, which the old one unregisters when it stops.
	if cur != nil {
		if err := cur.Stop(ctx); err != nil {
			e.out.event("", fmt.Sprintf("functions: stop: %v", err))
		}
	}
	nf, err := e.newFunctions(next)
	if err != nil {
		e.out.event("", fmt.Sprintf("functions not reloaded: %v", err))
		return
	}
	known := map[string]bool{}
	if cur != nil {
		for _, p := range cur.Patterns() {
			known[p] = true
		}
	}
	for _, p := range nf.Patterns() {
		if !known[p] {
			e.out.event("", fmt.Sprintf("the route %q is new: restart nubo up to serve it", p))
		}
	}
	if err := nf.Start(ctx); err != nil {
		e.out.event("", fmt.Sprintf("functions: %v", err))
		return
	}
	e.mu.Lock()
	e.fns = nf
	e.mu.Unlock()
	e.fnsAPI.set(nf.Handler())
	e.out.event("", "functions reloaded: "+strings.Join(nf.Names(), ", "))
}

// functionEnv is a function's environment, as a service's: the platform's,
// then its env with ${...} resolved.
func (e *Engine) functionEnv(name string) []string {
	e.mu.Lock()
	app, vals := e.app, e.vals
	e.mu.Unlock()
	f := app.Functions[name]
	if f == nil {
		return nil
	}
	r := &envResolver{app: app, getenv: e.opts.Getenv, secrets: secretLookup(vals), notYet: func(expr string) {
		e.out.event(name, fmt.Sprintf("function %s: ${%s} is empty: nubo up does not run that part yet", name, expr))
	}}
	env, err := serviceEnv(app, name, f.Env, spec.EnvFrom{}, r)
	if err != nil {
		e.out.event(name, fmt.Sprintf("function %s: %v", name, err))
	}
	platform, err := e.platformEnv(name)
	if err != nil {
		e.out.event(name, fmt.Sprintf("function %s: %v", name, err))
	}
	return append(platform, env...)
}

// functionDeadLetter hands a failed event to the events component's
// dead-letter queue.
func (e *Engine) functionDeadLetter(ctx context.Context, dl functions.DeadLetter) error {
	e.mu.Lock()
	sink := e.deadLetters
	e.mu.Unlock()
	if sink == nil {
		return fmt.Errorf("function %q: dead-letter queue %q: queues are not run by nubo up yet", dl.Function, dl.Queue)
	}
	return sink(ctx, dl)
}

// functionsSkipped names the functions nubo up does not run (no run command).
func functionsSkipped(fns *functions.Functions) []console.Skipped {
	if fns == nil || len(fns.Skipped()) == 0 {
		return nil
	}
	return []console.Skipped{{Section: "functions", Reason: "no run command, Kubernetes only (" + strings.Join(fns.Skipped(), ", ") + ")"}}
}
