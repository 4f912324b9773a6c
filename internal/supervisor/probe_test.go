package supervisor

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fast returns a probe with a short period for tests. The timeout is
// generous: a loaded machine must not fail probes by slowness.
func fast(p Probe) *Probe {
	p.Period = 50 * time.Millisecond
	p.Timeout = 2 * time.Second
	return &p
}

func TestLivenessFailureRestarts(t *testing.T) {
	t.Parallel()
	flag := filepath.Join(t.TempDir(), "unhealthy")
	rec := newRecorder(t)
	liveness := fast(Probe{HTTP: &HTTPProbe{Path: "/health"}, FailureThreshold: 2})
	s := startSupervisor(t, ServiceConfig{
		Command:  child("-serve", "-unhealthy-file", flag),
		Replicas: 1,
		Port:     8080,
		Liveness: liveness,
		Backoff:  fastBackoff(),
	}, rec)
	waitReady(t, s)
	st := waitStatus(t, s, func(st ServiceStatus) error {
		r, _ := one(st)
		if p := r.Probes[ProbeLiveness]; !p.OK || !strings.Contains(p.Message, "/health: status 200") {
			return fmt.Errorf("liveness result = %+v", p)
		}
		return nil
	})
	// On a loaded machine the child may have been restarted already, its
	// listener late for the first probes (connection refused): what
	// follows counts from here.
	first, _ := one(st)

	touch(t, flag)
	kill := rec.waitEvent(t, EventKilling, func(e Event) bool { return strings.Contains(e.Message, "status 500") })
	if !strings.Contains(kill.Message, "liveness probe failed 2 times") {
		t.Errorf("killing message = %q", kill.Message)
	}
	if n := len(rec.eventsOf(EventUnhealthy)); n < 2 {
		t.Errorf("%d Unhealthy events, want 2", n)
	}
	remove(t, flag)
	st = waitStatus(t, s, func(st ServiceStatus) error {
		r, _ := one(st)
		if r.Restarts <= first.Restarts || !r.Ready {
			return fmt.Errorf("restarts %d (%d before), ready %v", r.Restarts, first.Restarts, r.Ready)
		}
		return nil
	})
	r, _ := one(st)
	if r.PID == first.PID {
		t.Error("pid unchanged after a liveness restart")
	}
	// Killed with SIGTERM (the child does not handle it).
	if r.LastExit == nil || r.LastExit.Code != 143 {
		t.Errorf("last exit = %+v, want 143", r.LastExit)
	}
}

func TestLivenessKillUnderOnFailure(t *testing.T) {
	t.Parallel()
	// A probe-killed process that exits 0 on SIGTERM is still restarted
	// under OnFailure, as the kubelet does.
	flag := filepath.Join(t.TempDir(), "unhealthy")
	touch(t, flag)
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:  child("-serve", "-unhealthy-file", flag, "-term-exit", "0"),
		Replicas: 1,
		Restart:  RestartOnFailure,
		Liveness: fast(Probe{HTTP: &HTTPProbe{Path: "/health"}, FailureThreshold: 1}),
		Backoff:  fastBackoff(),
	}, rec)
	waitStatus(t, s, func(st ServiceStatus) error {
		if r, _ := one(st); r.Restarts < 1 {
			return fmt.Errorf("restarts %d", r.Restarts)
		}
		return nil
	})
}

func TestReadinessFlips(t *testing.T) {
	t.Parallel()
	flag := filepath.Join(t.TempDir(), "notready")
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:   child("-serve", "-notready-file", flag),
		Replicas:  1,
		Readiness: fast(Probe{HTTP: &HTTPProbe{Path: "/ready"}, FailureThreshold: 1, SuccessThreshold: 2}),
	}, rec)
	waitReady(t, s)

	touch(t, flag)
	waitStatus(t, s, func(st ServiceStatus) error {
		if r, _ := one(st); r.Ready || r.State != StateRunning || st.Ready != 0 {
			return fmt.Errorf("ready %v, state %s", r.Ready, r.State)
		}
		return nil
	})
	e := rec.waitEvent(t, EventNotReady, nil)
	if !strings.Contains(e.Message, "status 503") {
		t.Errorf("not ready message = %q", e.Message)
	}
	remove(t, flag)
	waitReady(t, s)
	r, _ := one(s.Status())
	if r.State != StateReady || r.Restarts != 0 {
		t.Errorf("status = %+v", r)
	}
	if n := len(rec.eventsOf(EventReady)); n != 2 {
		t.Errorf("%d Ready events, want 2", n)
	}
}

