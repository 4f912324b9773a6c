package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// outputDrainTimeout bounds how long an exited replica's output is read:
// a process that left the group (setsid) may hold the pipe open forever.
const outputDrainTimeout = 2 * time.Second

// replica is one pod: a slot with a port that runs its process, restarts it
// in place per the restart policy, and probes it. Its run goroutine owns the
// process; other goroutines only read its status (under s.mu) or ask it to
// stop.
type replica struct {
	s     *Supervisor
	cfg   *ServiceConfig // normalized, shared, read-only
	index int
	id    int
	port  int
	env   []string
	log   *slog.Logger

	ctx     context.Context // cancelled to stop the replica
	cancel  context.CancelFunc
	started chan error    // the first start's result; buffered
	done    chan struct{} // closed when run returns and the process is gone

	// killNow is closed when the context of any stop request is done: the
	// grace period ends early. Several callers may ask a replica to stop
	// (a scale-down, then Stop), and the earliest deadline wins.
	killNow  chan struct{}
	stopMu   sync.Mutex // guards the fields below
	killed   bool
	finished bool
	releases []func() bool // context.AfterFunc registrations to undo

	// Guarded by s.mu.
	state       State
	ready       bool
	retiring    bool
	pid         int
	restarts    int
	startedAt   time.Time
	nextRestart time.Time
	lastExit    *ExitStatus
	lastErr     string
	probes      map[ProbeKind]ProbeResult
	usage       *ResourceUsage
	sample      usageSample
	// cpuTotal is the CPU time of every process this replica has run,
	// as sampled: ResourceUsage.CPUSeconds.
	cpuTotal time.Duration
}

// instance is one run of a replica's process.
type instance struct {
	cmd   *exec.Cmd
	pid   int
	start time.Time
	// exited is closed once the process is reaped and its output drained;
	// exit is set before.
	exited chan struct{}
	exit   ExitStatus

	mu     sync.Mutex // guards reaped, and orders signals against the reap
	reaped bool
	// cg is the instance's cgroup; nil without cgroups.
	cg Cgroup
}

// signal sends sig to the instance's process group unless it has been
// reaped: after the reap its pid, and so the group id, may be reused.
func (in *instance) signal(sig syscall.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.reaped {
		_ = signalGroup(in.pid, sig)
	}
}

// freePort returns a port that was free on 127.0.0.1 a moment ago. The
// replica binds it later, so another process may take it in between; the
// window is small and the cost is one crash and restart.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func replicaEnv(cfg *ServiceConfig, index, port int) []string {
	env := append(os.Environ(), cfg.Env...)
	// Last wins in os/exec: the supervisor's values override inherited ones.
	return append(env,
		"PORT="+strconv.Itoa(port),
		"NUBO_REPLICA="+strconv.Itoa(index),
		"NUBO_SERVICE="+cfg.Name,
	)
}

// update applies f to the replica's status under s.mu and wakes waiters.
func (r *replica) update(f func()) {
	r.s.mu.Lock()
	f()
	r.s.notifyLocked()
	r.s.mu.Unlock()
}

func (r *replica) emit(e Event) {
	e.Replica, e.ReplicaID = r.index, r.id
	r.s.emit(e)
}

// errorf wraps an error with the service and replica, as the engine shows it.
func (r *replica) errorf(format string, args ...any) error {
	return fmt.Errorf("service %q: replica %d: %w", r.cfg.Name, r.index, fmt.Errorf(format, args...))
}

// requestStop asks the run goroutine to stop the process: SIGTERM, then
// SIGKILL after the grace period or when ctx is done, whichever is first.
func (r *replica) requestStop(ctx context.Context) {
	r.stopMu.Lock()
	if !r.finished {
		r.releases = append(r.releases, context.AfterFunc(ctx, r.forceKill))
	}
	r.stopMu.Unlock()
	r.cancel()
}

func (r *replica) forceKill() {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	if !r.killed {
		r.killed = true
		close(r.killNow)
	}
}

