package functions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nubo-dev/nubo/internal/supervisor"
)

// instState is an instance's place in its pool.
type instState int

const (
	// stateStarting: the process is starting; its port does not accept
	// connections yet.
	stateStarting instState = iota
	// stateReady: it takes invocations.
	stateReady
	// stateDraining: it takes no more invocations and stops once those in
	// flight are over (it did not recover from a timeout).
	stateDraining
	// stateStopping: out of the pool, being stopped.
	stateStopping
	// stateExited: its process exited on its own.
	stateExited
)

func (s instState) String() string {
	switch s {
	case stateStarting:
		return "starting"
	case stateReady:
		return "ready"
	case stateDraining:
		return "draining"
	case stateStopping:
		return "stopping"
	}
	return "exited"
}

// instance is one process of a function. Its goroutine (pool.run) owns the
// process from start to teardown; the pool's fields are under pool.mu.
type instance struct {
	p    *pool
	id   int
	tail *tail

	ctx    context.Context // cancelled to abort a start
	cancel context.CancelFunc

	retire     chan struct{} // closed when the pool retires the instance
	retireOnce sync.Once
	exited     chan struct{} // closed when the process has exited
	exitOnce   sync.Once
	exit       supervisor.ExitStatus // set before exited is closed
	oom        bool                  // the kernel killed it over its memory limit; set before exited is closed

	// Set by the goroutine before the instance is ready; read by others
	// only after it is (the pool's mutex orders them), or under pool.mu.
	sup       *supervisor.Supervisor
	cg        *cgroup
	pid, port int
	url       *url.URL // shared by its requests, never changed
	startedAt time.Time
	readyAt   time.Time
	coldStart time.Duration

	// Guarded by pool.mu.
	state     instState
	inflight  int
	served    uint64
	idleSince time.Time
	idleTimer *time.Timer
	why       string          // why it is draining or stopping
	hard      bool            // stop with SIGKILL at once
	stopCtx   context.Context // bounds the grace period of its stop; nil: the default
}

func newInstance(p *pool, id int) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	return &instance{p: p, id: id, tail: &tail{}, ctx: ctx, cancel: cancel,
		retire: make(chan struct{}), exited: make(chan struct{}), state: stateStarting}
}

// label names the instance as the engine's output prefixes do.
func (in *instance) label() string { return in.p.name + "-" + strconv.Itoa(in.id) }

// run is the instance's goroutine: start it, serve until retired or exited,
// stop it.
func (p *pool) run(in *instance) {
	defer p.f.wg.Done()
	err := in.start()
	p.started(in, err)
	if err == nil {
		select {
		case <-in.retire:
		case <-in.exited:
		}
	}
	in.teardown()
	p.mu.Lock()
	p.removeLocked(in)
	why, hard := in.why, in.hard
	p.mu.Unlock()
	in.cancel()
	switch {
	case err != nil || why == "":
	case hard:
		p.f.notify(p.name, in.label()+" killed")
	default:
		p.f.notify(p.name, fmt.Sprintf("%s stopped (%s)", in.label(), why))
	}
}

// start creates the instance's cgroup and process and waits until its port
// accepts connections.
func (in *instance) start() error {
	p := in.p
	if p.memory > 0 && p.f.cgroups.enabled() {
		cg, err := p.f.cgroups.create(in.label(), p.memory)
		if err != nil {
			return err
		}
		in.cg = cg
	}
	sup, err := supervisor.New(supervisor.ServiceConfig{
		Name:            p.name,
		Command:         instanceCommand(p.command, in.cg),
		Dir:             p.dir,
		Env:             append(append([]string(nil), p.env...), "NUBO_INSTANCE="+strconv.Itoa(in.id)),
		Replicas:        1,
		Restart:         supervisor.RestartNever,
		StopGracePeriod: p.f.cfg.StopGracePeriod,
	},
		supervisor.WithLogger(p.log.With("instance", in.id)),
		supervisor.WithLineSink(supervisor.LineFunc(in.line)),
		supervisor.WithEventSink(supervisor.EventFunc(in.event)),
		supervisor.WithSampleInterval(p.f.cfg.App.Local.Supervisor.SampleInterval.Duration),
		supervisor.WithCgroups(p.f.cfg.Cgroups),
	)
	if err != nil {
		return fmt.Errorf("function %q: %w", p.name, err)
	}
	p.mu.Lock()
	in.sup = sup
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(in.ctx, p.f.cfg.StartTimeout)
	defer cancel()
	begin := time.Now()
	if err := sup.Start(ctx); err != nil {
		return err
	}
	st := sup.Status()
	if len(st.Replicas) != 1 {
		return fmt.Errorf("function %q: instance %d: the supervisor runs %d processes", p.name, in.id, len(st.Replicas))
	}
	in.pid, in.port, in.startedAt = st.Replicas[0].PID, st.Replicas[0].Port, begin
	in.url = &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port)), Path: "/"}
	if err := in.waitPort(ctx); err != nil {
		return err
	}
	in.readyAt = time.Now()
	in.coldStart = in.readyAt.Sub(begin)
	return nil
}

