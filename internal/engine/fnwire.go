package engine

import (
	"context"
	"fmt"
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
// triggers, served on the console.
func functionRoutes(fns *functions.Functions) []console.Route {
	var out []console.Route
	for _, p := range fns.Patterns() {
		out = append(out, console.Route{Pattern: p, Handler: fns.Handler()})
	}
	return out
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
