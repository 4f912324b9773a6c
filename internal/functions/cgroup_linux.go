package functions

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	paths := parseProcCgroup(own)
	mounts := parseMountinfo(mi)
	var reasons []string

	if base, ok := cgroupDir(paths, mounts, ""); ok {
		dir, err := setupV2(base, log)
		if err == nil {
			m.version, m.dir = 2, dir
			return m
		}
		reasons = append(reasons, "cgroup v2: "+err.Error())
	}
	if base, ok := cgroupDir(paths, mounts, "memory"); ok {
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

// parseProcCgroup reads /proc/self/cgroup: "ID:CONTROLLERS:PATH" lines.
// The cgroup v2 path is under the key "", each v1 controller under its
// name.
func parseProcCgroup(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "" {
				out[c] = parts[2]
			}
		}
	}
	return out
}

// mount is a cgroup file system mount from /proc/self/mountinfo.
type mount struct {
	root, point, fstype string
	superOpts           []string
}

// parseMountinfo reads the cgroup and cgroup2 mounts of
// /proc/self/mountinfo (proc(5)): "ID PARENT MAJ:MIN ROOT POINT OPTS
// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
func parseMountinfo(data []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		fstype := f[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		out = append(out, mount{root: unescapeMount(f[3]), point: unescapeMount(f[4]), fstype: fstype,
			superOpts: strings.Split(f[sep+3], ",")})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDir is the directory of this process's cgroup for a controller ("":
// cgroup v2), on the mount of that hierarchy. A mount whose root is a
// sub-cgroup (a container's bind mount) maps the path under it.
func cgroupDir(paths map[string]string, mounts []mount, controller string) (string, bool) {
	path, ok := paths[controller]
	if !ok {
		return "", false
	}
	for _, mt := range mounts {
		if controller == "" && mt.fstype != "cgroup2" {
			continue
		}
		if controller != "" && (mt.fstype != "cgroup" || !slices.Contains(mt.superOpts, controller)) {
			continue
		}
		rel, ok := strings.CutPrefix(path, mt.root)
		if !ok || (mt.root != "/" && rel != "" && !strings.HasPrefix(rel, "/")) {
			continue
		}
		return filepath.Join(mt.point, rel), true
	}
	return "", false
}
