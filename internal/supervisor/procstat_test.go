//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestResourceUsage(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "gc")
	s := startSupervisor(t, ServiceConfig{
		// A quarter of a core, 64 MiB touched, and a grandchild.
		Command:  child("-burn", "0.25", "-alloc", "64", "-grandchild", pidFile),
		Replicas: 1,
	}, newRecorder(t), WithSampleInterval(200*time.Millisecond))
	readPid(t, pidFile)
	st := waitStatus(t, s, func(st ServiceStatus) error {
		r, _ := one(st)
		u := r.Usage
		switch {
		case u == nil:
			return fmt.Errorf("no usage yet")
		case u.CPU < 0.02: // far below the quarter core, for a loaded machine
			return fmt.Errorf("cpu %.3f cores", u.CPU)
		case u.RSS < 60<<20:
			return fmt.Errorf("rss %d bytes", u.RSS)
		case u.Processes < 2:
			return fmt.Errorf("%d processes", u.Processes)
		}
		return nil
	})
	r, _ := one(st)
	if r.Usage.CPU > 2.5 || r.Usage.Time.IsZero() {
		t.Errorf("usage = %+v", r.Usage)
	}
}

// TestReadGroupUsageFake parses a made-up /proc, including a command name
// with spaces and parentheses and a zombie.
func TestReadGroupUsageFake(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	write := func(pid int, comm, state string, pgrp int, ticks [4]int, rssKB int) {
		dir := filepath.Join(proc, fmt.Sprint(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Fields 1-24 of proc(5); only 3, 5, 14-17 matter here.
		stat := fmt.Sprintf("%d (%s) %s 1 %d %d 0 -1 4194304 100 0 0 0 %d %d %d %d 20 0 1 0 100 1000 250\n",
			pid, comm, state, pgrp, pgrp, ticks[0], ticks[1], ticks[2], ticks[3])
		status := fmt.Sprintf("Name:\t%s\nState:\t%s\nVmRSS:\t    %d kB\nThreads:\t1\n", comm, state, rssKB)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(100, "sh", "S", 100, [4]int{1, 1, 0, 0}, 1000)
	write(101, "my (weird) app", "R", 100, [4]int{100, 50, 10, 40}, 20000)
	write(102, "gone", "Z", 100, [4]int{7, 3, 0, 0}, 0)
	write(200, "other", "S", 200, [4]int{500, 500, 0, 0}, 9999)
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}

	got, err := readGroupUsage(proc, []int{100, 300})
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Second / time.Duration(clockTicks())
	want := map[int]GroupUsage{100: {CPUTime: 212 * tick, RSS: 21000 << 10, Processes: 2}}
	if len(got) != 1 || got[100] != want[100] {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
}

func TestUsageRate(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	prev := usageSample{pid: 7, cpuTime: time.Second, at: t0}
	u, ok := prev.rate(7, GroupUsage{CPUTime: 3 * time.Second, RSS: 5}, t0.Add(4*time.Second))
	if !ok || u.CPU != 0.5 || u.RSS != 5 {
		t.Errorf("rate = %+v, %v; want 0.5 cores", u, ok)
	}
	if _, ok := prev.rate(8, GroupUsage{}, t0.Add(time.Second)); ok {
		t.Error("rate across a restart (new pid)")
	}
	if u, _ := prev.rate(7, GroupUsage{CPUTime: 0}, t0.Add(time.Second)); u.CPU != 0 {
		t.Errorf("negative delta gave %v cores", u.CPU)
	}
}
