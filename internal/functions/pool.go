package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// pool is one function's instances and the invocations waiting for them.
//
// Lock rules: mu guards the fields marked below and every instance's
// pool-side fields (state, inflight, served, idle bookkeeping). It is never
// held while waiting, doing I/O or calling out of the package (Notify,
// sinks); messages gathered under it are sent after unlocking.
type pool struct {
	f    *Functions
	name string
	log  *slog.Logger

	// From the spec; read-only after newPool.
	command    string
	dir        string
	layers     []string
	timeout    time.Duration
	conc       int
	min, max   int
	idle       time.Duration
	memory     int64 // bytes; 0 sets no limit
	memoryText string
	retries    int
	backoff    time.Duration
	deadLetter string
	build      string

	env       []string // set by prepare; read-only after
	transport *http.Transport
	client    *http.Client
	m         *poolMetrics

	// Counters for Status, beside the Prometheus series.
	invocations, failures, coldStarts atomic.Uint64

	mu        sync.Mutex
	instances []*instance   // starting, ready and draining, by id; guarded by mu
	waiters   []*waiter     // FIFO; guarded by mu
	nextID    int           // guarded by mu
	inUse     int           // invocations in flight; guarded by mu
	open      bool          // taking invocations: between Start and Stop; guarded by mu
	changed   chan struct{} // closed and replaced on every state change; guarded by mu
	lastErr   string        // guarded by mu
	lastErrAt time.Time     // guarded by mu
	// startFailures counts start failures in a row, for the delay before
	// scaling.min is replenished again; guarded by mu.
	startFailures int
	minTimer      *time.Timer // guarded by mu
}

// waiter is an invocation waiting for a slot.
type waiter struct {
	arrived time.Time
	grant   chan grant // buffered: the granter never blocks
	done    bool       // granted or failed; guarded by pool.mu
}

type grant struct {
	in  *instance
	err error
}

