package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

func TestOrderedStartAndReverseStop(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: order
services:
  c: {run: CHILD -serve, port: 8080, dependsOn: [b], stopGracePeriod: 5s}
  b: {run: CHILD -serve, port: 8080, dependsOn: [a], stopGracePeriod: 5s}
  a:
    run: CHILD -serve -listen-delay 300ms
    port: 8080
    stopGracePeriod: 5s
    health:
      readiness: {http: {path: /ready}, period: 100ms}
`)
	e := startEngine(t, app)
	waitReady(t, e)
	ev := e.events()
	aReady, bStarted, bReady, cStarted := indexOf(ev, "a ready"), indexOf(ev, "b-1 started"), indexOf(ev, "b ready"), indexOf(ev, "c-1 started")
	if aReady < 0 || bStarted < aReady || bReady < 0 || cStarted < bReady {
		t.Fatalf("services did not start in dependency order:\n%s", strings.Join(ev, "\n"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ev = e.events()
	cStop, bStop, aStop := indexOf(ev, "c-1 stopped"), indexOf(ev, "b-1 stopped"), indexOf(ev, "a-1 stopped")
	if cStop < 0 || bStop < cStop || aStop < bStop {
		t.Fatalf("services did not stop in reverse order:\n%s", strings.Join(ev, "\n"))
	}
}

func TestReadinessGatesDependents(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "not-ready")
	os.WriteFile(gate, nil, 0o644)
	app := writeSpec(t, dir, fmt.Sprintf(`
name: gate
services:
  db:
    run: CHILD -serve -notready-file %s
    port: 8080
    health:
      readiness: {http: {path: /ready}, period: 100ms, failureThreshold: 1}
  api: {run: CHILD -serve, port: 8080, dependsOn: [db]}
`, gate))
	e := startEngine(t, app)
	// While db keeps failing its readiness probe, api must not start.
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if n := strings.Count(strings.Join(e.events(), "\n"), "db-1 readiness probe failed"); n < 1 {
			return fmt.Errorf("db's readiness has not failed yet")
		}
		st := e.Status()
		for _, s := range st.Services {
			if s.Name == "db" && len(s.Replicas) == 1 && s.Replicas[0].Probes["readiness"].ConsecutiveFailures >= 3 {
				return nil
			}
		}
		return fmt.Errorf("db's readiness has not failed 3 times yet")
	})
	if i := indexOf(e.events(), "api-1 started"); i >= 0 {
		t.Fatalf("api started while db was not ready:\n%s", strings.Join(e.events(), "\n"))
	}
	if indexOf(e.events(), "api waiting for db to be ready") < 0 {
		t.Error("no event says api waits for db")
	}
	os.Remove(gate)
	waitReady(t, e)
	ev := e.events()
	if indexOf(ev, "api-1 started") < indexOf(ev, "db ready") {
		t.Fatalf("api started before db was ready:\n%s", strings.Join(ev, "\n"))
	}
}

func TestMissingSecretStartsNothing(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	app := writeSpec(t, dir, fmt.Sprintf(`
name: sec
secrets:
  db: {keys: [PASSWORD, USER]}
services:
  api:
    run: CHILD -pidfile %s
    envFrom: {secrets: [db]}
`, pidFile))
	e, err := New(app, Options{ConsoleAddr: "127.0.0.1:0", IdentityPath: filepath.Join(dir, "id.txt"), NoWatch: true,
		Getenv: func(k string) string {
			if k == "USER" {
				return "app"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(context.Background())
	var me *secrets.MissingError
	if !errors.As(err, &me) || len(me.Missing) != 1 || me.Missing[0].Key != "PASSWORD" {
		t.Fatalf("want a missing-secret error naming db.PASSWORD, got %v", err)
	}
	if !strings.Contains(err.Error(), `secret "db": key "PASSWORD"`) {
		t.Errorf("message: %v", err)
	}
	if _, statErr := os.Stat(pidFile); statErr == nil {
		t.Fatal("a service started although a secret was missing")
	}
	// The state directory is free again.
	if _, held := ReadLock(app.StatePath()); held {
		t.Error("the state directory is still locked")
	}
}

func TestSecretsReachTheProcessButNotTheOutput(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: sec
secrets:
  db: {keys: [PASSWORD]}
config:
  cfg: {MODE: fast}
services:
  api:
    run: CHILD -serve -say started
    port: 8080
    envFrom: {secrets: [db], config: [cfg]}
    env: {DSN: "postgres://app:${secrets.db.PASSWORD}@db/app", LEVEL: "${config.cfg.MODE}", WANT: "WANTSUM"}
    health:
      # The probe checks the values without naming the secret, so that only
      # a leak could put it in the output.
      readiness: {exec: {command: [sh, -c, 'test "$(printf %s "$PASSWORD" | cksum)" = "$WANT" && test "$DSN" = "postgres://app:$PASSWORD@db/app" && test "$LEVEL" = fast && test "$MODE" = fast']}, period: 100ms}
`)
	app.Services["api"].Env["WANT"] = cksum(t, "s3cret-value")
	e := startEngine(t, app, func(o *Options) {
		o.Getenv = func(k string) string {
			if k == "PASSWORD" {
				return "s3cret-value"
			}
			return ""
		}
	})
	waitReady(t, e) // the exec probe passes only with the right environment
	body := getJSON(t, e, "/admin/v1/status")
	if strings.Contains(e.out.String(), "s3cret-value") || strings.Contains(body, "s3cret-value") {
		t.Fatal("a secret value was printed")
	}
}

