package supervisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStartReadyStop(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Name:     "users",
		Command:  child("-serve"),
		Env:      []string{"EXTRA=hello"},
		Replicas: 2,
		Port:     8080,
	}, rec)
	waitReady(t, s)

	st := s.Status()
	if st.Name != "users" || st.Desired != 2 || st.Ready != 2 || len(st.Replicas) != 2 {
		t.Fatalf("status = %+v", st)
	}
	ports := map[int]bool{}
	for i, r := range st.Replicas {
		if r.Index != i || r.State != StateReady || !r.Ready || r.PID == 0 || r.StartedAt.IsZero() {
			t.Errorf("replica %d: %+v", i, r)
		}
		if ports[r.Port] {
			t.Errorf("port %d used twice", r.Port)
		}
		ports[r.Port] = true
		_, body, err := httpGet(r.Port, "/env")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("PORT=%d NUBO_REPLICA=%d NUBO_SERVICE=users EXTRA=hello", r.Port, i)
		if body != want {
			t.Errorf("replica %d env = %q, want %q", i, body, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Replicas {
		if alive(r.PID) {
			t.Errorf("replica %d (pid %d) alive after Stop", r.Index, r.PID)
		}
	}
	for _, r := range s.Status().Replicas {
		if r.State != StateStopped || r.Ready || r.PID != 0 {
			t.Errorf("after Stop: %+v", r)
		}
	}
	if n := len(rec.eventsOf(EventStopped)); n != 2 {
		t.Errorf("%d Stopped events, want 2", n)
	}
	// Idempotent.
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v, want ErrStopped", err)
	}
}

func TestLifecycleMisuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var nilSup *Supervisor
	if err := nilSup.Stop(ctx); err != nil {
		t.Errorf("nil Stop: %v", err)
	}

	s := newSupervisor(t, ServiceConfig{Command: child(), Replicas: 1}, newRecorder(t))
	if err := s.Scale(ctx, 2); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Scale before Start = %v", err)
	}
	if st := s.Status(); st.Desired != 1 || len(st.Replicas) != 0 {
		t.Errorf("status before Start = %+v", st)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := s.Scale(ctx, -1); err == nil {
		t.Error("Scale(-1) succeeded")
	}

	never := newSupervisor(t, ServiceConfig{Command: child()}, newRecorder(t))
	if err := never.Stop(ctx); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
}

func TestStartFailure(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := newSupervisor(t, ServiceConfig{
		Name:     "web",
		Command:  child(),
		Dir:      filepath.Join(t.TempDir(), "missing"),
		Replicas: 2,
	}, rec)
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `service "web": replica 0: start:`) {
		t.Fatalf("Start = %v", err)
	}
	if err := s.WaitReady(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitReady after failed Start = %v, want ErrStopped", err)
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:  child("-say", "booting", "-exit", "1"),
		Replicas: 1,
		Port:     8080, // never listened on: never ready
		Backoff:  Backoff{Base: 20 * time.Millisecond, Max: 160 * time.Millisecond},
	}, rec)

	want := []time.Duration{20, 40, 80, 160, 160}
	for i := range want {
		want[i] *= time.Millisecond
	}
	waitFor(t, func() error {
		if n := len(rec.eventsOf(EventBackOff)); n < len(want) {
			return fmt.Errorf("%d BackOff events", n)
		}
		return nil
	})
	var got []time.Duration
	for _, e := range rec.eventsOf(EventBackOff)[:len(want)] {
		got = append(got, e.Delay)
	}
	if !slices.Equal(got, want) {
		t.Errorf("backoff delays = %v, want %v", got, want)
	}
	r, err := one(s.Status())
	if err != nil {
		t.Fatal(err)
	}
	if r.Restarts < len(want)-1 || r.LastExit == nil || r.LastExit.Code != 1 {
		t.Errorf("status = %+v", r)
	}
	if e := rec.eventsOf(EventExited)[0]; e.ExitCode != 1 || e.String() != "exited with code 1" {
		t.Errorf("exit event = %+v (%s)", e, e)
	}
	// Every run's output was delivered, and before its exit was reported.
	if n := len(rec.linesOf(Stdout)); n < len(want) {
		t.Errorf("%d output lines, want at least %d", n, len(want))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = s.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last exit code 1") {
		t.Errorf("WaitReady = %v", err)
	}
}