// finish releases the stop requests' registrations on their contexts,
// which may outlive the replica by far.
func (r *replica) finish() {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	r.finished = true
	for _, release := range r.releases {
		release()
	}
	r.releases = nil
}

// stop stops the replica and waits until its process is gone or ctx is done
// (by then its group has been sent SIGKILL).
func (r *replica) stop(ctx context.Context) error {
	r.requestStop(ctx)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return r.errorf("stop: %w", ctx.Err())
	}
}

// run is the replica's goroutine: start, supervise, restart with backoff,
// until stopped.
func (r *replica) run() {
	defer r.s.wg.Done()
	defer close(r.done)
	defer r.finish()
	bo := crashBackoff{cfg: r.cfg.Backoff}
	first := true
	for {
		if r.ctx.Err() != nil {
			// Stopped before (re)starting: start nothing.
			if first {
				r.started <- r.errorf("start: %w", ErrStopped)
			}
			r.update(func() { r.state = StateStopped })
			r.emit(Event{Kind: EventStopped})
			return
		}
		inst, err := r.launch()
		if first {
			r.started <- err
			first = false
		}
		var exit ExitStatus
		var ranFor time.Duration
		probeKilled := false
		if err != nil {
			r.log.Debug("start failed", "err", err)
			r.update(func() { r.lastErr = err.Error(); r.pid = 0 })
			r.emit(Event{Kind: EventStartFailed, Message: err.Error()})
		} else {
			var stopped bool
			probeKilled, stopped = r.supervise(inst)
			exit, ranFor = inst.exit, inst.exit.Time.Sub(inst.start)
			r.update(func() {
				r.pid, r.ready = 0, false
				r.lastExit = &exit
				r.usage, r.sample = nil, usageSample{}
			})
			r.emit(Event{Kind: EventExited, PID: inst.pid, ExitCode: exit.Code, Signal: exit.Signal})
			if stopped {
				r.update(func() { r.state = StateStopped })
				r.emit(Event{Kind: EventStopped})
				return
			}
		}

		if !r.shouldRestart(err != nil, exit, probeKilled) {
			final, why := StateFailed, fmt.Sprintf("exit code %d, restart policy %s", exit.Code, r.cfg.Restart)
			switch {
			case err != nil:
				why = fmt.Sprintf("%v, restart policy %s", err, r.cfg.Restart)
			case exit.Code == 0:
				final = StateExited
			}
			r.update(func() { r.state = final })
			r.emit(Event{Kind: EventFailed, ExitCode: exit.Code, Message: why})
			<-r.ctx.Done()
			return
		}

		delay := bo.delay(ranFor)
		next := time.Now().Add(delay)
		r.update(func() { r.state, r.nextRestart = StateBackOff, next })
		r.emit(Event{Kind: EventBackOff, Delay: delay})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			r.update(func() { r.state, r.nextRestart = StateStopped, time.Time{} })
			r.emit(Event{Kind: EventStopped})
			return
		}
		r.update(func() { r.restarts++; r.nextRestart = time.Time{} })
	}
}

// shouldRestart applies the restart policy. A process killed by a failing
// probe is restarted unless the policy is Never whatever its exit code, as
// the kubelet does.
func (r *replica) shouldRestart(startFailed bool, exit ExitStatus, probeKilled bool) bool {
	switch r.cfg.Restart {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return startFailed || probeKilled || exit.Code != 0
	default:
		return false
	}
}

