package functions

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nubo-dev/nubo/internal/procgroup"
)

// detectCgroups finds where this process may create memory-limited
// cgroups: its own cgroup v2 with the memory controller delegable, else its
// cgroup v1 memory cgroup; it creates the engine's cgroup there.
func detectCgroups(log *slog.Logger) *cgroupManager {
	return detectCgroupsIn("/proc/self", log)
}

func detectCgroupsIn(procSelf string, log *slog.Logger) *cgroupManager {
	m := &cgroupManager{log: log}
	own, err := os.ReadFile(filepath.Join(procSelf, "cgroup"))
	if err != nil {
		m.reason = "cannot read " + filepath.Join(procSelf, "cgroup") + ": " + err.Error()
		return m
	}
	mi, err := os.ReadFile(filepath.Join(procSelf, "mountinfo"))
	if err != nil {
		m.reason = "cannot read " + filepath.Join(procSelf, "mountinfo") + ": " + err.Error()
		return m
	}
	paths := procgroup.ParseProcCgroup(own)
	mounts := procgroup.ParseMountinfo(mi)
	var reasons []string

	if base, ok := procgroup.CgroupDir(paths, mounts, ""); ok {
		dir, err := setupV2(base, log)
		if err == nil {
			m.version, m.dir = 2, dir
			return m
		}
		reasons = append(reasons, "cgroup v2: "+err.Error())
	}
	if base, ok := procgroup.CgroupDir(paths, mounts, "memory"); ok {
		dir, err := setupV1(base, log)
		if err == nil {
			m.version, m.dir = 1, dir
			return m
		}
		reasons = append(reasons, "cgroup v1: "+err.Error())
	} else if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup v2 or cgroup v1 memory hierarchy is mounted")
	}
	m.reason = strings.Join(reasons, "; ")
	return m
}

// setupV2 creates the engine's cgroup under base and delegates the memory
// controller to it.
func setupV2(base string, log *slog.Logger) (string, error) {
	ctrl, err := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
	if err != nil {
		return "", fmt.Errorf("read the controllers of %s: %w", base, err)
	}
	if !slices.Contains(strings.Fields(string(ctrl)), "memory") {
		return "", fmt.Errorf("the memory controller is not available in nubo's cgroup %s (its controllers: %q)", base, strings.TrimSpace(string(ctrl)))
	}
	sub, _ := os.ReadFile(filepath.Join(base, "cgroup.subtree_control"))
	if !slices.Contains(strings.Fields(string(sub)), "memory") {
		if err := writeFile(filepath.Join(base, "cgroup.subtree_control"), "+memory"); err != nil {
			return "", fmt.Errorf("enable the memory controller for the children of %s: %w (a cgroup that holds processes, as nubo's own does, can only do that at the root: run nubo where its cgroup is the root of a cgroup namespace, as in a container, or as root)", base, err)
		}
	}
	removeStale(base, log)
	dir, err := mkEngineCgroup(base)
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory"); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("enable the memory controller in %s: %w", dir, err)
	}
	return dir, nil
}

// setupV1 creates the engine's cgroup in the memory hierarchy under base.
func setupV1(base string, log *slog.Logger) (string, error) {
	if _, err := os.Stat(filepath.Join(base, "memory.limit_in_bytes")); err != nil {
		return "", fmt.Errorf("%s is not a memory cgroup: %w", base, err)
	}
	removeStale(base, log)
	return mkEngineCgroup(base)
}

// mkEngineCgroup creates the engine's cgroup under base: nubo-PID-RANDOM,
// so that two components in one process (a reload, tests) do not share it.
func mkEngineCgroup(base string) (string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(base, enginePrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return dir, nil
}