func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	b := crashBackoff{cfg: Backoff{Base: time.Second, Max: 5 * time.Second, Reset: time.Minute}}
	var got []time.Duration
	for _, ran := range []time.Duration{0, 0, 0, 0, 0, 2 * time.Minute, 0, 59 * time.Second} {
		got = append(got, b.delay(ran))
	}
	want := []time.Duration{1, 2, 4, 5, 5, 1, 2, 4}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy    RestartPolicy
		exit      string
		restarts  bool
		final     State
		finalCode int
	}{
		{RestartAlways, "0", true, "", 0},
		{RestartAlways, "3", true, "", 0},
		{RestartOnFailure, "0", false, StateExited, 0},
		{RestartOnFailure, "3", true, "", 0},
		{RestartNever, "0", false, StateExited, 0},
		{RestartNever, "3", false, StateFailed, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/exit%s", tt.policy, tt.exit), func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t)
			s := startSupervisor(t, ServiceConfig{
				Command:  child("-exit", tt.exit),
				Replicas: 1,
				Restart:  tt.policy,
				Backoff:  Backoff{Base: 10 * time.Millisecond, Max: 10 * time.Millisecond},
			}, rec)
			if tt.restarts {
				waitStatus(t, s, func(st ServiceStatus) error {
					if r, _ := one(st); r.Restarts < 2 {
						return fmt.Errorf("restarts = %d", r.Restarts)
					}
					return nil
				})
				return
			}
			st := waitStatus(t, s, func(st ServiceStatus) error {
				if r, _ := one(st); r.State != tt.final {
					return fmt.Errorf("state = %s", r.State)
				}
				return nil
			})
			r, _ := one(st)
			if r.Restarts != 0 || r.LastExit == nil || r.LastExit.Code != tt.finalCode {
				t.Errorf("status = %+v", r)
			}
			if len(rec.eventsOf(EventFailed)) != 1 || len(rec.eventsOf(EventBackOff)) != 0 {
				t.Errorf("events = %v", rec.allEvents())
			}
			err := s.WaitReady(context.Background())
			if err == nil || !strings.Contains(err.Error(), string(tt.final)) {
				t.Errorf("WaitReady = %v, want an error naming %s", err, tt.final)
			}
		})
	}
}

func TestStopGracePeriod(t *testing.T) {
	t.Parallel()
	t.Run("SIGTERM handled", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder(t)
		s := startSupervisor(t, ServiceConfig{
			Command:  child("-term-exit", "0", "-say", "armed"),
			Replicas: 1,
		}, rec)
		// The child says so once its handler is installed.
		waitFor(t, func() error {
			if len(rec.linesOf(Stdout)) == 0 {
				return errors.New("child not armed yet")
			}
			return nil
		})
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		r, _ := one(s.Status())
		if r.LastExit == nil || r.LastExit.Code != 0 || r.LastExit.Signal != "" {
			t.Errorf("last exit = %+v, want code 0", r.LastExit)
		}
		// Stop returns after the output is delivered.
		if got := rec.linesOf(Stdout); !slices.Equal(got, []string{"armed", "got SIGTERM"}) {
			t.Errorf("output = %q", got)
		}
	})
	t.Run("SIGTERM ignored", func(t *testing.T) {
		t.Parallel()
		const grace = 300 * time.Millisecond
		s := startSupervisor(t, ServiceConfig{
			Command:         child("-ignore-term"),
			Replicas:        1,
			StopGracePeriod: grace,
		}, newRecorder(t))
		pid := s.Status().Replicas[0].PID
		waitFor(t, func() error { return sigIgnored(pid, 15) })
		start := time.Now()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A lower bound is a correctness check: SIGKILL must not come early.
		if d := time.Since(start); d < grace {
			t.Errorf("Stop took %v, less than the grace period", d)
		}
		r, _ := one(s.Status())
		if r.LastExit == nil || r.LastExit.Code != 137 || r.LastExit.Signal != "killed" {
			t.Errorf("last exit = %+v, want SIGKILL", r.LastExit)
		}
	})
	t.Run("context deadline before grace", func(t *testing.T) {
		t.Parallel()
		s := startSupervisor(t, ServiceConfig{
			Command:         child("-ignore-term"),
			Replicas:        1,
			StopGracePeriod: time.Hour,
		}, newRecorder(t))
		pid := s.Status().Replicas[0].PID
		waitFor(t, func() error { return sigIgnored(pid, 15) })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := s.Stop(ctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop = %v", err)
		}
		waitDead(t, pid)
	})
}

// sigIgnored reads /proc/<pid>/status to see whether the child ignores
// signal sig yet.
func sigIgnored(pid, sig int) error {
	b, err := readProcStatus(pid)
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(b, "\n") {
		hex, ok := strings.CutPrefix(line, "SigIgn:")
		if !ok {
			continue
		}
		var mask uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(hex), "%x", &mask); err != nil {
			return err
		}
		if mask&(1<<(sig-1)) == 0 {
			return fmt.Errorf("pid %d: signal %d not ignored yet", pid, sig)
		}
		return nil
	}
	return fmt.Errorf("pid %d: no SigIgn", pid)
}

func TestGrandchildrenDieWithReplica(t *testing.T) {
	t.Parallel()
	t.Run("on stop", func(t *testing.T) {
		t.Parallel()
		pidFile := filepath.Join(t.TempDir(), "gc")
		s := startSupervisor(t, ServiceConfig{Command: child("-grandchild", pidFile), Replicas: 1}, newRecorder(t))
		gc := readPid(t, pidFile)
		if !alive(gc) {
			t.Fatal("grandchild not running")
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitDead(t, gc)
	})
	t.Run("on main process exit", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "gc")
		s := startSupervisor(t, ServiceConfig{
			// The child exits once its grandchild is reported.
			Command:  child("-grandchild", pidFile, "-exit", "1", "-after", "100ms"),
			Replicas: 1,
			Restart:  RestartNever,
		}, newRecorder(t))
		gc := readPid(t, pidFile)
		waitStatus(t, s, func(st ServiceStatus) error {
			if r, _ := one(st); r.State != StateFailed {
				return fmt.Errorf("state %s", r.State)
			}
			return nil
		})
		waitDead(t, gc)
	})
}

