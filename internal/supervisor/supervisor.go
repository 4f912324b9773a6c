// Package supervisor runs one service's replicas as supervised processes
// with Kubernetes semantics: it owns their processes (start, stop, process
// groups), their output, their probes (startup, liveness, readiness),
// restart policies and CrashLoopBackOff, scaling, rolling replacement, the
// resource usage read from /proc, and the HPA algorithm that scales on it.
//
// # Overview
//
// New validates a ServiceConfig and allocates; Start runs the replicas and
// returns once their processes have started; WaitReady waits until all of
// them are ready; Stop stops them (SIGTERM, then SIGKILL after the grace
// period). Status is a snapshot for `nubo status` and the console. Output
// lines go to a LineSink and lifecycle events to an EventSink, both given
// as options.
//
// Each replica is a pod with one container: it gets its own free loopback
// port in $PORT and its index in $NUBO_REPLICA, runs `/bin/sh -c Command` in
// a process group of its own, and is restarted in place with its restart
// count. The process group stands in for the container: when the main
// process exits, the rest of the group is killed.
//
// # Why hand-written
//
// No Go library implements the kubelet's semantics for plain processes.
// process-compose comes closest but is an application, with global state,
// and differs from Kubernetes in its probe and backoff details. The HPA
// algorithm lives in Kubernetes' controller manager, which is not meant to
// be imported.
//
// # Dying with nubo
//
// On Linux children get Pdeathsig SIGKILL, so they die if nubo dies without
// stopping them (see spawner for how the thread that starts them is kept
// alive). That reaches the replica's main process; what it forked dies with
// it only if it exits when its parent does. A graceful Stop reaches the
// whole group.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrStopped is returned by operations on a stopped Supervisor.
var ErrStopped = errors.New("supervisor stopped")

// Supervisor runs the replicas of one service. Its methods are safe for
// concurrent use; Start, Scale, Roll and RestartAll run one at a time.
type Supervisor struct {
	cfg         ServiceConfig // normalized; read-only after New
	log         *slog.Logger
	lines       LineSink
	events      EventSink
	sampleEvery time.Duration
	probeClient *http.Client
	cgroups     Cgroups

	// opMu serializes Start, Scale, Roll and RestartAll. Lock order: opMu,
	// then mu. Stop does not take it, so that it is never stuck behind a
	// Roll waiting for a replica that will not become ready.
	opMu sync.Mutex

	// mu guards the fields below and every replica's status fields. It is
	// never held while calling a sink or waiting.
	mu       sync.Mutex
	phase    phase
	desired  int
	replicas []*replica // by index, then ID; includes retiring ones
	nextID   int
	changed  chan struct{} // closed and replaced on every status change
	sp       *spawner
	runCtx   context.Context // done when Stop begins
	cancel   context.CancelFunc
	stopped  chan struct{} // closed when Stop has finished

	// wg counts every goroutine the supervisor starts; Stop waits for it.
	wg sync.WaitGroup
}

type phase int

const (
	phaseNew phase = iota
	phaseRunning
	phaseStopped
)

// Option configures a Supervisor.
type Option func(*Supervisor)

// WithLogger sets the logger for the supervisor's own diagnostics; nil
// discards them. User-facing happenings go to the EventSink.
func WithLogger(l *slog.Logger) Option { return func(s *Supervisor) { s.log = l } }

// WithLineSink sets where replicas' output lines go; nil discards them.
func WithLineSink(ls LineSink) Option { return func(s *Supervisor) { s.lines = ls } }

// WithEventSink sets where events go; nil discards them.
func WithEventSink(es EventSink) Option { return func(s *Supervisor) { s.events = es } }

// Cgroups gives each replica's process tree a cgroup of its own
// (internal/procgroup), so that what leaves the replica's process group
// (setsid) is killed with the replica all the same.
type Cgroups interface {
	// New makes the cgroup of one instance; nil and no error: none, as
	// the caller knows already.
	New(name string) (Cgroup, error)
}

// Cgroup is one replica instance's cgroup.
type Cgroup interface {
	// Prepare makes the command start inside the cgroup, where it can.
	Prepare(attr *syscall.SysProcAttr)
	// Started finishes the start of pid (0: the start failed).
	Started(pid int) error
	// Kill kills every process left in the cgroup and removes it.
	Kill() error
}

// WithCgroups puts every replica instance in a cgroup of cg; nil (the
// default) kills by process group only.
func WithCgroups(cg Cgroups) Option { return func(s *Supervisor) { s.cgroups = cg } }