// launch starts the replica's process with its output pumped to the line
// sink, and a goroutine that reaps it.
func (r *replica) launch() (*instance, error) {
	cmd := exec.Command("/bin/sh", "-c", shellCommand(r.cfg.Command))
	cmd.Dir = r.cfg.Dir
	cmd.Env = r.env
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = r.cfg.Credential
	// Pipes of our own rather than io.Writers: with a writer, Wait would
	// also wait for every process holding the pipe, and a replica's exit
	// would be seen late or never.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, r.errorf("start: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, r.errorf("start: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	cg := r.cgroup()
	if cg != nil {
		cg.Prepare(cmd.SysProcAttr)
	}
	err = r.s.sp.start(cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if cg != nil {
			_ = cg.Started(0)
			_ = cg.Kill()
		}
		return nil, r.errorf("start: %w", err)
	}
	if cg != nil {
		if err := cg.Started(cmd.Process.Pid); err != nil {
			r.log.Warn("join the replica's cgroup", "pid", cmd.Process.Pid, "err", err)
		}
	}

	in := &instance{cmd: cmd, pid: cmd.Process.Pid, start: time.Now(), exited: make(chan struct{}), cg: cg}
	state := StateRunning
	if r.cfg.Startup != nil {
		state = StateStarting
	}
	r.update(func() {
		r.state, r.ready = state, false
		r.pid, r.startedAt, r.lastErr = in.pid, in.start, ""
		r.probes = nil
		r.usage, r.sample = nil, usageSample{}
	})
	r.log.Debug("started", "pid", in.pid, "port", r.port)
	r.emit(Event{Kind: EventStarted, PID: in.pid, Port: r.port})

	// The run goroutine is counted in s.wg, so these Adds cannot race with
	// Stop's Wait reaching zero.
	var pumps sync.WaitGroup
	for _, p := range []struct {
		f      *os.File
		stream string
	}{{outR, Stdout}, {errR, Stderr}} {
		pumps.Add(1)
		r.s.wg.Add(1)
		go func() {
			defer r.s.wg.Done()
			defer pumps.Done()
			defer p.f.Close()
			pumpLines(p.f, func(line []byte) { r.s.lines.Line(r.cfg.Name, r.index, p.stream, line) })
		}()
	}
	r.s.wg.Add(1)
	go func() {
		defer r.s.wg.Done()
		in.exit = r.reap(in)
		drained := make(chan struct{})
		go func() { pumps.Wait(); close(drained) }()
		t := time.NewTimer(outputDrainTimeout)
		select {
		case <-drained:
		case <-t.C:
			outR.Close() // unblocks the pumps' reads
			errR.Close()
			<-drained
		}
		t.Stop()
		close(in.exited)
	}()
	return in, nil
}

// reap waits for the instance's process to exit, kills the rest of its
// process group (a replica is a container: everything in it dies with its
// main process), and reaps it.
func (r *replica) reap(in *instance) ExitStatus {
	var err error
	if waitExited(in.pid) {
		// Exited but unreaped: the group id cannot have been reused yet.
		in.mu.Lock()
		_ = signalGroup(in.pid, syscall.SIGKILL)
		err = in.cmd.Wait()
		in.reaped = true
		in.mu.Unlock()
	} else {
		// Where the exit cannot be awaited without reaping, kill the rest
		// of the group just after, as the best we can do.
		err = in.cmd.Wait()
		in.mu.Lock()
		in.reaped = true
		_ = signalGroup(in.pid, syscall.SIGKILL)
		in.mu.Unlock()
	}
	if err != nil && in.cmd.ProcessState == nil {
		r.log.Warn("wait", "pid", in.pid, "err", err)
	}
	// What left the process group (setsid) is still in the cgroup.
	if in.cg != nil {
		if err := in.cg.Kill(); err != nil {
			r.log.Warn("kill the replica's cgroup", "err", err)
		}
	}
	return exitStatus(in.cmd.ProcessState)
}

// cgroup makes the next instance's cgroup, or nil: without cgroups, or
// when one cannot be made (the process group still holds the replica).
func (r *replica) cgroup() Cgroup {
	if r.s.cgroups == nil {
		return nil
	}
	cg, err := r.s.cgroups.New(fmt.Sprintf("%s-%d", r.cfg.Name, r.index))
	if err != nil {
		r.log.Warn("no cgroup for the replica", "err", err)
		return nil
	}
	return cg
}

// exitStatus reports how a process ended, with a signal's death as the
// 128+n exit code Kubernetes shows.
func exitStatus(ps *os.ProcessState) ExitStatus {
	st := ExitStatus{Code: -1, Time: time.Now()}
	if ps == nil {
		return st
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Code = 128 + int(ws.Signal())
		st.Signal = ws.Signal().String()
		return st
	}
	st.Code = ps.ExitCode()
	return st
}

