// Package host runs the components of a nubo system with one lifecycle:
// `nubo up` hosts all of them in one process, `nubo serve` a few of them in a
// Kubernetes Deployment.
//
// A component is built (everything that can fail without running anything:
// compile, validate), then started in order; Start returns when the
// component is ready. If one fails to start, the ones before it are stopped
// in reverse, so that no process or listener outlives a failed start. Stop
// goes in reverse order too.
//
// A reload has two phases, as Prometheus' reloaders and Caddy's config
// changes do: every component that takes reloads prepares the new spec
// without touching what runs (compiles it, builds new processes, binds
// nothing it cannot give back), and only when all have prepared do they all
// commit, in start order. If any fails to prepare, every prepared change is
// aborted and the whole system keeps running the old spec; the error names
// the component.
//
// # Locking
//
// Host.mu serializes Start, Stop and Reload: a reload never overlaps a stop.
// Components are called with it held and must not call back into the host.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Component is one part of a running system.
type Component interface {
	// Name names the component in errors and logs ("mesh", "gateway").
	Name() string
	// Start starts the component and returns once it is ready. A failed
	// Start leaves nothing running.
	Start(ctx context.Context) error
	// Stop stops the component; ctx bounds how long it may wait for work
	// in flight. Stop is called only after a successful Start.
	Stop(ctx context.Context) error
}

// Reloader is a Component that takes a changed spec while it runs.
type Reloader interface {
	Component
	// Prepare readies the change to next without touching what runs. A
	// nil Change means nothing of this component changed.
	Prepare(ctx context.Context, next *spec.App) (Change, error)
}

// Change is a prepared reload of one component.
type Change interface {
	// Commit switches the component to the prepared spec. It should fail
	// only for reasons Prepare could not see (a port taken between the two
	// phases); the component then keeps its old spec.
	Commit(ctx context.Context) error
	// Abort discards what Prepare built; the component keeps its old spec.
	Abort(ctx context.Context)
}

// Host starts, reloads and stops a list of components.
type Host struct {
	log   *slog.Logger
	comps []Component
	// grace bounds a rollback's and an abort's stops, which run even when
	// the caller's context is done.
	grace time.Duration

	mu      sync.Mutex // guards the fields below, and serializes Start, Stop and Reload
	started int        // components started, a prefix of comps
	stopped bool
}

// DefaultGrace bounds a rollback's stops when New is given none.
const DefaultGrace = time.Minute

// New returns a host of comps, in start order. grace bounds what a
// rollback or an abort may wait for (DefaultGrace when <= 0).
func New(log *slog.Logger, grace time.Duration, comps ...Component) *Host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Host{log: log, grace: grace, comps: comps}
}

// detached is ctx without its cancellation, bounded by the grace: a
// rollback runs to the end even after Ctrl-C, but not forever.
func (h *Host) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), h.grace)
}

// Components returns the hosted components, in start order.
func (h *Host) Components() []Component { return append([]Component(nil), h.comps...) }

// StartError is a component's failure to start.
type StartError struct {
	Component string
	Err       error
}

func (e *StartError) Error() string { return e.Component + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Start starts the components in order. If one fails, those started before
// it are stopped in reverse, even when ctx is done (a rollback always runs
// to the end), and the error names the component.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return errors.New("host: start after stop")
	}
	for h.started < len(h.comps) {
		c := h.comps[h.started]
		if err := c.Start(ctx); err != nil {
			rctx, cancel := h.detached(ctx)
			rollback := h.stopStarted(rctx)
			cancel()
			h.stopped = true
			return errors.Join(&StartError{Component: c.Name(), Err: err}, rollback)
		}
		h.log.Debug("started", "component", c.Name())
		h.started++
	}
	return nil
}

// Stop stops the started components in reverse order and returns every
// error, each naming its component. It is idempotent.
func (h *Host) Stop(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	return h.stopStarted(ctx)
}

func (h *Host) stopStarted(ctx context.Context) error {
	var errs []error
	for ; h.started > 0; h.started-- {
		c := h.comps[h.started-1]
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: stop: %w", c.Name(), err))
		}
		h.log.Debug("stopped", "component", c.Name())
	}
	return errors.Join(errs...)
}

// ReloadError is a reload that did not happen: Component could not prepare
// (DuringCommit is false, and the whole system runs the old spec), or it
// failed to commit (DuringCommit: the components before it in start order
// run the new spec, it and those after it the old one).
type ReloadError struct {
	Component    string
	DuringCommit bool
	Err          error
}

func (e *ReloadError) Error() string {
	if e.DuringCommit {
		return e.Component + ": " + e.Err.Error() + " (it keeps the old spec; the components before it took the new one)"
	}
	return e.Component + ": " + e.Err.Error()
}

func (e *ReloadError) Unwrap() error { return e.Err }

// Reload applies next to every Reloader in two phases: all prepare, then
// all commit. It returns the names of the components that changed.
func (h *Host) Reload(ctx context.Context, next *spec.App) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped || h.started < len(h.comps) {
		return nil, errors.New("host: reload while not running")
	}
	type prepared struct {
		name   string
		change Change
	}
	var ready []prepared
	for _, c := range h.comps {
		r, ok := c.(Reloader)
		if !ok {
			continue
		}
		ch, err := r.Prepare(ctx, next)
		if err != nil {
			actx, cancel := h.detached(ctx)
			for i := len(ready) - 1; i >= 0; i-- {
				ready[i].change.Abort(actx)
			}
			cancel()
			return nil, &ReloadError{Component: c.Name(), Err: err}
		}
		if ch != nil {
			ready = append(ready, prepared{c.Name(), ch})
		}
	}
	var changed []string
	for i, p := range ready {
		if err := p.change.Commit(ctx); err != nil {
			actx, cancel := h.detached(ctx)
			for _, rest := range ready[i+1:] {
				rest.change.Abort(actx)
			}
			cancel()
			return changed, &ReloadError{Component: p.name, DuringCommit: true, Err: err}
		}
		changed = append(changed, p.name)
	}
	return changed, nil
}

// Func is a Component made of functions, for the small parts of a system
// (a lock, a watchdog) that need no type of their own.
type Func struct {
	ComponentName string
	OnStart       func(context.Context) error
	OnStop        func(context.Context) error
}

// Name implements Component.
func (f Func) Name() string { return f.ComponentName }

// Start implements Component.
func (f Func) Start(ctx context.Context) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx)
}

// Stop implements Component.
func (f Func) Stop(ctx context.Context) error {
	if f.OnStop == nil {
		return nil
	}
	return f.OnStop(ctx)
}
