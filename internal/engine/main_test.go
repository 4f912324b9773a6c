package engine

import (
	"context"
	"fmt"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Binaries built once for all tests: the supervisor's test child (a tiny
// program whose behaviour flags choose) and nubo itself.
var (
	childBin string
	nuboBin  string
	fnBin    string // a function written with the SDK (internal/functions/testdata/fn)
	hopBin   string // a service that passes traceparent on (testdata/hop)
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nubo-engine-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	childBin = filepath.Join(dir, "child")
	nuboBin = filepath.Join(dir, "nubo")
	fnBin = filepath.Join(dir, "fn")
	hopBin = filepath.Join(dir, "hop")
	for _, b := range [][2]string{{childBin, "../supervisor/testdata/child"}, {nuboBin, "../../cmd/nubo"}, {fnBin, "../functions/testdata/fn"}, {hopBin, "./testdata/hop"}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeSpec writes a spec into dir, with CHILD replaced by the child's path,
// and loads it.
func writeSpec(t *testing.T, dir, yaml string) *spec.App {
	t.Helper()
	path := filepath.Join(dir, "nubo.yaml")
	yaml = strings.ReplaceAll(yaml, "CHILD", childBin)
	yaml = strings.ReplaceAll(yaml, "FUNCTION", fnBin)
	yaml = strings.ReplaceAll(yaml, "HOPBIN", hopBin)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(path)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	return app
}

type testEngine struct {
	*Engine
	out *nubotest.Buffer
}

func startEngine(t *testing.T, app *spec.App, mutate ...func(*Options)) *testEngine {
	t.Helper()
	out := &nubotest.Buffer{}
	opts := Options{
		Out:          out,
		ConsoleAddr:  "127.0.0.1:0",
		OTLPAddr:     "127.0.0.1:0",
		IdentityPath: filepath.Join(t.TempDir(), "identity.txt"),
		NoWatch:      true,
		Getenv:       func(string) string { return "" },
	}
	for _, m := range mutate {
		m(&opts)
	}
	e, err := New(app, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() || os.Getenv("NUBO_TEST_LOG") != "" {
			t.Logf("engine output:\n%s", out)
		}
	})
	return &testEngine{Engine: e, out: out}
}

// events returns the engine's event lines, in order.
func (e *testEngine) events() []string {
	var out []string
	for _, l := range e.logs.Get(logs.Query{}) {
		if l.Stream == "nubo" {
			out = append(out, l.Text)
		}
	}
	return out
}

// indexOf returns the position of the first event containing s, or -1.
func indexOf(events []string, s string) int {
	for i, e := range events {
		if strings.Contains(e, s) {
			return i
		}
	}
	return -1
}

func waitReady(t *testing.T, e *testEngine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatalf("%v\n%s", err, e.out)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(data), &pid)
	return pid
}

// upProcess runs nubo up on dir's nubo.yaml as a real child process, with
// env added to the test's environment; its output is in the buffer. It is
// killed when the test ends.
func upProcess(t *testing.T, dir string, env ...string) (*exec.Cmd, *nubotest.Buffer) {
	t.Helper()
	cmd := exec.Command(nuboBin, "up", "--no-watch", "-f", filepath.Join(dir, "nubo.yaml"))
	out := &nubotest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(append(os.Environ(), "NUBO_AGE_IDENTITY="+filepath.Join(dir, "id.txt")), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, out
}

// kill9 kills a nubo up process with SIGKILL and reaps it.
func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}