func TestOutputLines(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	const long = 2*MaxLineLength + 1000
	startSupervisor(t, ServiceConfig{
		Command:  child("-lines", "100", "-stderr-lines", "10", "-long-line", fmt.Sprint(long)),
		Replicas: 1,
	}, rec)
	waitFor(t, func() error {
		if n := len(rec.linesOf(Stdout)); n < 103 {
			return fmt.Errorf("%d stdout lines", n)
		}
		if n := len(rec.linesOf(Stderr)); n < 10 {
			return fmt.Errorf("%d stderr lines", n)
		}
		return nil
	})
	out := rec.linesOf(Stdout)
	for i := range 100 {
		if want := fmt.Sprintf("line %d", i); out[i] != want {
			t.Fatalf("line %d = %q, want %q", i, out[i], want)
		}
	}
	var sizes []int
	for _, l := range out[100:] {
		sizes = append(sizes, len(l))
	}
	if want := []int{MaxLineLength, MaxLineLength, 1000}; !slices.Equal(sizes, want) {
		t.Errorf("long line pieces = %v, want %v", sizes, want)
	}
	if errs := rec.linesOf(Stderr); errs[0] != "err 0" || errs[9] != "err 9" {
		t.Errorf("stderr = %q", errs)
	}
}

func TestPumpLines(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("y", MaxLineLength)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain", "a\nb\n", []string{"a", "b"}},
		{"crlf and no final newline", "a\r\nb", []string{"a", "b"}},
		{"empty lines", "\n\nx\n", []string{"", "", "x"}},
		{"exactly max", big + "\nz\n", []string{big, "z"}},
		{"max plus one", big + "q\n", []string{big, "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			pumpLines(strings.NewReader(tt.in), func(l []byte) { got = append(got, string(l)) })
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d lines %.40q, want %d %.40q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	ok := ServiceConfig{Name: "users", Command: "true"}
	tests := []struct {
		name string
		edit func(*ServiceConfig)
		want string
	}{
		{"no name", func(c *ServiceConfig) { c.Name = "" }, "name is empty"},
		{"no command", func(c *ServiceConfig) { c.Command = " " }, `service "users": command is empty`},
		{"negative replicas", func(c *ServiceConfig) { c.Replicas = -1 }, "replicas -1 is negative"},
		{"bad port", func(c *ServiceConfig) { c.Port = 70000 }, "port 70000 is out of range"},
		{"bad policy", func(c *ServiceConfig) { c.Restart = "Sometimes" }, `restart policy "Sometimes"`},
		{"bad env", func(c *ServiceConfig) { c.Env = []string{"NOEQUALS"} }, `env entry "NOEQUALS"`},
		{"backoff", func(c *ServiceConfig) { c.Backoff = Backoff{Base: time.Minute, Max: time.Second} }, "backoff max 1s is less than base 1m0s"},
		{"two handlers", func(c *ServiceConfig) {
			c.Liveness = &Probe{HTTP: &HTTPProbe{}, TCP: &TCPProbe{}}
		}, "liveness probe: exactly one of http, tcp and exec must be set, found 2"},
		{"no handler", func(c *ServiceConfig) { c.Readiness = &Probe{} }, "readiness probe: exactly one"},
		{"liveness success threshold", func(c *ServiceConfig) {
			c.Liveness = &Probe{TCP: &TCPProbe{}, SuccessThreshold: 2}
		}, "success threshold must be 1 for a liveness probe"},
		{"http path", func(c *ServiceConfig) { c.Startup = &Probe{HTTP: &HTTPProbe{Path: "health"}} }, `startup probe: http path "health"`},
		{"exec empty", func(c *ServiceConfig) { c.Startup = &Probe{Exec: &ExecProbe{}} }, "exec command is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}

	s, err := New(ServiceConfig{Name: "users", Command: "true", Readiness: &Probe{HTTP: &HTTPProbe{Scheme: "HTTPS"}, SuccessThreshold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config()
	if c.Restart != RestartAlways || c.StopGracePeriod != DefaultStopGracePeriod || c.Backoff.Base != DefaultBackoffBase ||
		c.Backoff.Max != DefaultBackoffMax || c.Backoff.Reset != DefaultBackoffReset {
		t.Errorf("defaults = %+v", c)
	}
	p := c.Readiness
	if p.Period != DefaultProbePeriod || p.Timeout != DefaultProbeTimeout || p.FailureThreshold != 3 ||
		p.SuccessThreshold != 2 || p.HTTP.Path != "/" || p.HTTP.Scheme != "https" {
		t.Errorf("probe defaults = %+v %+v", p, p.HTTP)
	}
}
