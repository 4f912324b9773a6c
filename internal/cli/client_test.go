package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// testEngine is a real console.Server on 127.0.0.1:0 with a small Backend
// standing in for the engine, so that these tests exercise the commands and
// the admin API alone; the real engine behind the console is tested in
// internal/engine.
type testEngine struct {
	srv   *console.Server
	logs  *logs.Store
	addr  string // for the test; handlers use srv.Addr()
	mu    sync.Mutex
	calls []string // restart:NAME, shutdown
}

func (e *testEngine) Status() console.Status {
	started := time.Now().Add(-(3*time.Minute + 12*time.Second))
	return console.Status{
		App: "shop", Namespace: "prod", Spec: "nubo.yaml", PID: 4242, Started: started, Console: e.srv.Addr(),
		Services: []console.ServiceStatus{
			{
				ServiceStatus: supervisor.ServiceStatus{Name: "users", Desired: 2, Ready: 1, Replicas: []supervisor.ReplicaStatus{
					{
						Index: 0, ID: 1, State: supervisor.StateReady, Ready: true, PID: 4300, Port: 41000,
						Usage: &supervisor.ResourceUsage{CPU: 0.25, RSS: 12 << 20},
						Probes: map[supervisor.ProbeKind]supervisor.ProbeResult{
							supervisor.ProbeLiveness: {OK: true}, supervisor.ProbeReadiness: {OK: true},
						},
					},
					{
						Index: 1, ID: 2, State: supervisor.StateRunning, PID: 4301, Port: 41001, Restarts: 3,
						LastExit: &supervisor.ExitStatus{Code: 137, Signal: "SIGKILL", Time: time.Now().Add(-5 * time.Second)},
						Probes: map[supervisor.ProbeKind]supervisor.ProbeResult{
							supervisor.ProbeLiveness:  {OK: true},
							supervisor.ProbeReadiness: {OK: false, Message: "status\n503"},
						},
					},
				}},
				Kind:    console.KindService,
				Scaling: &console.ScalingStatus{Min: 1, Max: 5, LastDecision: "cpu 140% of 70% target: 1 -> 2", LastDecisionTime: time.Now().Add(-12 * time.Second)},
			},
			{ServiceStatus: supervisor.ServiceStatus{Name: "orders", Desired: 1}, Kind: console.KindService},
		},
		Skipped: []console.Skipped{{Section: "functions", Reason: "not run by nubo up yet (greet)"}},
	}
}

func (e *testEngine) RestartService(_ context.Context, name string) error {
	if name != "users" && name != "orders" {
		return fmt.Errorf("service %q: %w", name, console.ErrNotFound)
	}
	e.record("restart:" + name)
	return nil
}

// Shutdown stops the console in the background, as the engine does.
func (e *testEngine) Shutdown() {
	e.record("shutdown")
	go e.srv.Stop(context.Background())
}

func (e *testEngine) record(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func (e *testEngine) called() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.calls, " ")
}

func startTestEngine(t *testing.T) *testEngine {
	t.Helper()
	e := &testEngine{logs: logs.New(0)}
	srv, err := console.New(console.Config{Addr: "127.0.0.1:0", Backend: e, Logs: e.logs})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv // before Start: handlers read it
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.addr = srv.Addr()
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return e
}

// freeAddr returns a loopback address nothing listens on, for the whole
// test: its port stays bound (never listening), so no other test can take
// it meanwhile, as a freed port could be.
func freeAddr(t *testing.T) string {
	t.Helper()
	return nubotest.RefusedAddr(t)
}

