//go:build linux

package procgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOrphansAdoptAndKill: a shell (a process group of its own, as a
// replica) puts a sleeper in a session of its own and exits; the sleeper
// is reparented to this process, a child subreaper, Scan reports its
// process group and Kill kills it. A child this process started itself,
// in its own process group, is not touched.
//
// Not parallel: the test process becomes the subreaper.
func TestOrphansAdoptAndKill(t *testing.T) {
	o, err := Adopt()
	if err != nil {
		t.Fatal(err)
	}
	own := exec.Command("sleep", "300")
	own.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = own.Process.Kill(); _ = own.Wait() }()

	pidFile := filepath.Join(t.TempDir(), "pid")
	sh := exec.Command("/bin/sh", "-c", "setsid sleep 300 & echo $! > "+pidFile)
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sh.Run(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if time.Now().After(deadline) {
			t.Fatal("no sleeper pid")
		}
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	// setsid(1) forks when it is a group leader: the sleeper may be the
	// child of $!; either way it is in a session of its own.
	var added []int
	for deadline := time.Now().Add(10 * time.Second); len(added) == 0; time.Sleep(10 * time.Millisecond) {
		added, _ = o.Scan(nil)
		if time.Now().After(deadline) {
			t.Fatal("Scan found no adopted process")
		}
	}
	for _, g := range added {
		if g == own.Process.Pid {
			t.Errorf("Scan took this process's own child %d for adopted", g)
		}
	}
	if err := o.Kill(nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range o.children() {
		if slices.Contains(added, c.pgrp) && !c.zombie {
			t.Errorf("adopted process %d left after Kill", c.pid)
		}
	}
	if err := syscall.Kill(own.Process.Pid, 0); err != nil {
		t.Errorf("Kill killed this process's own child: %v", err)
	}
}
