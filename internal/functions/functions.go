// Package functions runs a spec's functions for `nubo up`: for each
// function a pool of instances that scales from and to zero, and the
// invocations that reach them.
//
// # Overview
//
// A function is a process serving HTTP on $PORT. An invocation is a POST of
// a CloudEvent in binary content mode (the CloudEvents HTTP binding, as
// Knative sends them); a batch is a JSON array in structured mode; a 2xx
// answer is success and its body the result.
//
// New checks the spec and compiles the HTTP routes; Start builds each
// function once, starts `scaling.min` instances and returns once they
// accept connections; Stop stops every instance. Invoke and InvokeBatch
// run one invocation and return its result; Deliver and DeliverBatch add
// the function's retries with backoff and its dead-letter queue, for
// triggers. Handler serves the platform API (POST
// /v1/functions/{name}/invoke) and the http triggers' routes. Status is a
// snapshot for `nubo status`.
//
// # Pools
//
// An invocation takes a free slot (an instance has `concurrency` of them);
// if there is none it waits in a bounded queue (Config.QueueDepth; beyond
// it, ErrThrottled, which the API answers with 429) while instances start,
// up to `scaling.max`. A cold start lasts from the process's start until
// its port accepts connections. An instance idle for `scaling.idleTimeout`
// stops unless the pool would fall under `scaling.min`. An invocation with
// no answer within `timeout` fails with ErrTimeout (504); the instance then
// has Config.RecoveryGrace to answer after all, or it is killed and
// replaced. Each instance runs under a supervisor.Supervisor of its own
// (one replica, restart policy Never), which gives it a process group,
// Pdeathsig, its output lines and, with Config.Cgroups, a cgroup that
// holds what escapes the process group.
//
// # Memory
//
// `memory` is enforced with a cgroup per instance: cgroup v2 where nubo's
// cgroup can delegate the memory controller, else the cgroup v1 memory
// controller, else not at all, which MemoryEnforcement reports. An instance
// over its limit is killed by the kernel and its invocations fail with
// ErrOOMKilled.
//
// # Why hand-written
//
// Knative's activator and queue-proxy, and OpenFaaS's watchdog, do this
// job in Kubernetes, as separate programs tied to its APIs; none is a
// library for local processes.
package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Defaults, in one place.
const (
	// DefaultQueueDepth bounds the invocations waiting for a slot, per
	// function.
	DefaultQueueDepth = 100
	// DefaultStartTimeout bounds a cold start: an instance whose port does
	// not accept connections by then is killed. Lambda's init phase has a
	// 10s limit; slower runtimes locally (a JVM) want more.
	DefaultStartTimeout = 30 * time.Second
	// DefaultRecoveryGrace is how long an instance may still answer an
	// invocation that timed out before it is deemed stuck and replaced.
	DefaultRecoveryGrace = 5 * time.Second
	// DefaultStopGracePeriod is the time between SIGTERM and SIGKILL when
	// an instance stops.
	DefaultStopGracePeriod = 10 * time.Second
	// DefaultMaxResultBytes bounds a result: Lambda's limit for a
	// synchronous answer is 6 MB.
	DefaultMaxResultBytes = 6 << 20
	// DefaultMemory is the memory GB-seconds are counted with for a
	// function that sets no memory (Lambda's default). It is not a limit.
	DefaultMemory = 128 << 20
)

// Config is what the functions component needs. App is required; the rest
// have defaults.
type Config struct {
	// App is the spec; its functions with a `run` command are run
	// (image-only ones are Kubernetes-only and listed by Skipped).
	App *spec.App
	// Logger receives the component's diagnostics; nil discards them.
	Logger *slog.Logger
	// Tracer records a span per invocation; nil makes none.
	Tracer Tracer
	// Metrics registers the per-function series; nil registers nothing.
	Metrics prometheus.Registerer
	// Env returns a function's resolved environment (KEY=VALUE: its `env`
	// with ${...} resolved, NUBO_API, HTTP_PROXY and the like); it is
	// called once per function at Start. The component adds PORT,
	// NUBO_FUNCTION, NUBO_INSTANCE, NUBO_LAYERS and the layers on PATH.
	Env func(function string) []string
	// Lines receives every line the instances write, as
	// (function, instance-1, stream, line); nil discards them.
	Lines supervisor.LineSink
	// Events receives the instances' process events (started, exited) with
	// Service set to the function and Replica to the instance's number
	// minus one; nil discards them.
	Events supervisor.EventSink
	// Notify receives what happens to pools in a line, for the engine's
	// output: cold starts, instances stopping when idle, timeouts; nil
	// discards them.
	Notify func(function, message string)
	// Track is told each instance's process group when it starts (true)
	// and ends (false), for the engine's reaper; nil tracks nothing.
	Track func(pgid int, alive bool)
	// Cgroups gives each instance's process tree a cgroup of its own
	// (internal/procgroup, as the services' replicas), so that what left
	// the instance's process group (setsid) dies with the instance; nil
	// gives none.
	Cgroups supervisor.Cgroups
	// MemoryCgroups is told the directory of this component's memory
	// cgroups once Start has made it, for the engine's reaper: on cgroup
	// v2 an instance with `memory` lives in its memory cgroup, not in its
	// Cgroups one; nil tells nobody.
	MemoryCgroups func(dir string)
	// Build runs a function's build command; nil runs it through sh -c in
	// dir with env, its output going to Lines as the stream "build".
	Build func(ctx context.Context, function, command, dir string, env []string) error
	// DeadLetters receives the events that failed every attempt of a
	// delivery to a function with a deadLetter queue; nil drops them (and
	// the delivery's error says so).
	DeadLetters DeadLetterSink

	// QueueDepth bounds the invocations waiting for a slot, per function;
	// default DefaultQueueDepth.
	QueueDepth int
	// StartTimeout bounds a cold start; default DefaultStartTimeout.
	StartTimeout time.Duration
	// RecoveryGrace is how long an instance may answer after a timeout;
	// default DefaultRecoveryGrace.
	RecoveryGrace time.Duration
	// StopGracePeriod is the time between SIGTERM and SIGKILL; default
	// DefaultStopGracePeriod.
	StopGracePeriod time.Duration
	// MaxResultBytes bounds a function's answer; default
	// DefaultMaxResultBytes.
	MaxResultBytes int64
}