func newPool(f *Functions, name string, fs *spec.Function) (*pool, error) {
	app := f.cfg.App
	p := &pool{
		f: f, name: name, log: f.log.With("function", name),
		command:    fs.Run,
		dir:        resolveDir(app, fs.Dir),
		timeout:    fs.Timeout.Duration,
		conc:       fs.Concurrency,
		min:        fs.Scaling.Min,
		max:        fs.Scaling.Max,
		idle:       fs.Scaling.IdleTimeout.Duration,
		retries:    fs.Retry.Attempts,
		backoff:    fs.Retry.Backoff.Duration,
		deadLetter: fs.DeadLetter,
		build:      fs.Build,
		changed:    make(chan struct{}),
	}
	// The spec's defaults are filled by spec.Load; a hand-made App may
	// lack them.
	if p.timeout <= 0 {
		p.timeout = 30 * time.Second
	}
	if p.conc < 1 {
		p.conc = 1
	}
	if p.max < 1 {
		p.max = 10
	}
	if p.backoff <= 0 {
		p.backoff = time.Second
	}
	if p.min < 0 || p.min > p.max {
		return nil, fmt.Errorf("function %q: scaling.min %d is not between 0 and max %d", name, p.min, p.max)
	}
	if fs.Memory.IsSet() {
		p.memory = fs.Memory.Value()
		p.memoryText = fs.Memory.String()
	}
	for _, l := range fs.Layers {
		p.layers = append(p.layers, resolveDir(app, l))
	}
	p.transport = &http.Transport{
		Proxy:               nil, // instances are on loopback; HTTP_PROXY is the mesh, for them
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: max(p.conc, 2),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	p.client = &http.Client{Transport: p.transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p.m = f.metrics.forPool(name)
	return p, nil
}

// prepare checks the layers, resolves the environment and runs the build.
func (p *pool) prepare(ctx context.Context) error {
	if err := checkDirs(p.name, p.layers); err != nil {
		return err
	}
	var base []string
	if p.f.cfg.Env != nil {
		base = p.f.cfg.Env(p.name)
	}
	p.env = functionEnv(p.name, base, p.layers, p.memory, p.timeout)
	if p.build == "" {
		return nil
	}
	p.f.notify(p.name, fmt.Sprintf("building %s: %s", p.name, p.build))
	start := time.Now()
	if err := p.f.runBuild(ctx, p.name, p.build, p.dir, p.env); err != nil {
		return err
	}
	p.f.notify(p.name, fmt.Sprintf("built %s in %s", p.name, time.Since(start).Round(time.Millisecond)))
	return nil
}

// functionEnv is an instance's environment beyond the supervisor's PORT:
// the engine's, then the function's own variables, with the layers first
// on PATH.
func functionEnv(name string, base, layers []string, memory int64, timeout time.Duration) []string {
	env := append([]string(nil), base...)
	env = append(env, "NUBO_FUNCTION="+name, "NUBO_FUNCTION_TIMEOUT="+timeout.String())
	if memory > 0 {
		env = append(env, "NUBO_FUNCTION_MEMORY="+strconv.FormatInt(memory, 10))
	}
	if len(layers) > 0 {
		path := os.Getenv("PATH")
		for _, kv := range base {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		list := strings.Join(layers, string(filepath.ListSeparator))
		env = append(env, "NUBO_LAYERS="+list, "PATH="+list+string(filepath.ListSeparator)+path)
	}
	return env
}

// openUp starts taking invocations, and scaling.min instances.
func (p *pool) openUp() {
	p.mu.Lock()
	p.open = true
	p.ensureMinLocked()
	p.mu.Unlock()
}

// waitMin waits until scaling.min instances are ready, or one fails to
// start.
func (p *pool) waitMin(ctx context.Context) error {
	for {
		p.mu.Lock()
		ready := 0
		for _, in := range p.instances {
			if in.state == stateReady {
				ready++
			}
		}
		failed, lastErr, changed := p.startFailures > 0, p.lastErr, p.changed
		p.mu.Unlock()
		switch {
		case ready >= p.min:
			return nil
		case failed:
			return &Error{Function: p.name, Kind: ErrStart, Detail: lastErr}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return &Error{Function: p.name, Kind: ErrStart, Detail: fmt.Sprintf("%d of scaling.min %d instances ready: %v", ready, p.min, ctx.Err())}
		}
	}
}

// changedLocked wakes everything waiting for a state change.
func (p *pool) changedLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// acquire returns an instance with a slot taken for the caller, waiting
// in the queue if none is free. cold says whether the caller waited for
// the instance to start.
func (p *pool) acquire(ctx context.Context) (in *instance, cold bool, err error) {
	p.mu.Lock()
	if !p.open {
		p.mu.Unlock()
		return nil, false, &Error{Function: p.name, Kind: ErrStopped, Detail: "functions are not running"}
	}
	if len(p.waiters) == 0 {
		if in := p.freeLocked(); in != nil {
			p.takeLocked(in)
			p.mu.Unlock()
			return in, false, nil
		}
	}
	if len(p.waiters) >= p.f.cfg.QueueDepth {
		n := len(p.waiters)
		p.mu.Unlock()
		return nil, false, &Error{Function: p.name, Kind: ErrThrottled, Detail: fmt.Sprintf("%d invocations are already waiting for an instance", n)}
	}
	w := &waiter{arrived: time.Now(), grant: make(chan grant, 1)}
	p.waiters = append(p.waiters, w)
	p.scaleUpLocked()
	p.mu.Unlock()

	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case g := <-w.grant:
		if g.err != nil {
			return nil, false, g.err
		}
		return g.in, g.in.readyAt.After(w.arrived), nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
	}
	p.mu.Lock()
	if w.done {
		// Granted (or failed) at the same time: take the grant unless the
		// caller is gone.
		p.mu.Unlock()
		g := <-w.grant
		switch {
		case g.err != nil:
			return nil, false, g.err
		case err == nil:
			return g.in, g.in.readyAt.After(w.arrived), nil
		}
		p.releaseSlot(g.in, false)
		return nil, false, fmt.Errorf("function %q: waiting for an instance: %w", p.name, err)
	}
	p.removeWaiterLocked(w)
	starting, busy := p.countLocked(stateStarting), p.countLocked(stateReady)
	p.mu.Unlock()
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("function %q: waiting for an instance: %w", p.name, err)
	case starting > 0:
		return nil, false, &Error{Function: p.name, Kind: ErrTimeout, Detail: fmt.Sprintf("no instance ready within %s (one is still starting)", p.timeout)}
	}
	return nil, false, &Error{Function: p.name, Kind: ErrThrottled,
		Detail: fmt.Sprintf("all %d instances busy for %s (scaling.max %d, concurrency %d)", busy, p.timeout, p.max, p.conc)}
}

// freeLocked returns the first ready instance with a free slot: filling the
// oldest instances first lets the newest ones go idle and stop.
func (p *pool) freeLocked() *instance {
	for _, in := range p.instances {
		if in.state == stateReady && in.inflight < p.conc {
			return in
		}
	}
	return nil
}

func (p *pool) takeLocked(in *instance) {
	in.inflight++
	p.inUse++
}

// dispatchLocked gives free slots to waiters, oldest first.
func (p *pool) dispatchLocked() {
	for len(p.waiters) > 0 {
		in := p.freeLocked()
		if in == nil {
			return
		}
		w := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		p.takeLocked(in)
		w.done = true
		w.grant <- grant{in: in}
	}
}

// failWaitersLocked fails every waiting invocation with err.
func (p *pool) failWaitersLocked(err error) {
	for _, w := range p.waiters {
		w.done = true
		w.grant <- grant{err: err}
	}
	p.waiters = nil
}

func (p *pool) removeWaiterLocked(w *waiter) {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return
		}
	}
}

