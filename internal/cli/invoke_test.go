package cli

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/spec"
)

// startFunctionsEngine runs a console with the functions component's routes
// mounted, as the engine mounts them, serving the functions test program.
func startFunctionsEngine(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fn")
	if out, err := exec.Command("go", "build", "-o", bin, "../functions/testdata/fn").CombinedOutput(); err != nil {
		t.Fatalf("build the test function: %v\n%s", err, out)
	}
	path := writeFile(t, dir, "nubo.yaml", "name: shop\nfunctions:\n  fn:\n    run: "+bin+"\n")
	app, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fns, err := functions.New(functions.Config{App: app})
	if err != nil {
		t.Fatal(err)
	}
	if err := fns.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		fns.Stop(ctx)
	})
	var routes []console.Route
	for _, p := range fns.Patterns() {
		routes = append(routes, console.Route{Pattern: p, Handler: fns.Handler()})
	}
	e := &testEngine{logs: logs.New(0)}
	srv, err := console.New(console.Config{Addr: "127.0.0.1:0", Backend: e, Logs: e.logs, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv.Addr()
}

func TestInvokeCommand(t *testing.T) {
	t.Parallel()
	addr := startFunctionsEngine(t)
	dataFile := writeFile(t, t.TempDir(), "data.json", `{"from":"file"}`)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring stdout must have
		stderr string // a substring stderr must have
	}{
		{"cold then result", []string{"invoke", "fn", "--type", "echo", "--data", `{"a":1}`}, 0, `"data":"{\"a\":1}"`, "fn: 200 OK in "},
		{"data from a file", []string{"invoke", "fn", "--type", "echo", "--data", "@" + dataFile}, 0, `"data":"{\"from\":\"file\"}"`, "warm (instance 1)"},
		{"function error", []string{"invoke", "fn", "--type", "fail"}, 1, "failing on purpose", "fn: 422 Unprocessable Entity in "},
		{"unknown function", []string{"invoke", "fm"}, 1, "", `did you mean "fn"?`},
		{"not JSON", []string{"invoke", "fn", "--data", "hello"}, 2, "", `--data "hello" is not JSON`},
		{"no such file", []string{"invoke", "fn", "--data", "@/nonexistent"}, 2, "", "--data @/nonexistent"},
		{"async", []string{"invoke", "fn", "--type", "echo", "--async"}, 0, "", "invoking in the background, event "},
	}
	for _, tt := range tests {
		// In order: the first invocation is the cold one.
		r := runInProcess(t, append(tt.args, "--addr", addr)...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%s: nubo %v:\n%s\nwant exit %d, stdout with %q, stderr with %q", tt.name, tt.args, r, tt.code, tt.stdout, tt.stderr)
		}
		if tt.name == "cold then result" && !strings.Contains(r.stderr, "cold start ") {
			t.Errorf("the first invocation does not say it was a cold start:\n%s", r)
		}
	}

	r := runInProcess(t, "invoke", "fn", "--type", "echo", "--subject", "s", "-o", "json", "--addr", addr)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 {
		t.Fatalf("-o json: %v\n%s", err, r)
	}
	result, _ := doc["result"].(map[string]any)
	if doc["function"] != "fn" || doc["status"] != 200.0 || doc["coldStart"] != false || doc["durationMs"] == nil || result["type"] != "echo" {
		t.Errorf("-o json document %v", doc)
	}

	if r := runInProcess(t, "invoke", "fn", "--addr", freeAddr(t)); r.code != 1 || !strings.Contains(r.stderr, "no nubo engine is running at") {
		t.Errorf("invoke without an engine:\n%s", r)
	}
}
