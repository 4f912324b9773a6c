package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// childBin is the test child (testdata/child), built once by TestMain.
var childBin string

// waitTimeout is generous: the tests run with -race on a loaded 2-core
// machine. Nothing asserts that anything is fast.
const waitTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		runPdeathsigHelper()
		return
	}
	dir, err := os.MkdirTemp("", "supervisor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	childBin = filepath.Join(dir, "child")
	build := exec.Command("go", "build", "-o", childBin, "./testdata/child")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test child: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// child returns a shell command running the test child with args.
func child(args ...string) string {
	q := []string{"exec", shellQuote(childBin)}
	for _, a := range args {
		q = append(q, shellQuote(a))
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// recorder is an EventSink and LineSink that keeps everything.
type recorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []Event
	lines  []recordedLine
}

type recordedLine struct {
	replica int
	stream  string
	text    string
}

func newRecorder(t testing.TB) *recorder { return &recorder{t: t} }

func (r *recorder) Event(e Event) {
	if os.Getenv("NUBO_TEST_LOG") != "" {
		r.t.Logf("event %s-%d #%d: %s", e.Service, e.Replica, e.ReplicaID, e)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Line(service string, replica int, stream string, line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, recordedLine{replica, stream, string(line)})
}

func (r *recorder) eventsOf(kind EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) allEvents() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) linesOf(stream string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if l.stream == stream {
			out = append(out, l.text)
		}
	}
	return out
}

// waitEvent waits until an event of kind satisfying ok (nil: any) has been
// recorded, and returns it.
func (r *recorder) waitEvent(t testing.TB, kind EventKind, ok func(Event) bool) Event {
	t.Helper()
	var found Event
	waitFor(t, func() error {
		for _, e := range r.eventsOf(kind) {
			if ok == nil || ok(e) {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no %s event yet; events: %v", kind, r.allEvents())
	})
	return found
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("NUBO_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startSupervisor creates and starts a supervisor that records into rec,
// and stops it when the test ends.
func startSupervisor(t *testing.T, cfg ServiceConfig, rec *recorder, opts ...Option) *Supervisor {
	t.Helper()
	s := newSupervisor(t, cfg, rec, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func newSupervisor(t *testing.T, cfg ServiceConfig, rec *recorder, opts ...Option) *Supervisor {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "svc"
	}
	all := []Option{WithLogger(testLogger(t)), WithEventSink(rec), WithLineSink(rec)}
	s, err := New(cfg, append(all, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func waitReady(t *testing.T, s *Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

// waitStatus waits until cond accepts the supervisor's status.
func waitStatus(t *testing.T, s *Supervisor, cond func(ServiceStatus) error) ServiceStatus {
	t.Helper()
	var st ServiceStatus
	waitFor(t, func() error {
		st = s.Status()
		return cond(st)
	})
	return st
}

// waitFor is nubotest.WaitFor with the package's timeout.
func waitFor(t testing.TB, cond func() error) {
	t.Helper()
	nubotest.WaitFor(t, waitTimeout, cond)
}

func httpGet(port int, path string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// alive reports whether pid is a live process; a zombie is dead (in a
// container its reaper may be slow or absent).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, func() error {
		if alive(pid) {
			return fmt.Errorf("pid %d still alive", pid)
		}
		return nil
	})
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err
	})
	return pid
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func fastBackoff() Backoff {
	return Backoff{Base: 50 * time.Millisecond, Max: 400 * time.Millisecond}
}

func one(st ServiceStatus) (ReplicaStatus, error) {
	if len(st.Replicas) != 1 {
		return ReplicaStatus{}, fmt.Errorf("%d replicas, want 1", len(st.Replicas))
	}
	return st.Replicas[0], nil
}

func readProcStatus(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	return string(b), err
}
