package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/procgroup"
)

// requireCgroups skips where the engine cannot make cgroups (and fails
// in CI, where the runner is root with a writable hierarchy).
func requireCgroups(t *testing.T) {
	t.Helper()
	tr := procgroup.Open(nil)
	defer tr.Close()
	if !tr.Enabled() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no writable cgroup hierarchy: %s", tr.Reason())
		}
		t.Skipf("no writable cgroup hierarchy: %s", tr.Reason())
	}
}

// killLater kills pid at the end of the test, so that a failing test
// leaves nothing running.
func killLater(t *testing.T, path string) {
	t.Cleanup(func() {
		if pid := readPID(t, path); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestEscapedProcessDiesWithDown runs a replica that starts a process in
// a session of its own through a double fork (no process group, no parent
// in the replica): stopping the engine, as nubo down does, kills it too,
// since it is still in the replica's cgroup.
func TestEscapedProcessDiesWithDown(t *testing.T) {
	requireCgroups(t)
	dir := t.TempDir()
	escaped := filepath.Join(dir, "escaped.pid")
	killLater(t, escaped)
	app := writeSpec(t, dir, fmt.Sprintf("name: escape\nservices:\n  api: {run: CHILD -serve -escape %s, port: 8080}\n", escaped))
	e := startEngine(t, app)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if readPID(t, escaped) == 0 {
			return fmt.Errorf("the escaped process has not started yet")
		}
		return nil
	})
	pid := readPID(t, escaped)
	if err := processGone(pid); err == nil {
		t.Fatalf("escaped process %d is not running", pid)
	}
	stopAndWantGone(t, e, pid)
}

// TestEscapedProcessDiesWithKill9 runs nubo up as a real child process
// with such a replica and kills it with SIGKILL: the reaper kills what is
// in the engine's cgroups, the escaped process included, and removes
// them.
func TestEscapedProcessDiesWithKill9(t *testing.T) {
	requireCgroups(t)
	dir := t.TempDir()
	escaped := filepath.Join(dir, "escaped.pid")
	killLater(t, escaped)
	writeSpec(t, dir, fmt.Sprintf(`
name: escape9
services:
  api: {run: CHILD -serve -escape %s, port: 8080}
local: {console: "127.0.0.1:0"}
`, escaped))
	cmd, out := upProcess(t, dir)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if readPID(t, escaped) == 0 || !strings.Contains(out.String(), "api ready") {
			return fmt.Errorf("not started yet:\n%s", out)
		}
		return nil
	})
	pid := readPID(t, escaped)
	cgroupOf := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		return string(b)
	}
	if !strings.Contains(cgroupOf(), "nubo-procs-") {
		t.Errorf("the escaped process is in no cgroup of the engine:\n%s", cgroupOf())
	}
	kill9(t, cmd)
	nubotest.WaitFor(t, 30*time.Second, func() error { return processGone(pid) })
}

// escapingFunction is a spec whose function starts, beside the SDK
// function, a process that leaves the instance's process group (setsid and
// a double fork) and writes its pid to escaped.
func escapingFunction(name, escaped string) string {
	return fmt.Sprintf(`
name: %s
functions:
  fn:
    run: "CHILD -escape %s & exec FUNCTION"
    scaling: {min: 1}
local: {console: "127.0.0.1:0"}
`, name, escaped)
}

// TestEscapedFunctionProcessDiesWithStop: a function instance's escaped
// process is in the instance's cgroup, which dies with the instance when
// the engine stops.
func TestEscapedFunctionProcessDiesWithStop(t *testing.T) {
	requireCgroups(t)
	dir := t.TempDir()
	escaped := filepath.Join(dir, "escaped.pid")
	killLater(t, escaped)
	app := writeSpec(t, dir, escapingFunction("fnescape", escaped))
	e := startEngine(t, app)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if readPID(t, escaped) == 0 {
			return fmt.Errorf("the escaped process has not started yet")
		}
		return nil
	})
	pid := readPID(t, escaped)
	if err := processGone(pid); err == nil {
		t.Fatalf("escaped process %d is not running", pid)
	}
	if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); !strings.Contains(string(cg), "nubo-procs-") {
		t.Errorf("the escaped process is in no cgroup of the engine:\n%s", cg)
	}
	stopAndWantGone(t, e, pid)
}