// release hands the slot of a finished invocation back.
func (p *pool) release(in *instance) { p.releaseSlot(in, true) }

// releaseSlot hands a slot back: to a waiter, or it starts the instance's
// idle time; a draining instance stops once its last invocation is done.
// served says whether the slot ran an invocation.
func (p *pool) releaseSlot(in *instance, served bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in.inflight--
	p.inUse--
	if served {
		in.served++
	}
	if in.inflight == 0 {
		in.idleSince = time.Now()
		switch in.state {
		case stateDraining:
			p.retireLocked(in, in.why, in.hard)
		case stateReady:
			p.armIdleLocked(in)
		}
	}
	p.dispatchLocked()
}

// armIdleLocked (re)starts an idle instance's timer.
func (p *pool) armIdleLocked(in *instance) {
	if p.idle <= 0 {
		return
	}
	if in.idleTimer == nil {
		in.idleTimer = time.AfterFunc(p.idle, func() { p.idleFired(in) })
		return
	}
	in.idleTimer.Reset(p.idle)
}

// idleFired stops an instance that has been idle for idleTimeout, unless the
// pool would fall under scaling.min.
func (p *pool) idleFired(in *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in.state != stateReady || in.inflight > 0 {
		return
	}
	if left := p.idle - time.Since(in.idleSince); left > 0 {
		in.idleTimer.Reset(left) // used since it was armed
		return
	}
	if p.activeLocked() <= p.min {
		return
	}
	p.retireLocked(in, fmt.Sprintf("idle for %s", p.idle), false)
}

// countLocked counts instances in a state.
func (p *pool) countLocked(s instState) int {
	n := 0
	for _, in := range p.instances {
		if in.state == s {
			n++
		}
	}
	return n
}

// activeLocked counts the instances that serve or will: starting and ready.
func (p *pool) activeLocked() int {
	return p.countLocked(stateStarting) + p.countLocked(stateReady)
}

// scaleUpLocked starts instances while the waiting invocations outnumber
// the slots of instances already starting, up to scaling.max (draining
// instances count: their processes still run).
func (p *pool) scaleUpLocked() {
	if !p.open {
		return
	}
	spare := p.countLocked(stateStarting) * p.conc
	for len(p.waiters) > spare && len(p.instances) < p.max {
		p.startLocked()
		spare += p.conc
	}
}

