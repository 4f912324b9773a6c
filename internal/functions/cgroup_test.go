package functions

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOOMKills(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data string
		want int
	}{
		{"low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n", 1}, // memory.events
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3},                // memory.oom_control
		{"oom_kill_disable 0\nunder_oom 0\n", 0},
	}
	for _, tt := range tests {
		if got := oomKills([]byte(tt.data)); got != tt.want {
			t.Errorf("oomKills(%q) = %d, want %d", tt.data, got, tt.want)
		}
	}
}

// TestDetectCgroups runs the detection on fake /proc files and cgroup
// trees: the reasons it gives when limits cannot be enforced, and the
// engine's cgroup where they can.
func TestDetectCgroups(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	fake := func(t *testing.T, procCgroup string, mountinfo func(root string) string, files map[string]string) (proc, root string) {
		t.Helper()
		root, proc = t.TempDir(), t.TempDir()
		for name, content := range files {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(proc, "cgroup"), []byte(procCgroup), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, "mountinfo"), []byte(mountinfo(root)), 0o644); err != nil {
			t.Fatal(err)
		}
		return proc, root
	}

	t.Run("v2 without the memory controller, v1 memory writable", func(t *testing.T) {
		t.Parallel()
		proc, root := fake(t, "4:memory:/a\n0::/\n", func(root string) string {
			return "1 0 0:1 / " + root + "/unified rw - cgroup2 cgroup2 rw\n" +
				"2 0 0:2 / " + root + "/memory rw - cgroup cgroup rw,memory\n"
		}, map[string]string{"unified/cgroup.controllers": "", "memory/a/memory.limit_in_bytes": "9223372036854771712"})
		m := detectCgroupsIn(proc, log)
		if m.version != 1 || !strings.HasPrefix(m.dir, filepath.Join(root, "memory/a", "nubo-")) {
			t.Fatalf("detection: version %d, dir %q, reason %q; want cgroup v1 under memory/a", m.version, m.dir, m.reason)
		}
		if !strings.HasPrefix(m.enforcement(), "cgroup v1") {
			t.Errorf("enforcement %q", m.enforcement())
		}
		m.close()
		if _, err := os.Stat(m.dir); !os.IsNotExist(err) {
			t.Errorf("close left %s (%v)", m.dir, err)
		}
	})
	t.Run("v2 without the memory controller only", func(t *testing.T) {
		t.Parallel()
		proc, _ := fake(t, "0::/u\n", func(root string) string {
			return "1 0 0:1 / " + root + " rw - cgroup2 cgroup2 rw\n"
		}, map[string]string{"u/cgroup.controllers": "cpu io"})
		m := detectCgroupsIn(proc, log)
		if m.enabled() || !strings.Contains(m.enforcement(), "not enforced: cgroup v2: the memory controller is not available") {
			t.Errorf("enforcement %q", m.enforcement())
		}
	})
	t.Run("no cgroups mounted", func(t *testing.T) {
		t.Parallel()
		proc, _ := fake(t, "0::/\n", func(string) string { return "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n" }, nil)
		m := detectCgroupsIn(proc, log)
		if m.enabled() || !strings.Contains(m.reason, "no cgroup v2 or cgroup v1 memory hierarchy is mounted") {
			t.Errorf("reason %q", m.reason)
		}
	})
	t.Run("stale engine cgroups removed", func(t *testing.T) {
		t.Parallel()
		// A pid that cannot exist (above pid_max's ceiling) is a dead engine.
		proc, root := fake(t, "4:memory:/\n", func(root string) string {
			return "2 0 0:2 / " + root + " rw - cgroup cgroup rw,memory\n"
		}, map[string]string{"memory.limit_in_bytes": "1", "nubo-99999999-00ff/fn-1/x": "", "nubo-1-00ff/fn-1/x": ""})
		// Real cgroup directories hold only control files, which rmdir
		// ignores; plain ones must be empty to go.
		for _, d := range []string{"nubo-99999999-00ff", "nubo-1-00ff"} {
			os.Remove(filepath.Join(root, d, "fn-1/x"))
		}
		m := detectCgroupsIn(proc, log)
		defer m.close()
		if _, err := os.Stat(filepath.Join(root, "nubo-99999999-00ff")); !os.IsNotExist(err) {
			t.Errorf("the cgroup of a dead engine is left (%v)", err)
		}
		if _, err := os.Stat(filepath.Join(root, "nubo-1-00ff")); err != nil {
			t.Errorf("the cgroup of a live process (pid 1) was removed: %v", err)
		}
	})
}

func TestInstanceCommand(t *testing.T) {
	t.Parallel()
	cg := &cgroup{dir: "/sys/fs/cgroup/it's", version: 2}
	tests := []struct {
		command string
		cg      *cgroup
		want    string
	}{
		{"./bin/fn", nil, "./bin/fn"},
		{"./bin/fn --x", cg, "echo $$ > '/sys/fs/cgroup/it'\\''s/cgroup.procs' || exit 125\nexec ./bin/fn --x"},
		{"A=1 ./bin/fn", cg, "echo $$ > '/sys/fs/cgroup/it'\\''s/cgroup.procs' || exit 125\nA=1 ./bin/fn"},
		{"cd x && ./fn", cg, "echo $$ > '/sys/fs/cgroup/it'\\''s/cgroup.procs' || exit 125\ncd x && ./fn"},
		{"exec ./fn", cg, "echo $$ > '/sys/fs/cgroup/it'\\''s/cgroup.procs' || exit 125\nexec ./fn"},
	}
	for _, tt := range tests {
		if got := instanceCommand(tt.command, tt.cg); got != tt.want {
			t.Errorf("instanceCommand(%q) = %q, want %q", tt.command, got, tt.want)
		}
	}
}
