//go:build linux

// Package procgroup puts each replica's processes in a cgroup of their own,
// so that nothing a replica started outlives it: a process that left the
// replica's process group (setsid, then a double fork) is still in its
// cgroup, and killing the cgroup kills it.
//
// On cgroup v2 (a cgroup2 mount, unified or hybrid) the process is started
// inside its cgroup (clone3's CLONE_INTO_CGROUP, so not even its first fork
// escapes) and the cgroup is killed with cgroup.kill. On cgroup v1 it uses
// the pids hierarchy: the process joins after it starts, and killing means
// signalling every task until none is left. No controller is needed: the
// cgroups only hold processes. Where neither is writable (no root, no
// delegation), Open says why and the caller goes on without.
//
// The engine's cgroups live under one directory, nubo-procs-PID-RANDOM;
// the reaper kills what is left there when the engine dies, and the next
// engine removes the directories of engines that are gone.
package procgroup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const prefix = "nubo-procs-"

// Tree is the engine's directory of cgroups.
type Tree struct {
	dir    string
	v2     bool
	reason string
	log    *slog.Logger
}

// Open finds a writable cgroup hierarchy (v2, else v1 pids), removes what
// engines that are gone left there, and creates this engine's directory.
// With none, the Tree is disabled and Reason says why.
func Open(log *slog.Logger) *Tree {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tree{log: log}
	own, err1 := os.ReadFile("/proc/self/cgroup")
	mi, err2 := os.ReadFile("/proc/self/mountinfo")
	if err := errors.Join(err1, err2); err != nil {
		t.reason = "cannot read this process's cgroups: " + err.Error()
		return t
	}
	var reasons []string
	for _, v2 := range []bool{true, false} {
		base, ok := ownCgroupDir(own, mi, v2)
		if !ok {
			continue
		}
		removeStale(base, v2, log)
		dir, err := mkdirUnique(base)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		t.dir, t.v2 = dir, v2
		return t
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup2 or cgroup v1 pids hierarchy is mounted")
	}
	t.reason = strings.Join(reasons, "; ")
	return t
}

// Off is a disabled Tree, for a caller that wants none (reason says why).
func Off(reason string) *Tree { return &Tree{reason: reason} }

// Enabled reports whether replicas get cgroups.
func (t *Tree) Enabled() bool { return t != nil && t.dir != "" }

// Reason says why the Tree is disabled.
func (t *Tree) Reason() string { return t.reason }

// Dir is the engine's directory of cgroups ("" when disabled): what the
// reaper kills if the engine dies.
func (t *Tree) Dir() string { return t.dir }

// Close kills every process left in the engine's cgroups and removes them.
func (t *Tree) Close() error {
	if !t.Enabled() {
		return nil
	}
	return KillDir(t.dir)
}

// Members lists the processes in the engine's cgroups by the name their
// cgroup was made with, up to its last dash (New("api-0") gives "api"
// for a replica named SERVICE-INDEX: the service): pid to name.
func (t *Tree) Members() map[int]string {
	if !t.Enabled() {
		return nil
	}
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return nil
	}
	out := map[int]string{}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		// NAME-HEX, and NAME is SERVICE-INDEX.
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		for _, pid := range procs(filepath.Join(t.dir, e.Name())) {
			out[pid] = name
		}
	}
	return out
}

// New creates a cgroup for one process tree; name is made unique.
func (t *Tree) New(name string) (*Group, error) {
	if !t.Enabled() {
		return nil, errors.New("no cgroups: " + t.reason)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(t.dir, sanitize(name)+"-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	g := &Group{dir: dir, v2: t.v2, fd: -1}
	if t.v2 {
		fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			_ = os.Remove(dir)
			return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
		}
		g.fd = fd
	}
	return g, nil
}

// Group is one process tree's cgroup.
type Group struct {
	dir string
	v2  bool
	fd  int
}

// Dir is the cgroup's directory.
func (g *Group) Dir() string { return g.dir }

// Prepare makes a command start inside the cgroup (v2); call it before
// the command starts.
func (g *Group) Prepare(attr *syscall.SysProcAttr) {
	if g.v2 && g.fd >= 0 {
		attr.UseCgroupFD, attr.CgroupFD = true, g.fd
	}
}

// Started finishes the start of pid: on v1 it joins the cgroup now. Call it
// after the command started (or failed to: pid 0).
func (g *Group) Started(pid int) error {
	if g.fd >= 0 {
		_ = syscall.Close(g.fd)
		g.fd = -1
	}
	if g.v2 || pid <= 0 {
		return nil
	}
	return os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// Kill kills every process in the cgroup, waits for them to be gone and
// removes it.
func (g *Group) Kill() error {
	if g.fd >= 0 {
		_ = syscall.Close(g.fd)
		g.fd = -1
	}
	return KillDir(g.dir)
}

// KillDir kills every process in the cgroup dir and in the cgroups under
// it, then removes them, deepest first. A directory already gone is no
// error.
func KillDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, KillDir(filepath.Join(dir, e.Name())))
		}
	}
	// cgroup.kill (v2, Linux 5.14) kills at once, forks included. Opened
	// without O_CREATE: where it does not exist (v1), nothing is made.
	if f, err := os.OpenFile(filepath.Join(dir, "cgroup.kill"), os.O_WRONLY, 0); err == nil {
		_, _ = f.WriteString("1")
		_ = f.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := procs(dir)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("cgroup %s: processes %v left after SIGKILL", dir, pids))
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The kernel may take a moment to release an emptied cgroup.
	for i := 0; ; i++ {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			break
		}
		if i == 200 {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// procs lists the processes of a cgroup (not of its children).
func procs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// removeStale kills and removes the directories of engines that are gone
// (kill -9 of both the engine and its reaper).
func removeStale(base string, v2 bool, log *slog.Logger) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || (pid > 0 && syscall.Kill(pid, 0) == nil) {
			continue // an engine still running
		}
		dir := filepath.Join(base, e.Name())
		if err := KillDir(dir); err != nil {
			log.Warn("remove the cgroups of an engine that is gone", "dir", dir, "err", err)
		} else {
			log.Info("removed the cgroups of an engine that is gone", "dir", dir)
		}
	}
}

func mkdirUnique(base string) (string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(base, prefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return dir, nil
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '.' || r < ' ' {
			return '_'
		}
		return r
	}, name)
}

// ownCgroupDir is the directory of this process's cgroup in the v2
// hierarchy, or in the v1 pids hierarchy, from /proc/self/cgroup and
// /proc/self/mountinfo.
func ownCgroupDir(procCgroup, mountinfo []byte, v2 bool) (string, bool) {
	controller := "pids"
	if v2 {
		controller = ""
	}
	dir, ok := CgroupDir(ParseProcCgroup(procCgroup), ParseMountinfo(mountinfo), controller)
	if !ok {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return "", false
	}
	return dir, true
}