// ensureMinLocked starts instances until scaling.min serve or start. After
// failed starts it waits (1s, doubling to a minute) rather than spin on a
// function that cannot start.
func (p *pool) ensureMinLocked() {
	if !p.open || p.activeLocked() >= p.min {
		return
	}
	if p.startFailures > 0 {
		if p.minTimer == nil {
			delay := min(time.Second<<min(p.startFailures-1, 6), time.Minute)
			p.minTimer = time.AfterFunc(delay, func() {
				p.mu.Lock()
				p.minTimer = nil
				fails := p.startFailures
				p.startFailures = 0 // let ensureMin try now
				p.ensureMinLocked()
				if p.startFailures == 0 {
					p.startFailures = fails // remembered until a start succeeds
				}
				p.mu.Unlock()
			})
		}
		return
	}
	for p.activeLocked() < p.min && len(p.instances) < p.max {
		p.startLocked()
	}
}

// startLocked adds a starting instance and its goroutine.
func (p *pool) startLocked() {
	p.nextID++
	in := newInstance(p, p.nextID)
	p.instances = append(p.instances, in)
	p.changedLocked()
	p.f.wg.Add(1) // under mu while open: Stop waits only after closing
	go p.run(in)
}

// removeLocked takes an instance out of the pool; it reports whether it
// was in.
func (p *pool) removeLocked(in *instance) bool {
	for i, x := range p.instances {
		if x == in {
			p.instances = append(p.instances[:i], p.instances[i+1:]...)
			p.changedLocked()
			return true
		}
	}
	return false
}

// retireLocked takes an instance out of service and has its goroutine stop
// it: gracefully, or at once when hard (a stuck instance).
func (p *pool) retireLocked(in *instance, why string, hard bool) {
	if in.state == stateStopping || in.state == stateExited {
		return
	}
	p.removeLocked(in)
	in.state, in.why, in.hard = stateStopping, why, hard
	if in.idleTimer != nil {
		in.idleTimer.Stop()
	}
	in.retireOnce.Do(func() { close(in.retire) })
	in.cancel() // ends a start in progress
	p.ensureMinLocked()
	p.scaleUpLocked()
}

// markStuck drains an instance that did not answer an invocation within its
// timeout and the recovery grace: it gets no more invocations and is killed
// once those in flight are over.
func (p *pool) markStuck(in *instance, why string) {
	p.mu.Lock()
	if in.state == stateReady {
		in.state, in.why, in.hard = stateDraining, why, true
		if in.idleTimer != nil {
			in.idleTimer.Stop()
		}
		p.changedLocked()
		p.ensureMinLocked()
		p.scaleUpLocked()
	}
	p.mu.Unlock()
	p.f.notify(p.name, fmt.Sprintf("%s-%d %s: replacing it", p.name, in.id, why))
}

// spawn runs fn in a goroutine Stop waits for, unless the pool is closed
// (Stop may be waiting already); it reports whether fn runs.
func (p *pool) spawn(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open {
		return false
	}
	p.f.wg.Add(1)
	go func() {
		defer p.f.wg.Done()
		fn()
	}()
	return true
}

// shutdown closes the pool: waiting invocations fail and every instance
// stops, with ctx bounding the grace period.
func (p *pool) shutdown(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = false
	if p.minTimer != nil {
		p.minTimer.Stop()
		p.minTimer = nil
	}
	p.failWaitersLocked(&Error{Function: p.name, Kind: ErrStopped, Detail: "nubo is stopping"})
	for _, in := range append([]*instance(nil), p.instances...) {
		in.stopCtx = ctx
		p.retireLocked(in, "nubo is stopping", false)
	}
}

// recordErrorLocked keeps the last problem for Status.
func (p *pool) recordErrorLocked(msg string) {
	p.lastErr, p.lastErrAt = msg, time.Now()
}
