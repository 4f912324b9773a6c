package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// reloadSpec is a system of every reloadable kind: a service, a function
// with a warm instance, the gateway in front of both, a queue and an alert.
// %[1]s is the function's A, %[2]s the function's build, %[3]s the
// service's build, %[4]s more spec.
const reloadSpec = `
name: twophase
services:
  api: {run: CHILD -serve -pidfile %[5]s, port: 8080, build: '%[3]s'}
functions:
  fn: {run: FUNCTION, env: {A: "%[1]s"}, scaling: {min: 1, max: 1}, build: '%[2]s'}
queues:
  jobs: {}
gateway:
  routes:
    - {path: /api/health, methods: [GET], integration: {type: service, service: api, path: /health}}
    - {path: /fn, methods: [POST], integration: {type: function, function: fn}}
%[4]s
local: {gateway: "127.0.0.1:0"}
`

// TestFailedReloadKeepsTheWholeOldSystem: a reload that one component
// refuses changes nothing in any component, and requests sent during and
// after it are answered by the old system.
func TestFailedReloadKeepsTheWholeOldSystem(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "api.pid")
	// write writes the spec without loading it: some versions are broken.
	write := func(a, fnBuild, apiBuild, more string) {
		y := fmt.Sprintf(reloadSpec, a, fnBuild, apiBuild, more, pidFile)
		y = strings.ReplaceAll(strings.ReplaceAll(y, "CHILD", childBin), "FUNCTION", fnBin)
		if err := os.WriteFile(filepath.Join(dir, "nubo.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app := writeSpec(t, dir, fmt.Sprintf(reloadSpec, "one", "true", "true", "", pidFile))
	e := startEngine(t, app)
	waitReady(t, e)
	apiPID := readPID(t, pidFile)
	base := "http://" + e.gateway.g.Addr()
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	fnEnv := func() string {
		resp, err := http.Post("http://"+e.admin.Addr()+"/v1/functions/fn/invoke", "application/cloudevents+json",
			strings.NewReader(`{"specversion":"1.0","id":"x","source":"t","type":"env","datacontenttype":"application/json","data":{"names":["A"]}}`))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if code, body := call("GET", "/api/health", ""); code != 200 {
			return fmt.Errorf("service route: %d %s", code, body)
		}
		return nil
	})
	if got := fnEnv(); !strings.Contains(got, `"A":"one"`) {
		t.Fatalf("function before any reload: %s", got)
	}

	// Requests go on during every reload below; each must be answered.
	var failures atomic.Int64
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			if code, _ := call("GET", "/api/health", ""); code != 200 {
				failures.Add(1)
			}
			if code, _ := call("POST", "/fn", "{}"); code/100 != 2 {
				failures.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	more := `    - {path: /new, methods: [GET], integration: {type: mock, status: 200, body: "new"}}
observability:
  alerts:
    - {name: new_alert, expr: "vector(1) > 2", severity: warning}
rules:
  new-rule: {filter: {exact: {type: x}}, target: "queue:jobs"}`
	cases := []struct {
		name                       string
		a, fnBuild, apiBuild, more string
		refusal                    string
	}{
		// Refused by the loader: nothing reaches the components.
		{"bad filter", "two", "true", "true", "rules:\n  r: {filter: {sql: \"type = \"}, target: \"queue:jobs\"}", "does not load"},
		{"bad route", "two", "true", "true", "    - {path: nope, methods: [GET], integration: {type: mock}}", "does not load"},
		{"bad alert rule", "two", "true", "true", "observability:\n  alerts:\n    - {name: a, expr: \"sum(\"}", "does not load"},
		// Refused by a component while the others have prepared theirs: the
		// functions' new pool has started (it is the last but services), the
		// gateway, the mesh, events and alerts have compiled the new spec.
		{"function build fails", "two", "exit 7", "true", more, "functions refuses it"},
		{"service build fails after the functions prepared", "two", "true", "exit 9", more, "services refuses it"},
	}
	for _, c := range cases {
		write(c.a, c.fnBuild, c.apiBuild, c.more)
		e.reload(context.Background())
		if indexOf(e.events(), c.refusal) < 0 {
			t.Fatalf("%s: no %q in the output:\n%s", c.name, c.refusal, strings.Join(e.events(), "\n"))
		}
		if got := fnEnv(); !strings.Contains(got, `"A":"one"`) {
			t.Errorf("%s: the function changed: %s", c.name, got)
		}
		if code, _ := call("GET", "/new", ""); code != http.StatusNotFound {
			t.Errorf("%s: the gateway took the new route (%d)", c.name, code)
		}
		if got := readPID(t, pidFile); got != apiPID {
			t.Errorf("%s: the service was restarted (pid %d -> %d)", c.name, apiPID, got)
		}
		if n := fnInstances(t); n != 1 {
			t.Errorf("%s: %d instances of the function run, want the old one only", c.name, n)
		}
		body := getJSON(t, e, "/api/v1/rules")
		if strings.Contains(body, "new_alert") {
			t.Errorf("%s: the new alert rule was loaded", c.name)
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests during the failed reloads were not answered by the old system", n, sent.Load())
	}

	// The same change without the failing build is taken whole.
	write("two", "true", "true", more)
	e.reload(context.Background())
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if got := fnEnv(); !strings.Contains(got, `"A":"two"`) {
			return fmt.Errorf("function after the good reload: %s", got)
		}
		if code, body := call("GET", "/new", ""); code != 200 || body != "new" {
			return fmt.Errorf("new route: %d %s", code, body)
		}
		return nil
	})
	if !strings.Contains(getJSON(t, e, "/api/v1/rules"), "new_alert") {
		t.Error("the new alert rule was not loaded")
	}
}

// fnInstances counts the running processes of the test function.
func fnInstances(t *testing.T) int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", "-x", fnBin).Output()
	return len(strings.Fields(string(out)))
}

// TestFailedStartLeavesNothingRunning: the gateway cannot bind its port,
// so the start fails after the broker, the console, the mesh and the
// functions' warm instances started; all of them are rolled back.
func TestFailedStartLeavesNothingRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	fnPID := filepath.Join(dir, "fn.pid")
	app := writeSpec(t, dir, fmt.Sprintf(`
name: rollback
functions:
  fn: {run: CHILD -serve -pidfile %s, scaling: {min: 1}}
gateway:
  routes:
    - {path: /x, methods: [GET], integration: {type: mock, status: 200}}
local: {gateway: %q, console: "127.0.0.1:0"}
`, fnPID, taken.Addr().String()))
	out := &nubotest.Buffer{}
	e, err := New(app, Options{Out: out, ConsoleAddr: "127.0.0.1:0", IdentityPath: filepath.Join(dir, "id"), NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(context.Background())
	var se *host.StartError
	if !errors.As(err, &se) || se.Component != "gateway" {
		t.Fatalf("want a start error naming the gateway, got %v", err)
	}
	pid := readPID(t, fnPID)
	if pid == 0 {
		t.Fatal("the function's instance never started: the test does not test the rollback")
	}
	if err := processGone(pid); err != nil {
		t.Errorf("the function's instance outlived the failed start: %v", err)
	}
	consoleAddr := e.admin.Addr()
	if l, err := net.Listen("tcp", consoleAddr); err != nil {
		t.Errorf("the console's port %s is still bound: %v", consoleAddr, err)
	} else {
		l.Close()
	}
	if _, held := ReadLock(app.StatePath()); held {
		t.Error("the state directory is still locked")
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Errorf("stop after a failed start: %v", err)
	}
	_ = os.Remove(fnPID)
}
