package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// The test binary re-runs itself as a stand-in for nubo: a process that
// supervises a child and is then killed with SIGKILL.
const (
	helperEnv      = "NUBO_SUPERVISOR_TEST_HELPER"
	helperChildEnv = "NUBO_SUPERVISOR_TEST_CHILD"
)

func runPdeathsigHelper() {
	dir := os.Getenv(helperEnv)
	childBin = os.Getenv(helperChildEnv)
	s, err := New(ServiceConfig{Name: "orphan", Command: child("-pidfile", filepath.Join(dir, "child.pid")), Replicas: 1})
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A goroutine that exits while locked to its thread ends that thread.
	// Had the child been started from one of these threads, Pdeathsig
	// would kill it now.
	for range 64 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		os.Exit(1)
	}
	select {}
}

func TestChildDiesWithNubo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+dir, helperChildEnv+"="+childBin)
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		_ = helper.Wait()
	})

	pid := readPid(t, filepath.Join(dir, "child.pid"))
	waitFor(t, func() error {
		_, err := os.Stat(filepath.Join(dir, "ready"))
		return err
	})
	if !alive(pid) {
		t.Fatal("child died while the supervisor's threads came and went")
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitDead(t, pid)
}
