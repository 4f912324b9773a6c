package functions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMemoryLimit: an instance that goes over its memory limit is killed by
// the kernel; the invocation fails with ErrOOMKilled, and the next one gets
// a new instance. Skipped, with the reason, where cgroups are not writable.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  hog:
    run: FNBIN
    memory: 48Mi
    timeout: 20s
`)
	how := fx.MemoryEnforcement()
	if strings.HasPrefix(how, "not enforced") {
		t.Skipf("memory limits cannot be enforced on this machine: %s", how)
	}
	_, before := fx.invoke(t, "hog", ev("echo", nil))
	_, err := fx.Invoke(context.Background(), "hog", ev("hog", map[string]int{"mb": 256}))
	if !errors.Is(err, ErrOOMKilled) || !strings.Contains(err.Error(), "over its memory limit of 48Mi") {
		t.Fatalf("invocation allocating 256 MiB under a 48Mi limit (%s): %v; want ErrOOMKilled", how, err)
	}
	if st := fx.status(t, "hog"); !strings.Contains(st.LastError, "OOMKilled") {
		t.Errorf("status last error %q, want OOMKilled", st.LastError)
	}
	_, after := fx.invoke(t, "hog", ev("echo", nil))
	if after.PID == before.PID {
		t.Errorf("pid %d still serves after its OOM kill", before.PID)
	}
	if got := fx.counter(t, "nubo_function_errors_total", map[string]string{"function": "hog", "reason": "oom_killed"}); got != 1 {
		t.Errorf(`nubo_function_errors_total{reason="oom_killed"} = %v, want 1`, got)
	}
}

// TestCgroupsRemoved: stopping removes the instances' cgroups and the
// engine's own.
func TestCgroupsRemoved(t *testing.T) {
	t.Parallel()
	app := loadSpec(t, t.TempDir(), `
functions:
  fn:
    run: FNBIN
    memory: 64Mi
    scaling: {min: 1}
`)
	f, err := New(Config{App: app})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.cgroups.enabled() {
		f.Stop(context.Background())
		t.Skipf("memory limits cannot be enforced on this machine: %s", f.MemoryEnforcement())
	}
	dir := f.cgroups.dir
	if _, err := os.Stat(filepath.Join(dir, "fn-1")); err != nil {
		t.Errorf("the instance's cgroup: %v", err)
	}
	if err := f.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the engine's cgroup %s is left after Stop (%v)", dir, err)
	}
}