// specWithConsole writes a nubo.yaml whose local.console is addr and
// returns its path.
func specWithConsole(t *testing.T, addr string) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "nubo.yaml", fmt.Sprintf(`name: shop
local:
  console: %s
services:
  users:
    run: ./users
`, addr))
}

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	r := runInProcess(t, "status", "--addr", e.addr)
	if r.code != 0 {
		t.Fatalf("status:\n%s", r)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^app shop \(namespace prod\): engine pid 4242, up 3m1[23]s, console ` + regexp.QuoteMeta(e.addr) + "\n"),
		regexp.MustCompile(`(?m)^SERVICE +REPLICA +STATE +READY +PID +PORT +RESTARTS +LAST EXIT +CPU +RSS +PROBES$`),
		regexp.MustCompile(`(?m)^users +1 +Ready +yes +4300 +41000 +0 +- +250m +12\.0 MiB +liveness ok, readiness ok$`),
		regexp.MustCompile(`(?m)^users +2 +Running +no +4301 +41001 +3 +137 SIGKILL \([56]s ago\) +- +- +liveness ok, readiness fail: status 503$`),
		regexp.MustCompile(`(?m)^  autoscaling 1\.\.5 replicas, 2 desired; last decision 1[23]s ago: cpu 140% of 70% target: 1 -> 2$`),
		regexp.MustCompile(`(?m)^orders +- +no replicas +`),
		regexp.MustCompile(`(?m)^not run by nubo up:\n  functions  not run by nubo up yet \(greet\)$`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("status output does not match %s:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "SERVICE "); n != 2 {
		t.Errorf("%d tables, want one per service:\n%s", n, r.stdout)
	}

	r = runInProcess(t, "status", "--addr", e.addr, "--output", "json")
	var st console.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status --output json: %v\n%s", err, r)
	}
	if st.App != "shop" || len(st.Services) != 2 || st.Services[0].Replicas[1].LastExit.Code != 137 || st.Skipped[0].Section != "functions" {
		t.Errorf("status document: %+v", st)
	}
}

// TestFindEngine finds the console from --addr, from the lock of the engine
// running the spec, and from local.console.
func TestFindEngine(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)

	// local.console names the engine.
	r := runInProcess(t, "status", "-f", specWithConsole(t, e.addr))
	if r.code != 0 || !strings.HasPrefix(r.stdout, "app shop") {
		t.Errorf("status found from local.console:\n%s", r)
	}

	// local.console is stale, and the running engine's lock has the real
	// address (as when nubo up --console or port 0 was used).
	spec := specWithConsole(t, freeAddr(t))
	holdLock(t, filepath.Join(filepath.Dir(spec), ".nubo"), engine.LockInfo{PID: 4242, Console: e.addr, Spec: spec})
	r = runInProcess(t, "restart", "users", "-f", spec)
	if r.code != 0 || r.stdout != "restarting users\n" {
		t.Errorf("restart found from the lock:\n%s", r)
	}
	if got := e.called(); got != "restart:users" {
		t.Errorf("engine calls %q", got)
	}
}

// holdLock holds dir's engine lock with info, as a running engine does.
func holdLock(t *testing.T, dir string, info engine.LockInfo) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "engine.lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(f).Encode(info); err != nil {
		t.Fatal(err)
	}
	if got, ok := engine.ReadLock(dir); !ok || got.Console != info.Console {
		t.Fatalf("engine.ReadLock does not see the test's lock: %+v %v", got, ok)
	}
}

func TestNoEngineRunning(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	dir := filepath.Dir(specWithConsole(t, addr))
	want := fmt.Sprintf("nubo: no nubo engine is running at %s (local.console of nubo.yaml); start it with nubo up\n", addr)
	for _, args := range [][]string{{"status"}, {"logs"}, {"logs", "-f", "users"}, {"restart", "users"}, {"down"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, dir, args...)
			if r.code != 1 || r.stderr != want || r.stdout != "" {
				t.Errorf("nubo %v:\n%s\nwant exit 1 and stderr %q", args, r, want)
			}
		})
	}
	r := runInProcess(t, "status", "--addr", addr)
	if want := fmt.Sprintf("nubo: no nubo engine is running at %s (--addr); start it with nubo up\n", addr); r.code != 1 || r.stderr != want {
		t.Errorf("status --addr:\n%s\nwant %q", r, want)
	}
}

func TestEngineCommandErrors(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	dir := t.TempDir()
	invalid := writeFile(t, dir, "bad.yaml", "name: shop\nservices:\n  users:\n    rnu: ./users\n")
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"restart", "usres", "--addr", e.addr}, 1, `nubo: no service "usres" (services: orders, users)` + "\n"},
		{[]string{"restart", "--addr", e.addr}, 2, "accepts 1 arg(s), received 0"},
		{[]string{"status", "--addr", "4500"}, 2, `--addr "4500": want HOST:PORT`},
		{[]string{"status", "-f", filepath.Join(dir, "none.yaml")}, 1, "none.yaml: no such file, needed to find the engine; pass --file FILE or --addr HOST:PORT"},
		{[]string{"status", "-f", invalid}, 1, "bad.yaml is not valid (nubo validate -f " + invalid + " shows why), so nubo cannot find the engine; pass --addr HOST:PORT"},
		{[]string{"logs", "--addr", e.addr, "--since", "yesterday"}, 2, `--since "yesterday": want a duration`},
		{[]string{"logs", "--addr", e.addr, "--tail", "-3"}, 2, `--tail "-3": want a number`},
		{[]string{"logs", "--addr", e.addr, "nubo.yaml"}, 2, `"nubo.yaml" is not a service: -f is --follow for nubo logs; give the spec with --file nubo.yaml`},
		{[]string{"logs", "--addr", e.addr, "usres"}, 1, `nubo: no service "usres" has written output (services: orders, users)`},
		{[]string{"status", "-o", "yaml", "--addr", e.addr}, 2, `--output "yaml"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runInProcess(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("nubo %v:\n%s\nwant exit %d and %q on stderr", tt.args, r, tt.code, tt.stderr)
			}
		})
	}
	if got := e.called(); got != "" {
		t.Errorf("failed commands reached the engine: %q", got)
	}
}