// WithSampleInterval sets how often resource usage is read from /proc
// (default DefaultSampleInterval).
func WithSampleInterval(d time.Duration) Option {
	return func(s *Supervisor) { s.sampleEvery = d }
}

// New validates cfg, fills its defaults and returns a Supervisor that has
// not started anything.
func New(cfg ServiceConfig, opts ...Option) (*Supervisor, error) {
	ncfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: ncfg, desired: ncfg.Replicas, changed: make(chan struct{}), stopped: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("service", ncfg.Name)
	if s.lines == nil {
		s.lines = discardLines{}
	}
	if s.events == nil {
		s.events = discardEvents{}
	}
	if s.sampleEvery <= 0 {
		s.sampleEvery = DefaultSampleInterval
	}
	s.probeClient = newProbeClient()
	return s, nil
}

// Name returns the service's name.
func (s *Supervisor) Name() string { return s.cfg.Name }

// Config returns a copy of the normalized configuration, with defaults
// filled.
func (s *Supervisor) Config() ServiceConfig { return s.cfg.clone() }

func (s *Supervisor) errorf(format string, args ...any) error {
	return fmt.Errorf("service %q: %w", s.cfg.Name, fmt.Errorf(format, args...))
}

// notifyLocked wakes everything waiting for a status change. s.mu must be
// held.
func (s *Supervisor) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Supervisor) emit(e Event) {
	e.Service = s.cfg.Name
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.events.Event(e)
}

