package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// nuboBin is the nubo binary TestMain builds, for the tests that run it as a
// child process, exactly as users do.
var nuboBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nubo-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	nuboBin = filepath.Join(dir, "nubo")
	build := exec.Command("go", "build", "-o", nuboBin, "github.com/nubo-dev/nubo/cmd/nubo")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build nubo: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is what a run of nubo left behind.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the built nubo in dir with args.
func runBinary(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(nuboBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run nubo %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// runInProcess runs the command tree in this process with args.
func runInProcess(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), args, bytes.NewReader(nil), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// startUp runs the built nubo's up in dir with args (env, when not nil,
// replaces the environment) until the test ends; its output is logged if
// the test fails.
func startUp(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(nuboBin, append([]string{"up", "--no-watch"}, args...)...)
	cmd.Dir, cmd.Env = dir, env
	out := &nubotest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nubo up %v:\n%s", args, out)
		}
	})
}