// supervise waits for the instance to exit while its probes run. It returns
// whether a probe killed it, and whether the replica was asked to stop.
func (r *replica) supervise(in *instance) (probeKilled, stopped bool) {
	ctx, cancel := context.WithCancel(context.Background())
	kill := make(chan string, 1)
	var probes sync.WaitGroup
	probes.Add(1)
	go func() {
		defer probes.Done()
		r.probe(ctx, in, kill)
	}()
	defer func() {
		cancel()
		probes.Wait()
	}()

	select {
	case <-in.exited:
		return false, false
	case why := <-kill:
		r.log.Debug("killing", "reason", why)
		r.emit(Event{Kind: EventKilling, PID: in.pid, Message: why})
		cancel() // no more probe results for a process being killed
		r.terminate(in)
		return true, r.ctx.Err() != nil
	case <-r.ctx.Done():
		r.terminate(in)
		return false, true
	}
}

// terminate sends the stop signal (SIGTERM) to the instance's group, then SIGKILL after the
// grace period, or as soon as a stop request's context is done.
func (r *replica) terminate(in *instance) {
	r.update(func() { r.state, r.ready = StateTerminating, false })
	sig := r.cfg.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	in.signal(sig)
	grace := time.NewTimer(r.cfg.StopGracePeriod)
	defer grace.Stop()
	select {
	case <-in.exited:
		return
	case <-r.killNow:
	case <-grace.C:
	}
	in.signal(syscall.SIGKILL)
	<-in.exited
}

// setReady records a readiness change of a started replica and reports it.
func (r *replica) setReady(ready bool, why string) {
	changed := false
	r.update(func() {
		if r.state != StateRunning && r.state != StateReady {
			return // starting, terminating or gone: readiness is moot
		}
		changed = r.ready != ready
		r.ready = ready
		r.state = StateRunning
		if ready {
			r.state = StateReady
		}
	})
	switch {
	case !changed:
	case ready:
		r.emit(Event{Kind: EventReady})
	default:
		r.emit(Event{Kind: EventNotReady, Message: why})
	}
}

func (r *replica) recordProbe(kind ProbeKind, res ProbeResult) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.probes == nil {
		r.probes = make(map[ProbeKind]ProbeResult, 3)
	}
	r.probes[kind] = res
}

// status returns a snapshot of the replica. s.mu must be held.
func (r *replica) statusLocked() ReplicaStatus {
	st := ReplicaStatus{
		Index: r.index, ID: r.id, Retiring: r.retiring,
		State: r.state, Ready: r.ready, PID: r.pid, Port: r.port,
		Restarts: r.restarts, StartedAt: r.startedAt, NextRestart: r.nextRestart,
		LastError: r.lastErr,
	}
	if r.lastExit != nil {
		e := *r.lastExit
		st.LastExit = &e
	}
	if len(r.probes) > 0 {
		st.Probes = make(map[ProbeKind]ProbeResult, len(r.probes))
		for k, v := range r.probes {
			st.Probes[k] = v
		}
	}
	if r.usage != nil {
		u := *r.usage
		st.Usage = &u
	}
	return st
}

// describeLocked says in a few words why a replica is not ready, for errors.
// s.mu must be held.
func (r *replica) describeLocked() string {
	d := fmt.Sprintf("replica %d: %s", r.index, r.state)
	if r.lastExit != nil {
		d += fmt.Sprintf(", last exit code %d", r.lastExit.Code)
	}
	if r.restarts > 0 {
		d += fmt.Sprintf(", %d restarts", r.restarts)
	}
	if r.lastErr != "" {
		d += ", " + r.lastErr
	}
	for _, k := range []ProbeKind{ProbeStartup, ProbeLiveness, ProbeReadiness} {
		if p, ok := r.probes[k]; ok && !p.OK {
			d += fmt.Sprintf(", %s probe: %s", k, p.Message)
		}
	}
	return d
}
