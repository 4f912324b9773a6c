package engine

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

func pidOf(e *testEngine, service string) int {
	for _, s := range e.Status().Services {
		if s.Name == service && len(s.Replicas) > 0 {
			return s.Replicas[0].PID
		}
	}
	return 0
}

func TestSpecEditRestartsOnlyTheChangedService(t *testing.T) {
	dir := t.TempDir()
	const base = `
name: edit
services:
  keep: {run: CHILD -serve, port: 8080}
  change: {run: CHILD -serve, port: 8080, env: {VERSION: "%s"}}
`
	app := writeSpec(t, dir, fmt.Sprintf(base, "1"))
	e := startEngine(t, app, func(o *Options) { o.NoWatch = false })
	waitReady(t, e)
	keepPID, changePID := pidOf(e, "keep"), pidOf(e, "change")

	// A broken edit is reported and changes nothing.
	os.WriteFile(filepath.Join(dir, "nubo.yaml"), []byte(strings.ReplaceAll(fmt.Sprintf(base, "2"), "port: 8080}", "port: 8080, restart: sometimes}")), 0o644)
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if indexOf(e.events(), "does not load; keeping the running system") < 0 {
			return fmt.Errorf("no message about the broken spec yet")
		}
		return nil
	})
	if !strings.Contains(strings.Join(e.events(), "\n"), `restart: "sometimes" is not one of always, on-failure, never`) {
		t.Errorf("the broken spec's error is not shown:\n%s", strings.Join(e.events(), "\n"))
	}
	if pidOf(e, "keep") != keepPID || pidOf(e, "change") != changePID {
		t.Fatal("a broken spec changed the running system")
	}

	writeSpec(t, dir, fmt.Sprintf(base, "2"))
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if p := pidOf(e, "change"); p == changePID || p == 0 {
			return fmt.Errorf("change still runs its old process")
		}
		if e.Status().Services[0].Ready+e.Status().Services[1].Ready != 2 {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	if pidOf(e, "keep") != keepPID {
		t.Fatalf("the unchanged service was restarted:\n%s", strings.Join(e.events(), "\n"))
	}
	// The roll stops the old version once the new one is ready, so the
	// status can show the new pid while the old one is still stopping; the
	// reload ends when it has stopped.
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if err := processGone(changePID); err != nil {
			return fmt.Errorf("the old version of change still runs: %w", err)
		}
		return nil
	})
}

func TestWatchRebuildsAndRolls(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "main.txt"), []byte("v1"), 0o644)
	app := writeSpec(t, dir, `
name: watch
services:
  api:
    build: cp src/main.txt built.txt
    run: CHILD -serve
    port: 8080
    watch: [./src]
`)
	e := startEngine(t, app, func(o *Options) { o.NoWatch = false })
	waitReady(t, e)
	before := pidOf(e, "api")
	os.WriteFile(filepath.Join(src, "main.txt"), []byte("v2"), 0o644)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(dir, "built.txt"))
		if string(b) != "v2" {
			return fmt.Errorf("not rebuilt: built.txt = %q", b)
		}
		if p := pidOf(e, "api"); p == before || p == 0 || e.Status().Services[0].Ready != 1 {
			return fmt.Errorf("not rolled yet")
		}
		return nil
	})
}

// TestNoOrphansAfterKill9 runs nubo up as a real child process, kills it
// with SIGKILL, and checks that no process of the system survives: the
// replica (Pdeathsig) and what it forked (the reaper kills its group).
func TestNoOrphansAfterKill9(t *testing.T) {
	dir := t.TempDir()
	grandchild := filepath.Join(dir, "grandchild.pid")
	pidFile := filepath.Join(dir, "child.pid")
	writeSpec(t, dir, fmt.Sprintf(`
name: orphans
services:
  api: {run: CHILD -serve -pidfile %s -grandchild %s, port: 8080}
local: {console: "127.0.0.1:0"}
`, pidFile, grandchild))
	cmd, out := upProcess(t, dir)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if readPID(t, pidFile) == 0 || readPID(t, grandchild) == 0 {
			return fmt.Errorf("processes not started yet:\n%s", out)
		}
		if !strings.Contains(out.String(), "api ready") {
			return fmt.Errorf("api not ready yet")
		}
		return nil
	})
	child, gc := readPID(t, pidFile), readPID(t, grandchild)
	kill9(t, cmd)
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if err := processGone(child); err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		return processGone(gc)
	})
}

// TestSpecEditReloadsFunctions changes a function's environment: the pool is
// replaced and the next invocation sees the new value.
func TestSpecEditReloadsFunctions(t *testing.T) {
	dir := t.TempDir()
	const spec = "name: fnreload\nfunctions:\n  fn: {run: FUNCTION, env: {A: \"%s\"}}\n"
	app := writeSpec(t, dir, fmt.Sprintf(spec, "one"))
	e := startEngine(t, app, func(o *Options) { o.NoWatch = false })
	invoke := func() string {
		resp, err := http.Post("http://"+e.admin.Addr()+"/v1/functions/fn/invoke", "application/cloudevents+json",
			strings.NewReader(`{"specversion":"1.0","id":"x","source":"t","type":"env","datacontenttype":"application/json","data":{"names":["A"]}}`))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := invoke(); !strings.Contains(got, `"A":"one"`) {
		t.Fatalf("first invocation: %s", got)
	}
	writeSpec(t, dir, fmt.Sprintf(spec, "two"))
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if got := invoke(); !strings.Contains(got, `"A":"two"`) {
			return fmt.Errorf("invocation answered %s", got)
		}
		return nil
	})
}
