package functions

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/nubo-dev/nubo/internal/procgroup"
)

// cgroupManager puts instances of functions with `memory` in cgroups of
// their own under this engine's cgroup (nubo-PID-RANDOM, a child of nubo's
// own cgroup), each with the function's memory limit.
//
// cgroup v2 is preferred; the v1 memory controller is used where the
// machine mounts memory there (hybrid hierarchies, older distributions,
// some sandboxes). Where neither can be written, limits are not enforced
// and reason says why; `nubo validate`'s parity table and the functions'
// status say so too.
type cgroupManager struct {
	version int    // 1 or 2; 0: limits not enforced
	dir     string // this engine's cgroup, the parent of the instances'
	reason  string // why limits are not enforced, when version is 0
	log     *slog.Logger
}

func (m *cgroupManager) enabled() bool { return m != nil && m.version != 0 }

// enforcement says in a few words how memory limits are enforced.
func (m *cgroupManager) enforcement() string {
	switch {
	case m == nil:
		return ""
	case m.version != 0:
		return fmt.Sprintf("cgroup v%d", m.version)
	}
	return "not enforced: " + m.reason
}

// cgroup is one instance's cgroup.
type cgroup struct {
	dir     string
	version int
}

// create makes the cgroup of one instance with a memory limit in bytes.
func (m *cgroupManager) create(name string, limit int64) (*cgroup, error) {
	g := &cgroup{dir: filepath.Join(m.dir, name), version: m.version}
	if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("memory limit: create cgroup %s: %w", g.dir, err)
	}
	v := strconv.FormatInt(limit, 10)
	var err error
	if m.version == 2 {
		err = writeFile(filepath.Join(g.dir, "memory.max"), v)
		// No swap: over the limit is over the limit, as in Kubernetes.
		_ = writeFile(filepath.Join(g.dir, "memory.swap.max"), "0")
	} else {
		err = writeFile(filepath.Join(g.dir, "memory.limit_in_bytes"), v)
		_ = writeFile(filepath.Join(g.dir, "memory.memsw.limit_in_bytes"), v)
	}
	if err != nil {
		_ = os.Remove(g.dir)
		return nil, fmt.Errorf("memory limit: set the limit of cgroup %s: %w", g.dir, err)
	}
	return g, nil
}

// procsFile is the file a process writes its pid to, to join the cgroup.
func (g *cgroup) procsFile() string { return filepath.Join(g.dir, "cgroup.procs") }

// oomKilled reports whether the kernel has killed a process of the cgroup
// for going over its limit.
func (g *cgroup) oomKilled() bool {
	file := "memory.oom_control"
	if g.version == 2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return false
	}
	return oomKills(data) > 0
}

// oomKills reads the oom_kill count of memory.events (v2) or
// memory.oom_control (v1), which share the line's format.
func oomKills(data []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// remove kills what is left in the cgroup (a process that left the
// instance's process group) and removes it, waiting for the processes to
// be gone.
func (g *cgroup) remove() error { return procgroup.KillDir(g.dir) }

// close removes the engine's cgroup, once every instance's is gone.
func (m *cgroupManager) close() {
	if !m.enabled() {
		return
	}
	if err := procgroup.KillDir(m.dir); err != nil {
		m.log.Warn("remove the engine's cgroup", "err", err)
	}
}

// removeStale removes the cgroups of engines that died without removing
// theirs (kill -9 of nubo and of its reaper): their instances died by
// Pdeathsig, but what left an instance's process group may be left.
func removeStale(base string, log *slog.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), enginePrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := procgroup.KillDir(filepath.Join(base, e.Name())); err != nil {
			log.Debug("remove a stale cgroup", "err", err)
		}
	}
}

// enginePrefix starts the name of an engine's cgroup: nubo-PID-RANDOM.
const enginePrefix = "nubo-"

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// writeFile writes a cgroup control file (which exists; no create).
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