// waitPort polls the instance's port until it accepts a connection, the
// process exits or ctx ends. It polls every millisecond at first: a Go
// function listens within a few, and the poll is part of every cold start.
func (in *instance) waitPort(ctx context.Context) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port))
	var d net.Dialer
	t := time.NewTimer(0)
	defer t.Stop()
	begin := time.Now()
	for {
		select {
		case <-in.exited:
			return in.exitError("before its port accepted connections")
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("its port %d accepted no connection within %s (it must listen on $PORT)", in.port, in.p.f.cfg.StartTimeout)
			}
			return ctx.Err()
		case <-t.C:
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		wait := time.Millisecond
		if time.Since(begin) > 200*time.Millisecond {
			wait = 10 * time.Millisecond
		}
		t.Reset(wait)
	}
}

// exitError describes the instance's exit, with its last lines of output.
func (in *instance) exitError(when string) error {
	e := in.exit
	msg := fmt.Sprintf("exited with code %d %s", e.Code, when)
	if e.Signal != "" {
		msg = fmt.Sprintf("exited with code %d (%s) %s", e.Code, e.Signal, when)
	}
	if t := in.tail.String(); t != "" {
		msg += ": " + t
	}
	return errors.New(msg)
}

// started records the end of a start: the instance serves, or its waiters
// learn why it cannot.
func (p *pool) started(in *instance, err error) {
	var msg string
	p.mu.Lock()
	switch {
	case err != nil:
		p.removeLocked(in)
		if in.state == stateStopping {
			break // retired while starting: not a failure
		}
		in.state = stateExited
		detail := err.Error()
		msg = fmt.Sprintf("%s failed to start: %s", in.label(), detail)
		p.recordErrorLocked(msg)
		p.startFailures++
		p.m.startFailures.Inc()
		if p.countLocked(stateStarting)+p.countLocked(stateReady) == 0 {
			p.failWaitersLocked(&Error{Function: p.name, Instance: in.id, Kind: ErrStart, Detail: detail})
		}
		p.ensureMinLocked()
		p.scaleUpLocked()
	case in.state == stateStarting:
		in.state = stateReady
		p.startFailures = 0
		p.coldStarts.Add(1)
		p.m.coldStarts.Inc()
		p.m.coldStartSeconds.Observe(in.coldStart.Seconds())
		p.changedLocked()
		p.dispatchLocked()
		if in.inflight == 0 {
			in.idleSince = time.Now()
			p.armIdleLocked(in)
		}
		msg = fmt.Sprintf("%s ready: cold start %s (pid %d, port %d)", in.label(), in.coldStart.Round(100*time.Microsecond), in.pid, in.port)
	}
	p.mu.Unlock()
	if msg != "" {
		p.f.notify(p.name, msg)
	}
}

// teardown stops the process (gracefully, or at once for a stuck instance),
// waits until it is gone, and removes its cgroup.
func (in *instance) teardown() {
	p := in.p
	p.mu.Lock()
	sup, hard, stopCtx := in.sup, in.hard, in.stopCtx
	p.mu.Unlock()
	if sup != nil {
		if stopCtx == nil {
			stopCtx = context.Background()
		}
		if hard {
			c, cancel := context.WithCancel(stopCtx)
			cancel() // SIGKILL now
			_ = sup.Stop(c)
		}
		ctx, cancel := context.WithTimeout(stopCtx, p.f.cfg.StopGracePeriod+5*time.Second)
		if err := sup.Stop(ctx); err != nil {
			p.log.Warn("stop instance", "instance", in.id, "err", err)
		}
		cancel()
	}
	if in.cg != nil {
		if err := in.cg.remove(); err != nil {
			p.log.Warn("remove cgroup", "instance", in.id, "err", err)
		}
	}
}

