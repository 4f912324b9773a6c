package procgroup

import (
	"strings"
	"testing"
)

func TestParseProcCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
		want       map[string]string
	}{
		{"v2 only", "0::/user.slice/session-2.scope\n", map[string]string{"": "/user.slice/session-2.scope"}},
		{"hybrid", "9:name=systemd:/\n4:memory:/process_api/f47\n2:cpu,cpuacct:/x\n0::/\n",
			map[string]string{"": "/", "name=systemd": "/", "memory": "/process_api/f47", "cpu": "/x", "cpuacct": "/x"}},
		{"garbage", "nonsense\n", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseProcCgroup([]byte(tt.data))
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%q: got %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestCgroupDir(t *testing.T) {
	t.Parallel()
	mounts := ParseMountinfo([]byte(strings.Join([]string{
		`30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory`,
		`31 25 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu`,
		`32 25 0:28 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw`,
		`33 25 0:29 / /my\040mount rw - cgroup cgroup rw,pids`,
		`40 25 8:1 / / rw - ext4 /dev/sda1 rw`,
	}, "\n")))
	if len(mounts) != 4 || mounts[3].Point != "/my mount" {
		t.Fatalf("mounts %+v: want the 4 cgroup mounts, with octal escapes undone", mounts)
	}
	paths := map[string]string{"memory": "/process_api/f47", "": "/docker/abc/sub", "pids": "/p", "cpu": "/docker/abcdef"}
	tests := []struct {
		controller, want string
		ok               bool
	}{
		{"memory", "/sys/fs/cgroup/memory/process_api/f47", true},
		{"", "/sys/fs/cgroup/unified/sub", true},
		{"pids", "/my mount/p", true},
		{"cpu", "/sys/fs/cgroup/cpu/docker/abcdef", true},
		{"blkio", "", false},
	}
	for _, tt := range tests {
		got, ok := CgroupDir(paths, mounts, tt.controller)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CgroupDir(%q) = %q, %v; want %q, %v", tt.controller, got, ok, tt.want, tt.ok)
		}
	}
	// A v2 path outside the mount's root is not on that mount.
	if got, ok := CgroupDir(map[string]string{"": "/docker/abcdef"}, mounts, ""); ok {
		t.Errorf("a path beside the mount's root mapped to %q", got)
	}
}