// Start starts the configured number of replicas and returns once their
// processes have started (not necessarily ready: see WaitReady). If a
// replica cannot be started, Start stops the others and returns the error;
// the Supervisor is then stopped.
func (s *Supervisor) Start(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	switch s.phase {
	case phaseRunning:
		s.mu.Unlock()
		return s.errorf("start: already started")
	case phaseStopped:
		s.mu.Unlock()
		return s.errorf("start: %w", ErrStopped)
	}
	s.phase = phaseRunning
	s.runCtx, s.cancel = context.WithCancel(context.Background())
	s.sp = newSpawner()
	// Added under mu: a concurrent Stop must not Wait before this Add.
	s.wg.Add(1)
	go s.sampleUsage(s.runCtx)
	s.mu.Unlock()

	indexes := make([]int, s.cfg.Replicas)
	for i := range indexes {
		indexes[i] = i
	}
	if _, err := s.addReplicas(ctx, indexes); err != nil {
		_ = s.Stop(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// addReplicas creates, registers and starts replicas with the given
// indexes, and waits for their first start. On error the new replicas are
// stopped again. s.opMu must be held.
func (s *Supervisor) addReplicas(ctx context.Context, indexes []int) ([]*replica, error) {
	ports, err := s.freePorts(len(indexes))
	if err != nil {
		return nil, err
	}
	rs := make([]*replica, 0, len(indexes))
	for n, i := range indexes {
		port := ports[n]
		rctx, cancel := context.WithCancel(context.Background())
		r := &replica{
			s: s, cfg: &s.cfg, index: i, port: port,
			env:     replicaEnv(&s.cfg, i, port),
			ctx:     rctx,
			cancel:  cancel,
			started: make(chan error, 1),
			done:    make(chan struct{}),
			killNow: make(chan struct{}),
			state:   StatePending,
		}
		rs = append(rs, r)
	}
	s.mu.Lock()
	if s.phase != phaseRunning {
		s.mu.Unlock()
		return nil, s.errorf("%w", ErrStopped)
	}
	for _, r := range rs {
		s.nextID++
		r.id = s.nextID
		r.log = s.log.With("replica", r.index, "id", r.id)
		s.replicas = append(s.replicas, r)
		s.wg.Add(1)
		go r.run()
	}
	s.sortLocked()
	s.notifyLocked()
	s.mu.Unlock()

	var errs []error
	for _, r := range rs {
		select {
		case err := <-r.started:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			errs = append(errs, s.errorf("replica %d: start: %w", r.index, ctx.Err()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = s.retire(context.WithoutCancel(ctx), rs)
		return nil, err
	}
	return rs, nil
}

// freePorts picks n ports that were free on 127.0.0.1 and that no replica
// of this service has: a replica that has not bound its port yet must not
// share it with a new one.
func (s *Supervisor) freePorts(n int) ([]int, error) {
	s.mu.Lock()
	taken := make(map[int]bool, len(s.replicas)+n)
	for _, r := range s.replicas {
		taken[r.port] = true
	}
	s.mu.Unlock()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		p, err := freePort()
		if err != nil {
			return nil, s.errorf("%w", err)
		}
		if taken[p] {
			if tries > 100*n {
				return nil, s.errorf("pick a free port: %d is taken by a replica", p)
			}
			continue
		}
		taken[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

func (s *Supervisor) sortLocked() {
	slices.SortStableFunc(s.replicas, func(a, b *replica) int {
		if a.index != b.index {
			return a.index - b.index
		}
		return a.id - b.id
	})
}

// active returns the replicas that are not retiring. s.mu must be held.
func (s *Supervisor) activeLocked() []*replica {
	var out []*replica
	for _, r := range s.replicas {
		if !r.retiring {
			out = append(out, r)
		}
	}
	return out
}

// running checks that the Supervisor is started and not stopped.
func (s *Supervisor) running(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.phase {
	case phaseNew:
		return s.errorf("%s: not started", op)
	case phaseStopped:
		return s.errorf("%s: %w", op, ErrStopped)
	}
	if s.runCtx.Err() != nil {
		return s.errorf("%s: %w", op, ErrStopped)
	}
	return nil
}

// WaitReady blocks until every replica is ready. It returns an error at
// once if a replica has exited for good (restart policy), or when ctx is
// done, saying which replicas are not ready and why.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.phase != phaseRunning || s.runCtx.Err() != nil {
			s.mu.Unlock()
			return s.errorf("wait ready: %w", ErrStopped)
		}
		var notReady, dead []string
		for _, r := range s.activeLocked() {
			switch {
			case r.ready:
			case terminal(r.state):
				dead = append(dead, r.describeLocked())
			default:
				notReady = append(notReady, r.describeLocked())
			}
		}
		changed := s.changed
		s.mu.Unlock()

		if len(dead) > 0 {
			return s.errorf("wait ready: %s", strings.Join(dead, "; "))
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s.errorf("wait ready: %w (%s)", ctx.Err(), strings.Join(notReady, "; "))
		}
	}
}

// waitReplicaReady waits until r is ready, has exited for good, or ctx or
// the Supervisor is done.
func (s *Supervisor) waitReplicaReady(ctx context.Context, r *replica) error {
	for {
		s.mu.Lock()
		ready, dead, desc := r.ready, terminal(r.state), r.describeLocked()
		changed, stopped := s.changed, s.runCtx.Done()
		s.mu.Unlock()
		switch {
		case ready:
			return nil
		case dead:
			return errors.New(desc)
		}
		select {
		case <-changed:
		case <-stopped:
			return ErrStopped
		case <-ctx.Done():
			return fmt.Errorf("%w (%s)", ctx.Err(), desc)
		}
	}
}

// Stop stops every replica: SIGTERM to its process group, then SIGKILL
// after StopGracePeriod or as soon as ctx is done. It waits until the
// processes are gone and their output delivered (no Line call follows),
// unless ctx ends first. Stop interrupts a Scale, Roll or RestartAll in
// progress. It is idempotent and safe on a nil or never-started
// Supervisor.
func (s *Supervisor) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	switch s.phase {
	case phaseNew:
		s.phase = phaseStopped
		close(s.stopped)
		s.mu.Unlock()
		return nil
	case phaseStopped:
		s.mu.Unlock()
		select {
		case <-s.stopped:
			return nil
		case <-ctx.Done():
			return s.errorf("stop: %w", ctx.Err())
		}
	}
	// From here on addReplicas refuses, so rs is every replica there will
	// ever be. Stop does not take opMu: an operation in progress sees
	// runCtx done and its replicas stopping, and gives up.
	s.phase = phaseStopped
	rs := slices.Clone(s.replicas)
	s.notifyLocked()
	s.mu.Unlock()
	s.cancel()

	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.stop(ctx) })
	}
	wg.Wait()

	go func() {
		s.wg.Wait()
		// Only now: the spawner's thread is the parent, for Pdeathsig, of
		// every process started, and they have all been reaped.
		s.sp.close()
		close(s.stopped)
	}()
	select {
	case <-s.stopped:
	case <-ctx.Done():
		errs = append(errs, s.errorf("stop: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// Status returns a snapshot of the service and its replicas.
func (s *Supervisor) Status() ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ServiceStatus{Name: s.cfg.Name, Desired: s.desired, Replicas: make([]ReplicaStatus, 0, len(s.replicas))}
	for _, r := range s.replicas {
		rs := r.statusLocked()
		if rs.Ready && !rs.Retiring {
			st.Ready++
		}
		st.Replicas = append(st.Replicas, rs)
	}
	return st
}