func TestLogsCommand(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	now := time.Now()
	for _, l := range []logs.Line{
		{Time: now.Add(-time.Hour), Service: "users", Replica: -1, Stream: "build", Text: "built"},
		{Time: now.Add(-time.Hour), Service: "users", Replica: 0, Stream: "stdout", Text: "listening"},
		{Time: now, Service: "orders", Replica: 0, Stream: "stderr", Text: "warming up"},
		{Time: now, Service: "users", Replica: -1, Stream: "nubo", Text: "users-2 ready"},
		{Time: now, Service: "users", Replica: 1, Stream: "stdout", Text: "GET /health 200"},
	} {
		e.logs.Add(l)
	}
	tests := []struct {
		args []string
		want string
	}{
		{nil, `users-build | built
users-1     | listening
orders-1    | warming up
nubo        | users-2 ready
users-2     | GET /health 200
`},
		{[]string{"users", "--tail", "2"}, "nubo | users-2 ready\nusers-2 | GET /health 200\n"},
		{[]string{"--since", "10m"}, "orders-1 | warming up\nnubo     | users-2 ready\nusers-2  | GET /health 200\n"},
		{[]string{"orders", "--since", now.Add(-time.Minute).Format(time.RFC3339)}, "orders-1 | warming up\n"},
		{[]string{"--tail", "0"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			// Not a terminal: no colors without --no-color.
			r := runInProcess(t, append([]string{"logs", "--addr", e.addr}, tt.args...)...)
			if r.code != 0 || r.stdout != tt.want {
				t.Errorf("nubo logs %v:\n%s\nwant stdout:\n%s", tt.args, r, tt.want)
			}
		})
	}
}

func TestLogsFollowCommand(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	e.logs.Add(logs.Line{Service: "users", Text: "before"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr nubotest.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"logs", "users", "-f", "--tail", "1", "--addr", e.addr}, strings.NewReader(""), &stdout, &stderr)
	}()
	// "before" is printed once the engine has answered, so the next line is
	// added while the follow is under way.
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(stdout.String(), "before") {
			return fmt.Errorf("stdout %q", stdout.String())
		}
		return nil
	})
	e.logs.Add(logs.Line{Service: "orders", Text: "not this one"})
	e.logs.Add(logs.Line{Service: "users", Replica: 1, Text: "after"})
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(stdout.String(), "users-2 | after") {
			return fmt.Errorf("stdout %q", stdout.String())
		}
		return nil
	})
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != 0 || stderr.String() != "" {
			t.Errorf("after Ctrl-C: exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end on Ctrl-C")
	}
	if got, want := stdout.String(), "users-1 | before\nusers-2 | after\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

func TestLogsFollowEndsWithEngine(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	e.logs.Add(logs.Line{Service: "users", Text: "hello"})
	var stdout, stderr nubotest.Buffer
	done := make(chan int)
	go func() {
		done <- Run(t.Context(), []string{"logs", "-f", "--addr", e.addr}, strings.NewReader(""), &stdout, &stderr)
	}()
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(stdout.String(), "hello") {
			return fmt.Errorf("stdout %q", stdout.String())
		}
		return nil
	})
	if err := e.srv.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if want := fmt.Sprintf("nubo: the engine at %s stopped\n", e.addr); code != 0 || stderr.String() != want {
			t.Errorf("exit %d, stderr %q; want 0 and %q", code, stderr.String(), want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end when the engine stopped")
	}
}

func TestDownCommand(t *testing.T) {
	t.Parallel()
	e := startTestEngine(t)
	r := runBinary(t, t.TempDir(), "down", "--addr", e.addr)
	if r.code != 0 || r.stdout != "stopped\n" || !strings.Contains(r.stderr, "stopping the engine at "+e.addr) {
		t.Fatalf("down:\n%s", r)
	}
	if got := e.called(); got != "shutdown" {
		t.Errorf("engine calls %q, want shutdown", got)
	}
	if c, err := net.Dial("tcp", e.addr); err == nil {
		c.Close()
		t.Error("the console still answers after nubo down said stopped")
	}
}

// TestWaitStoppedWaitsForLock: down is done only once the engine has let
// go of its state directory, which it does after the console has stopped.
func TestWaitStoppedWaitsForLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	holdLock(t, dir, engine.LockInfo{PID: 4242, Console: freeAddr(t)})
	c := newEngineClient(engineTarget{addr: freeAddr(t), stateDir: dir, lockPID: 4242})
	if !holdsLock(c.target) {
		t.Fatal("holdsLock does not see the lock")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := waitStopped(ctx, c); err == nil {
		t.Error("waitStopped returned while the engine held its lock")
	}
	if holdsLock(engineTarget{stateDir: dir, lockPID: 1}) {
		t.Error("another engine's lock counted as the one asked to stop")
	}
}

func TestHumanUnits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
	}{
		{humanBytes(0), "0 B"},
		{humanBytes(1023), "1023 B"},
		{humanBytes(1536), "1.5 KiB"},
		{humanBytes(12 << 20), "12.0 MiB"},
		{humanBytes(3 << 30), "3.0 GiB"},
		{age(0), "0s"},
		{age(59 * time.Second), "59s"},
		{age(3*time.Minute + 12*time.Second), "3m12s"},
		{age(2*time.Hour + 5*time.Minute), "2h5m"},
		{age(76 * time.Hour), "3d4h"},
		{age(-time.Second), "0s"},
		{cpu(&supervisor.ResourceUsage{CPU: 1.5}), "1500m"},
		{cpu(nil), "-"},
		{shorten("connection refused", 18), "connection refused"},
		{shorten("connection refused", 10), "connectio…"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
