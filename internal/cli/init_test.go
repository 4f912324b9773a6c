package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var starterFiles = []string{"app/.gitignore", "app/go.mod", "app/greet/main.go", "app/hello/main.go", "app/nubo.yaml"}

// TestInitBuildsAndRuns writes the starter with the real binary, validates
// it, builds its Go sources with the real toolchain and runs them: the
// service answers its probes and metrics, the function a CloudEvent.
func TestInitBuildsAndRuns(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	r := runBinary(t, work, "init", "app")
	if r.code != 0 {
		t.Fatalf("init:\n%s", r)
	}
	for _, f := range starterFiles {
		if !strings.Contains(r.stdout, "wrote "+f+"\n") {
			t.Errorf("init did not say it wrote %s:\n%s", f, r.stdout)
		}
	}
	if !strings.HasSuffix(r.stdout, "\nnext: cd app && nubo up\n") {
		t.Errorf("init does not end with the next command:\n%s", r.stdout)
	}
	app := filepath.Join(work, "app")
	spec, err := os.ReadFile(filepath.Join(app, "nubo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(spec), "\nname: app\n") {
		t.Errorf("the starter is not named after its folder:\n%s", spec)
	}

	if r := runBinary(t, app, "validate"); r.code != 0 || !strings.HasPrefix(r.stdout, "nubo.yaml: valid (1 service, 1 function)") {
		t.Fatalf("validate of the starter:\n%s", r)
	}

	build := exec.Command("go", "build", "-o", "bin/", "./...")
	build.Dir = app
	// The starter is its own module, with no dependencies: nothing may be
	// fetched, and no workspace or flags of nubo's own build may leak in.
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./... in the starter: %v\n%s", err, out)
	}

	t.Run("hello", func(t *testing.T) {
		t.Parallel()
		base := start(t, filepath.Join(app, "bin", "hello"))
		for _, path := range []string{"/health", "/ready", "/", "/nope"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := path != "/nope"; (resp.StatusCode == 200) != want {
				t.Errorf("GET %s: %s", path, resp.Status)
			}
		}
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("/metrics is not the Prometheus text format: %v", err)
		}
		requests := families["http_requests_total"]
		if requests == nil {
			t.Fatalf("no http_requests_total in %v", slices.Sorted(maps.Keys(families)))
		}
		counted := map[string]float64{}
		for _, m := range requests.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			counted[labels["path"]+" "+labels["code"]] += m.GetCounter().GetValue()
		}
		for _, want := range []string{"/health 200", "/ready 200", "/ 200", "unmatched 404"} {
			if counted[want] != 1 {
				t.Errorf("http_requests_total for %q = %v, want 1 (all: %v)", want, counted[want], counted)
			}
		}
		h := families["http_request_duration_seconds"].GetMetric()
		if len(h) != 1 || h[0].GetHistogram().GetSampleCount() < 4 {
			t.Errorf("http_request_duration_seconds does not count the requests: %v", h)
		}
	})

	t.Run("greet", func(t *testing.T) {
		t.Parallel()
		base := start(t, filepath.Join(app, "bin", "greet"))
		req, _ := http.NewRequest("POST", base+"/", strings.NewReader(`{"name":"Ada"}`))
		for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "test", "ce-type": "com.example.greet", "Content-Type": "application/json"} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Greeting string `json:"greeting"`
			Event    struct{ ID, Source, Type string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("invoke greet: %s, %v", resp.Status, err)
		}
		if out.Greeting != "Hello, Ada!" || out.Event.ID != "1" || out.Event.Type != "com.example.greet" {
			t.Errorf("greet answered %+v", out)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}

		plain, err := http.Post(base+"/", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest {
			t.Errorf("a POST that is not a CloudEvent: %s, want 400", plain.Status)
		}
	})
}

var listening = regexp.MustCompile(`listening on (\S+)`)

// start runs a starter binary with PORT=0, waits for the address it logs,
// and stops it with SIGTERM when the test ends, checking that it exits 0.
func start(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	logged := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		logged <- all.String()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		out := <-logged
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s after SIGTERM: %v\n%s", filepath.Base(bin), err, out)
		}
	})
	var a string
	nubotest.WaitFor(t, 10*time.Second, func() error {
		select {
		case a = <-addr:
			return nil
		default:
			return fmt.Errorf("%s has not logged its address", filepath.Base(bin))
		}
	})
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + port
}

func TestInitRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	if r := runBinary(t, work, "init", "app"); r.code != 0 {
		t.Fatalf("first init:\n%s", r)
	}
	mine := filepath.Join(work, "app", "nubo.yaml")
	if err := os.WriteFile(mine, []byte("name: mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := runBinary(t, work, "init", "app")
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("second init, want exit 1 and nothing on stdout:\n%s", r)
	}
	for _, f := range starterFiles {
		if !strings.Contains(r.stderr, "  "+f+"\n") {
			t.Errorf("the refusal does not list %s:\n%s", f, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "--force") {
		t.Errorf("the refusal does not mention --force:\n%s", r.stderr)
	}
	if b, _ := os.ReadFile(mine); string(b) != "name: mine\n" {
		t.Errorf("a refused init changed nubo.yaml to %q", b)
	}

	if r := runBinary(t, work, "init", "--force", "app"); r.code != 0 {
		t.Fatalf("init --force:\n%s", r)
	}
	if b, _ := os.ReadFile(mine); string(b) == "name: mine\n" {
		t.Error("init --force left nubo.yaml as it was")
	}
}

func TestInitHere(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "My Shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, dir, "init")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote nubo.yaml\n") || !strings.HasSuffix(r.stdout, "\nnext: nubo up\n") {
		t.Fatalf("init in the current folder:\n%s", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "nubo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nname: my-shop\n") {
		t.Errorf("the starter is not named my-shop:\n%s", b)
	}

	named := t.TempDir()
	if r := runInProcess(t, "init", "--name", "orders", named); r.code != 0 {
		t.Fatalf("init --name:\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(named, "nubo.yaml")); !strings.Contains(string(b), "\nname: orders\n") {
		t.Errorf("--name orders not used:\n%s", b)
	}
}