// Functions runs the pools of a spec's functions. Create it with New; its
// methods are safe for concurrent use.
type Functions struct {
	cfg     Config
	log     *slog.Logger
	pools   map[string]*pool // read-only after New
	names   []string         // sorted names of pools
	skipped []string         // image-only functions
	metrics *metrics
	routes  *routes
	cgroups *cgroupManager // set by Start under mu; instances read it once pools are open

	mu      sync.Mutex // guards state
	state   runState
	ctx     context.Context // done when Stop begins: ends waits and backoffs
	cancel  context.CancelFunc
	stopped chan struct{} // closed when Stop has finished

	// wg counts the goroutines the component starts (instances,
	// recoveries, asynchronous deliveries); Stop waits for them.
	wg sync.WaitGroup
}

type runState int

const (
	stateNew runState = iota
	stateRunning
	stateStopped
)

// DeadLetterSink receives events that failed every attempt of a delivery.
// The engine connects it to the events component, which puts each on the
// queue with headers naming the function, the attempts and the error.
type DeadLetterSink interface {
	DeadLetter(ctx context.Context, dl DeadLetter) error
}

// DeadLetterFunc adapts a function to a DeadLetterSink.
type DeadLetterFunc func(ctx context.Context, dl DeadLetter) error

// DeadLetter calls f.
func (f DeadLetterFunc) DeadLetter(ctx context.Context, dl DeadLetter) error { return f(ctx, dl) }

// DeadLetter is one event that failed every attempt.
type DeadLetter struct {
	// Queue is the function's deadLetter queue.
	Queue string
	// Function names the function.
	Function string
	// Event is the event, as delivered.
	Event event.Event
	// Attempts is the number of invocations tried.
	Attempts int
	// Error is the last attempt's error.
	Error string
	// Status is the function's last HTTP status, 0 when it did not answer.
	Status int
	// Time is when the last attempt failed.
	Time time.Time
}