// TestEscapedFunctionProcessDiesWithKill9: after kill -9 of nubo up, the
// reaper kills the function instance's escaped process with the engine's
// cgroups.
func TestEscapedFunctionProcessDiesWithKill9(t *testing.T) {
	requireCgroups(t)
	dir := t.TempDir()
	escaped := filepath.Join(dir, "escaped.pid")
	killLater(t, escaped)
	writeSpec(t, dir, escapingFunction("fnescape9", escaped))
	cmd, out := upProcess(t, dir)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if readPID(t, escaped) == 0 || !strings.Contains(out.String(), "functions ready") {
			return fmt.Errorf("not started yet:\n%s", out)
		}
		return nil
	})
	pid := readPID(t, escaped)
	kill9(t, cmd)
	nubotest.WaitFor(t, 30*time.Second, func() error { return processGone(pid) })
}

// parentOf is the parent pid of pid (/proc/PID/stat), or 0.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestEscapedProcessDiesWithStopWithoutCgroups runs the escaping replica
// with cgroups turned off, as on a machine where none is writable: nubo
// is a child subreaper, so the escaped process is reparented to it (not
// to init) and killed once the replicas have stopped.
//
// Not parallel: the test process itself becomes the subreaper, and adopts
// what any test's replicas leave.
func TestEscapedProcessDiesWithStopWithoutCgroups(t *testing.T) {
	dir := t.TempDir()
	escaped := filepath.Join(dir, "escaped.pid")
	killLater(t, escaped)
	app := writeSpec(t, dir, fmt.Sprintf("name: escape-nocg\nservices:\n  api: {run: CHILD -serve -escape %s, port: 8080}\n", escaped))
	e := startEngine(t, app, func(o *Options) { o.NoCgroups = true })
	var pid int
	nubotest.WaitFor(t, 60*time.Second, func() error {
		pid = readPID(t, escaped)
		if pid == 0 {
			return fmt.Errorf("the escaped process has not started yet")
		}
		if p := parentOf(pid); p != os.Getpid() {
			return fmt.Errorf("the escaped process %d has parent %d, want nubo (%d)", pid, p, os.Getpid())
		}
		return nil
	})
	if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); strings.Contains(string(cg), "nubo-procs-") {
		t.Fatalf("cgroups were not turned off:\n%s", cg)
	}
	stopAndWantGone(t, e, pid)
}

// TestEscapedProcessDiesWithKill9WithoutCgroups: without cgroups, nubo
// up tells its reaper the process group of what it adopted; kill -9 of
// nubo up then kills it too.
func TestEscapedProcessDiesWithKill9WithoutCgroups(t *testing.T) {
	dir := t.TempDir()
	escaped := filepath.Join(dir, "escaped.pid")
	killLater(t, escaped)
	writeSpec(t, dir, fmt.Sprintf(`
name: escape9-nocg
services:
  api: {run: CHILD -serve -escape %s, port: 8080}
local: {console: "127.0.0.1:0"}
`, escaped))
	cmd, out := upProcess(t, dir, "NUBO_NO_CGROUPS=1")
	nubotest.WaitFor(t, 60*time.Second, func() error {
		pid := readPID(t, escaped)
		if pid == 0 || !strings.Contains(out.String(), fmt.Sprintf("adopted process group %d", pid)) {
			return fmt.Errorf("not adopted yet:\n%s", out)
		}
		return nil
	})
	pid := readPID(t, escaped)
	if p := parentOf(pid); p != cmd.Process.Pid {
		t.Errorf("the escaped process %d has parent %d, want nubo up (%d)", pid, p, cmd.Process.Pid)
	}
	kill9(t, cmd)
	nubotest.WaitFor(t, 30*time.Second, func() error { return processGone(pid) })
}

// stopAndWantGone stops e and checks that the escaped process pid went
// with it.
func stopAndWantGone(t *testing.T, e *testEngine, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := processGone(pid); err != nil {
		t.Errorf("after the engine stopped: %v", err)
	}
}
