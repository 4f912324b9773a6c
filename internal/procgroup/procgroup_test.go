//go:build linux

package procgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGroupKill starts a shell in a cgroup that puts a sleeper in a
// session of its own and exits: killing the cgroup kills the sleeper,
// and Close removes the engine's directory.
func TestGroupKill(t *testing.T) {
	tr := Open(nil)
	if !tr.Enabled() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no writable cgroup hierarchy: %s", tr.Reason())
		}
		t.Skipf("no writable cgroup hierarchy: %s", tr.Reason())
	}
	defer tr.Close()
	g, err := tr.New("api/0")
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 300 & echo $! > "+pidFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g.Prepare(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Started(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil || pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("the sleeper %d does not run", pid)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the sleeper %d outlived its cgroup", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(g.Dir()); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left: %v", g.Dir(), err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tr.Dir()); !os.IsNotExist(err) {
		t.Errorf("engine cgroup %s left: %v", tr.Dir(), err)
	}
}

// alive reports whether pid runs (a zombie, reparented to an init that
// has not reaped it yet, runs nothing).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}