// event receives the instance's supervisor events.
func (in *instance) event(ev supervisor.Event) {
	p := in.p
	ev.Service, ev.Replica, ev.ReplicaID = p.name, in.id-1, in.id
	switch ev.Kind {
	case supervisor.EventStarted:
		if p.f.cfg.Track != nil {
			p.f.cfg.Track(ev.PID, true)
		}
	case supervisor.EventExited:
		if p.f.cfg.Track != nil {
			p.f.cfg.Track(ev.PID, false)
		}
		// Out of the pool before anyone learns of the exit, so that no
		// invocation is sent to the dead process after.
		in.exit = supervisor.ExitStatus{Code: ev.ExitCode, Signal: ev.Signal, Time: ev.Time}
		// Read now: the cgroup goes with the teardown that the exit starts.
		in.oom = in.oomKilled(!in.stopping())
		p.exited(in)
		in.exitOnce.Do(func() { close(in.exited) })
	case supervisor.EventStartFailed:
	default:
		return // Ready, Stopped, Failed say nothing more about a function
	}
	if p.f.cfg.Events != nil && (ev.Kind != supervisor.EventExited || !in.stopping()) {
		p.f.cfg.Events.Event(ev)
	}
}

func (in *instance) stopping() bool {
	in.p.mu.Lock()
	defer in.p.mu.Unlock()
	return in.state == stateStopping
}

// exited takes an instance whose process exited on its own out of the pool
// at once, so that no invocation is sent to it.
func (p *pool) exited(in *instance) {
	var msg string
	p.mu.Lock()
	if in.state == stateReady || in.state == stateDraining {
		p.removeLocked(in)
		in.state = stateExited
		detail := in.exitError("").Error()
		if in.oom {
			detail = fmt.Sprintf("OOMKilled: over its memory limit of %s (exit code %d)", p.memoryText, in.exit.Code)
		}
		msg = fmt.Sprintf("%s %s", in.label(), strings.TrimSpace(detail))
		p.recordErrorLocked(msg)
		p.ensureMinLocked()
		p.scaleUpLocked()
	}
	p.mu.Unlock()
	if msg != "" {
		p.f.notify(p.name, msg)
	}
}

// oomKilled reports whether the kernel killed the instance for going over
// its memory limit. The cgroup's count can trail the process's death by a
// moment, so an unexpected SIGKILL is looked at a little longer.
func (in *instance) oomKilled(unexpected bool) bool {
	if in.cg == nil {
		return false
	}
	if in.cg.oomKilled() {
		return true
	}
	if !unexpected || in.exit.Signal != syscall.SIGKILL.String() {
		return false
	}
	for i := 0; i < 20; i++ {
		time.Sleep(10 * time.Millisecond)
		if in.cg.oomKilled() {
			return true
		}
	}
	return false
}

// line passes an output line on and keeps the last few for errors.
func (in *instance) line(_ string, _ int, stream string, line []byte) {
	in.tail.add(line)
	if l := in.p.f.cfg.Lines; l != nil {
		l.Line(in.p.name, in.id-1, stream, line)
	}
}

// tail keeps the last lines an instance wrote, to say why it died.
type tail struct {
	mu    sync.Mutex
	lines [tailLines]string
	n     int
}

const (
	tailLines   = 3
	tailLineMax = 300
)

func (t *tail) add(line []byte) {
	if len(line) > tailLineMax {
		line = line[:tailLineMax]
	}
	s := strings.TrimSpace(string(line))
	if s == "" {
		return
	}
	t.mu.Lock()
	t.lines[t.n%tailLines] = s
	t.n++
	t.mu.Unlock()
}

// String is the kept lines, oldest first, joined with " | ".
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for i := max(0, t.n-tailLines); i < t.n; i++ {
		out = append(out, t.lines[i%tailLines])
	}
	return strings.Join(out, " | ")
}

// instanceCommand is what sh runs for an instance. With a cgroup, the shell
// first moves itself into it, so that the function and everything it forks
// start there (no window in which a child escapes the limit), then runs the
// command: exec'd when it is a simple command, so that the function is the
// process nubo signals, as the supervisor does.
func instanceCommand(command string, cg *cgroup) string {
	if cg == nil {
		return command
	}
	prologue := "echo $$ > " + shellQuote(cg.procsFile()) + " || exit 125\n"
	if supervisor.SimpleCommand(command) {
		return prologue + "exec " + command
	}
	return prologue + command
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