func TestSecondEngineIsRefused(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, "name: one\nservices:\n  a: {run: CHILD}\n")
	first := startEngine(t, app)
	second, err := New(app, Options{ConsoleAddr: "127.0.0.1:0", NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(context.Background())
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != os.Getpid() {
		t.Fatalf("want a LockedError naming this process, got %v", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d, console %s", os.Getpid(), first.admin.Addr())) {
		t.Errorf("message does not name the first engine: %v", err)
	}
}

func TestBuildFailureStopsStart(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, "name: b\nservices:\n  api: {run: CHILD, build: 'echo compiling; echo oops >&2; exit 3'}\n")
	out := &nubotest.Buffer{}
	e, _ := New(app, Options{Out: out, ConsoleAddr: "127.0.0.1:0", NoWatch: true})
	err := e.Start(context.Background())
	var be *supervisor.BuildError
	if !errors.As(err, &be) || be.Code != 3 {
		t.Fatalf("want a BuildError with exit code 3, got %v", err)
	}
	for _, want := range []string{"api-build | compiling", "api-build | oops"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, held := ReadLock(app.StatePath()); held {
		t.Error("the state directory is still locked after a failed start")
	}
}

func TestAdminAPIAndMetrics(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, "name: adm\nservices:\n  api: {run: CHILD -serve -say hello-from-api, port: 8080, replicas: 2}\n")
	e := startEngine(t, app)
	waitReady(t, e)
	var st console.Status
	if err := json.Unmarshal([]byte(getJSON(t, e, "/admin/v1/status")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 1 || st.Services[0].Ready != 2 || st.Services[0].Replicas[0].PID == 0 {
		t.Fatalf("status: %+v", st)
	}
	logs := getJSON(t, e, "/admin/v1/logs?service=api")
	if strings.Count(logs, "hello-from-api") != 2 {
		t.Errorf("logs of both replicas expected:\n%s", logs)
	}
	metrics := getJSON(t, e, "/metrics")
	for _, want := range []string{`nubo_service_replicas_ready{service="api"} 2`, `nubo_service_replicas_desired{service="api"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Restart through the API: both replicas replaced.
	old := st.Services[0].Replicas[0].PID
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.admin.Addr()+"/admin/v1/services/api/restart", nil)
	req.Header.Set(console.TokenHeader, e.ConsoleToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("restart: %v %v", resp, err)
	}
	resp.Body.Close()
	nubotest.WaitFor(t, 30*time.Second, func() error {
		s := e.Status().Services[0]
		for _, r := range s.Replicas {
			if r.PID == old || !r.Ready {
				return fmt.Errorf("replicas not replaced yet: %+v", s.Replicas)
			}
		}
		if s.Ready != 2 {
			return fmt.Errorf("%d ready", s.Ready)
		}
		return nil
	})
}

func getJSON(t *testing.T, e *testEngine, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + e.admin.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b.String())
	}
	return b.String()
}

func processGone(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("no pid")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		// A zombie is gone for our purposes: it runs nothing.
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(data), ") Z ") {
			return nil
		}
		return fmt.Errorf("process %d still runs", pid)
	}
	return nil
}

func cksum(t *testing.T, s string) string {
	out, err := exec.Command("sh", "-c", "printf %s \"$0\" | cksum", s).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
