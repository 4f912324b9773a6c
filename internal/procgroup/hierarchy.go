package procgroup

import (
	"bufio"
	"bytes"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Where this process's cgroups are: the one reading of /proc/self/cgroup
// and /proc/self/mountinfo that procgroup and the functions' memory
// cgroups share.

// ParseProcCgroup reads /proc/self/cgroup: "ID:CONTROLLERS:PATH" lines.
// The cgroup v2 path is under the key "", each v1 controller under its
// name.
func ParseProcCgroup(data []byte) map[string]string {
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

// Mount is a cgroup file system mount from /proc/self/mountinfo.
type Mount struct {
	// Root is the cgroup the mount shows at Point; FSType is cgroup or
	// cgroup2; SuperOpts name a v1 hierarchy's controllers.
	Root, Point, FSType string
	SuperOpts           []string
}

// ParseMountinfo reads the cgroup and cgroup2 mounts of
// /proc/self/mountinfo (proc(5)): "ID PARENT MAJ:MIN ROOT POINT OPTS
// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
func ParseMountinfo(data []byte) []Mount {
	var out []Mount
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
		out = append(out, Mount{Root: unescapeMount(f[3]), Point: unescapeMount(f[4]), FSType: fstype,
			SuperOpts: strings.Split(f[sep+3], ",")})
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

// CgroupDir is the directory of this process's cgroup for a controller ("":
// cgroup v2), on the mount of that hierarchy. A mount whose root is a
// sub-cgroup (a container's bind mount) maps the path under it.
func CgroupDir(paths map[string]string, mounts []Mount, controller string) (string, bool) {
	path, ok := paths[controller]
	if !ok {
		return "", false
	}
	for _, mt := range mounts {
		if controller == "" && mt.FSType != "cgroup2" {
			continue
		}
		if controller != "" && (mt.FSType != "cgroup" || !slices.Contains(mt.SuperOpts, controller)) {
			continue
		}
		rel, ok := strings.CutPrefix(path, mt.Root)
		if !ok || (mt.Root != "/" && rel != "" && !strings.HasPrefix(rel, "/")) {
			continue
		}
		return filepath.Join(mt.Point, rel), true
	}
	return "", false
}
