//go:build linux

package procgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Orphans is the fallback where no cgroup can be made: the process
// becomes a child subreaper (PR_SET_CHILD_SUBREAPER), so that a process a
// replica started and then left (setsid and a double fork: its parent
// exits) is reparented to it rather than to init, and can be killed when
// the replicas stop.
//
// Which of its children it adopted is told by their session and process
// group: what the engine starts itself is the leader of its process group
// in the engine's session (a replica, a function instance, a build) or in
// the engine's own process group (a probe, a backup); an adopted process
// is in another session, or in a process group it does not lead.
//
// Unlike a cgroup, this does not hold across kill -9 of the engine once
// the adopted process is reparented again: Scan reports each adopted
// process group, which the engine tells its reaper, but what is adopted
// between two scans and the moment of the kill escapes.
type Orphans struct {
	self, pgrp, sid int
	mu              sync.Mutex
	groups          map[int]int // process group of adopted processes: how many
}

// Adopt makes this process a child subreaper.
func Adopt() (*Orphans, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become a child subreaper: %w", err)
	}
	sid, err := unix.Getsid(0)
	if err != nil {
		return nil, fmt.Errorf("read the session: %w", err)
	}
	return &Orphans{self: os.Getpid(), pgrp: unix.Getpgrp(), sid: sid, groups: map[int]int{}}, nil
}

// child is a child process as /proc/PID/stat shows it.
type child struct {
	pid, pgrp, sid int
	zombie         bool
}

// Scan reaps the adopted processes that have exited and returns the
// process groups that hold adopted processes from now on (added) and no
// longer (gone). skip is a child the caller started itself whatever it
// looks like (the reaper, in a session of its own).
func (o *Orphans) Scan(skip func(pid int) bool) (added, gone []int) {
	now := map[int]int{}
	for _, c := range o.adopted(skip) {
		if c.zombie {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(c.pid, &ws, unix.WNOHANG, nil)
			continue
		}
		now[c.pgrp]++
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for g := range now {
		if o.groups[g] == 0 {
			added = append(added, g)
		}
	}
	for g := range o.groups {
		if now[g] == 0 {
			gone = append(gone, g)
		}
	}
	o.groups = now
	return added, gone
}

// Kill kills every adopted process and what it started (reparented in
// turn), reaps them, and stops being a subreaper. It returns once none is
// left, or after 10 seconds with the ones left.
func (o *Orphans) Kill(skip func(pid int) bool) error {
	deadline := time.Now().Add(10 * time.Second)
	var left []child
	for {
		left = left[:0]
		for _, c := range o.adopted(skip) {
			if c.zombie {
				var ws unix.WaitStatus
				_, _ = unix.Wait4(c.pid, &ws, unix.WNOHANG, nil)
				continue
			}
			left = append(left, c)
			_ = syscall.Kill(c.pid, syscall.SIGKILL)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	if len(left) > 0 {
		pids := make([]string, len(left))
		for i, c := range left {
			pids[i] = strconv.Itoa(c.pid)
		}
		return fmt.Errorf("adopted processes %s left after SIGKILL", strings.Join(pids, ", "))
	}
	return nil
}

// adopted lists the children this process did not start (see Orphans).
func (o *Orphans) adopted(skip func(pid int) bool) []child {
	var out []child
	for _, c := range o.children() {
		if skip != nil && skip(c.pid) {
			continue
		}
		if c.sid != o.sid || (c.pgrp != c.pid && c.pgrp != o.pgrp) {
			out = append(out, c)
		}
	}
	return out
}

// children reads every thread's list of children (a child's parent is
// the thread that forked it; an adopted one's, any thread).
func (o *Orphans) children() []child {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", o.self))
	seen := map[int]bool{}
	var out []child
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil || seen[pid] {
				continue
			}
			seen[pid] = true
			if c, err := readStat(pid); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// readStat reads the state, process group and session of pid from
// /proc/PID/stat (proc(5)); the command name may hold spaces and
// parentheses, so the fields are counted after its last ")".
func readStat(pid int) (child, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return child{}, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return child{}, errors.New("malformed stat")
	}
	// state ppid pgrp session ...
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return child{}, errors.New("malformed stat")
	}
	pgrp, err1 := strconv.Atoi(f[2])
	sid, err2 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2); err != nil {
		return child{}, err
	}
	return child{pid: pid, pgrp: pgrp, sid: sid, zombie: f[0] == "Z"}, nil
}