// New checks cfg and prepares a pool per function; it starts nothing.
func New(cfg Config) (*Functions, error) {
	if cfg.App == nil {
		return nil, errors.New("functions: no spec")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = DefaultQueueDepth
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.RecoveryGrace <= 0 {
		cfg.RecoveryGrace = DefaultRecoveryGrace
	}
	if cfg.StopGracePeriod <= 0 {
		cfg.StopGracePeriod = DefaultStopGracePeriod
	}
	if cfg.MaxResultBytes <= 0 {
		cfg.MaxResultBytes = DefaultMaxResultBytes
	}
	f := &Functions{cfg: cfg, log: cfg.Logger.With("component", "functions"), pools: map[string]*pool{}, stopped: make(chan struct{})}
	f.metrics = newMetrics()
	app := cfg.App
	names := make([]string, 0, len(app.Functions))
	for name := range app.Functions {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		fs := app.Functions[name]
		if fs.Run == "" {
			f.skipped = append(f.skipped, name)
			continue
		}
		p, err := newPool(f, name, fs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.pools[name] = p
		f.names = append(f.names, name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt, err := newRoutes(f)
	if err != nil {
		return nil, err
	}
	f.routes = rt
	if err := f.metrics.register(cfg.Metrics, f); err != nil {
		return nil, err
	}
	return f, nil
}

// Skipped lists the functions nubo up does not run: those with an image and
// no run command, which only Kubernetes runs.
func (f *Functions) Skipped() []string { return slices.Clone(f.skipped) }

// Names lists the functions that run, sorted.
func (f *Functions) Names() []string { return slices.Clone(f.names) }

// Start detects the memory cgroups, builds each function that has a build
// command (one after another, in name order), and starts each function's
// scaling.min instances. It returns once they accept connections, or with
// the first error, having stopped what it started.
func (f *Functions) Start(ctx context.Context) (err error) {
	f.mu.Lock()
	switch f.state {
	case stateRunning:
		f.mu.Unlock()
		return errors.New("functions: start: already started")
	case stateStopped:
		f.mu.Unlock()
		return fmt.Errorf("functions: start: %w", ErrStopped)
	}
	f.state = stateRunning
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.mu.Unlock()
	defer func() {
		if err != nil {
			_ = f.Stop(context.WithoutCancel(ctx))
		}
	}()

	cg := &cgroupManager{reason: "no function sets memory"}
	if f.needsCgroups() {
		cg = detectCgroups(f.log)
		f.notify("", "function memory limits: "+cg.enforcement())
		if cg.enabled() && f.cfg.MemoryCgroups != nil {
			f.cfg.MemoryCgroups(cg.dir)
		}
	}
	f.mu.Lock()
	f.cgroups = cg
	f.mu.Unlock()
	for _, name := range f.names {
		if err := f.pools[name].prepare(ctx); err != nil {
			return err
		}
	}
	for _, name := range f.names {
		f.pools[name].openUp()
	}
	for _, name := range f.names {
		if err := f.pools[name].waitMin(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (f *Functions) needsCgroups() bool {
	for _, p := range f.pools {
		if p.memory > 0 {
			return true
		}
	}
	return false
}

// MemoryEnforcement says how `memory` is enforced on this machine: "cgroup
// v2", "cgroup v1", or "not enforced: WHY". Before Start it is empty.
func (f *Functions) MemoryEnforcement() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == stateNew || f.cgroups == nil {
		return ""
	}
	return f.cgroups.enforcement()
}

// Stop stops taking invocations, fails those waiting for a slot, and stops
// every instance (SIGTERM, then SIGKILL after the grace period or once ctx
// is done). It waits until the processes are gone, unless ctx ends first.
// It is idempotent and nil-safe.
func (f *Functions) Stop(ctx context.Context) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	switch f.state {
	case stateNew:
		f.state = stateStopped
		close(f.stopped)
		f.mu.Unlock()
		f.metrics.unregister()
		return nil
	case stateStopped:
		f.mu.Unlock()
		select {
		case <-f.stopped:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("functions: stop: %w", ctx.Err())
		}
	}
	f.state = stateStopped
	f.cancel()
	f.mu.Unlock()

	for _, name := range f.names {
		f.pools[name].shutdown(ctx)
	}
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		f.mu.Lock()
		cg := f.cgroups
		f.mu.Unlock()
		cg.close()
		f.metrics.unregister()
		for _, p := range f.pools {
			p.transport.CloseIdleConnections()
		}
		close(f.stopped)
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("functions: stop: %w", ctx.Err())
	}
}

// running returns the component's context, or ErrStopped.
func (f *Functions) running() (context.Context, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != stateRunning {
		return nil, ErrStopped
	}
	return f.ctx, nil
}

// pool returns the named function's pool.
func (f *Functions) pool(name string) (*pool, error) {
	p, ok := f.pools[name]
	if !ok {
		if slices.Contains(f.skipped, name) {
			return nil, &Error{Function: name, Kind: ErrNotFound, Detail: "it has no run command, so only Kubernetes runs it"}
		}
		return nil, &Error{Function: name, Kind: ErrNotFound, Detail: suggest(name, f.names)}
	}
	return p, nil
}

// Invoke invokes a function once with e and returns its result: the
// function's 2xx answer. A failure is an *Error whose Kind says what went
// wrong; for ErrFunction the Result holds the function's answer too.
// Missing id and time are filled.
func (f *Functions) Invoke(ctx context.Context, name string, e event.Event) (Result, error) {
	p, err := f.pool(name)
	if err != nil {
		return Result{}, err
	}
	pl, err := eventPayload(name, e)
	if err != nil {
		return Result{}, err
	}
	return p.invoke(ctx, pl)
}

// InvokeBatch invokes a function once with a batch of events, as a JSON
// array in structured mode.
func (f *Functions) InvokeBatch(ctx context.Context, name string, events []event.Event) (Result, error) {
	p, err := f.pool(name)
	if err != nil {
		return Result{}, err
	}
	pl, err := batchPayload(name, events)
	if err != nil {
		return Result{}, err
	}
	return p.invoke(ctx, pl)
}

func (f *Functions) notify(function, msg string) {
	if f.cfg.Notify != nil {
		f.cfg.Notify(function, msg)
	}
}

// resolveDir resolves a path of the spec against its folder.
func resolveDir(app *spec.App, dir string) string {
	if dir == "" {
		return app.Dir
	}
	if filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(app.Dir, dir)
}

// checkDirs checks that every layer is a directory.
func checkDirs(function string, dirs []string) error {
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("function %q: layer %s: %w", function, d, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("function %q: layer %s is not a directory", function, d)
		}
	}
	return nil
}

// suggest is " (did you mean "x"?)" for a close name, or a list of names.
func suggest(name string, names []string) string {
	if s := spec.Suggest(name, names); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	if len(names) == 0 {
		return "the spec runs no functions"
	}
	return fmt.Sprintf("functions are %v", names)
}

// statusOK reports whether an HTTP status is a success.
func statusOK(code int) bool { return code >= 200 && code < 300 }

var _ http.Handler = (*routes)(nil)