func TestStartupProbeGates(t *testing.T) {
	t.Parallel()
	flag := filepath.Join(t.TempDir(), "unhealthy")
	touch(t, flag)
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:  child("-serve", "-unhealthy-file", flag),
		Replicas: 1,
		Startup:  fast(Probe{HTTP: &HTTPProbe{Path: "/health"}, FailureThreshold: 1_000_000}),
		// Would kill the replica at its first failure if it ran.
		Liveness:  fast(Probe{HTTP: &HTTPProbe{Path: "/health"}, FailureThreshold: 1}),
		Readiness: fast(Probe{HTTP: &HTTPProbe{Path: "/ready"}}),
	}, rec)

	st := waitStatus(t, s, func(st ServiceStatus) error {
		r, _ := one(st)
		if p := r.Probes[ProbeStartup]; p.ConsecutiveFailures < 3 {
			return fmt.Errorf("startup failures %d", p.ConsecutiveFailures)
		}
		return nil
	})
	r, _ := one(st)
	if r.State != StateStarting || r.Ready || r.Restarts != 0 {
		t.Errorf("while starting: %+v", r)
	}
	if _, ran := r.Probes[ProbeLiveness]; ran {
		t.Error("liveness ran before startup succeeded")
	}
	if _, ran := r.Probes[ProbeReadiness]; ran {
		t.Error("readiness ran before startup succeeded")
	}

	remove(t, flag)
	waitReady(t, s)
	r, _ = one(s.Status())
	if !r.Probes[ProbeStartup].OK || r.Restarts != 0 {
		t.Errorf("after startup: %+v", r)
	}
	waitStatus(t, s, func(st ServiceStatus) error {
		if r, _ := one(st); !r.Probes[ProbeLiveness].OK {
			return fmt.Errorf("liveness %+v", r.Probes[ProbeLiveness])
		}
		return nil
	})
}

func TestStartupProbeFailureKills(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:  child("-serve", "-block-file", "/"), // never listens
		Replicas: 1,
		Startup:  fast(Probe{TCP: &TCPProbe{}, FailureThreshold: 2}),
		Backoff:  fastBackoff(),
	}, rec)
	e := rec.waitEvent(t, EventKilling, nil)
	if !strings.Contains(e.Message, "startup probe failed 2 times") || !strings.Contains(e.Message, "connection refused") {
		t.Errorf("killing message = %q", e.Message)
	}
	waitStatus(t, s, func(st ServiceStatus) error {
		if r, _ := one(st); r.Restarts < 1 {
			return fmt.Errorf("restarts %d", r.Restarts)
		}
		return nil
	})
}

func TestTCPAndExecProbes(t *testing.T) {
	t.Parallel()
	flag := filepath.Join(t.TempDir(), "dead")
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:   child("-serve", "-listen-delay", "200ms"),
		Replicas:  1,
		Readiness: fast(Probe{TCP: &TCPProbe{}}),
		// $PORT must be in the probe's environment.
		Liveness: fast(Probe{Exec: &ExecProbe{Command: []string{
			"sh", "-c", `test -n "$PORT" && test ! -e "$0"`, flag,
		}}, FailureThreshold: 2}),
		Backoff: fastBackoff(),
	}, rec)
	waitReady(t, s)
	r, _ := one(s.Status())
	if p := r.Probes[ProbeReadiness]; !p.OK || p.Message != fmt.Sprintf("connect 127.0.0.1:%d", r.Port) {
		t.Errorf("readiness = %+v", p)
	}
	if p := r.Probes[ProbeLiveness]; !p.OK {
		t.Errorf("liveness = %+v", p)
	}

	touch(t, flag)
	e := rec.waitEvent(t, EventKilling, nil)
	if !strings.Contains(e.Message, "exit status 1") {
		t.Errorf("killing message = %q", e.Message)
	}
}

func TestExecProbeTimeout(t *testing.T) {
	t.Parallel()
	s := startSupervisor(t, ServiceConfig{
		Command:  child(),
		Replicas: 1,
		Readiness: &Probe{
			Exec:    &ExecProbe{Command: []string{"sh", "-c", "echo slow; sleep 30"}},
			Period:  time.Hour,
			Timeout: 100 * time.Millisecond,
		},
	}, newRecorder(t))
	st := waitStatus(t, s, func(st ServiceStatus) error {
		if r, _ := one(st); r.Probes[ProbeReadiness].Time.IsZero() {
			return fmt.Errorf("no readiness result")
		}
		return nil
	})
	r, _ := one(st)
	p := r.Probes[ProbeReadiness]
	if p.OK || !strings.Contains(p.Message, "timed out after 100ms") {
		t.Errorf("readiness = %+v", p)
	}
}

func TestNoReadinessProbe(t *testing.T) {
	t.Parallel()
	t.Run("port declared: ready when it accepts connections", func(t *testing.T) {
		t.Parallel()
		s := startSupervisor(t, ServiceConfig{
			Command:  child("-serve", "-listen-delay", "300ms"),
			Replicas: 1,
			Port:     8080,
		}, newRecorder(t))
		waitReady(t, s)
		r, _ := one(s.Status())
		if code, _, err := httpGet(r.Port, "/health"); err != nil || code != 200 {
			t.Errorf("GET /health after ready = %d, %v", code, err)
		}
		if p := r.Probes[ProbeReadiness]; !strings.Contains(p.Message, "no readiness probe") {
			t.Errorf("readiness = %+v", p)
		}
	})
	t.Run("no port: ready when started", func(t *testing.T) {
		t.Parallel()
		s := startSupervisor(t, ServiceConfig{Command: child(), Replicas: 1}, newRecorder(t))
		waitReady(t, s)
	})
}
