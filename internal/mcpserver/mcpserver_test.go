package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/mcpserver"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestMCPAgainstARunningEngine drives the server with the SDK's own client
// over in-memory transports, against a real engine: list the tools, read
// the status, run a PromQL query, restart a service and see its pid
// change, read the spec resource.
func TestMCPAgainstARunningEngine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(file, []byte("name: agent\nservices:\n  idle: {run: exec sleep 600}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(app, engine.Options{ConsoleAddr: "127.0.0.1:0", NoWatch: true, IdentityPath: filepath.Join(dir, "id"), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	st := e.Status()
	server := mcpserver.New(mcpserver.Config{Engine: st.Console, SpecFile: file, Version: "test", Token: e.ConsoleToken})
	st1, st2 := mcp.NewInMemoryTransports()
	if _, err := server.Connect(ctx, st1, nil); err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	session, err := client.Connect(ctx, st2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()

	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"status", "logs", "query", "alerts", "slos", "dead_letters", "restart", "scale", "publish", "invoke", "redrive"} {
		if !strings.Contains(","+strings.Join(names, ",")+",", ","+want+",") {
			t.Errorf("no tool %q among %v", want, names)
		}
	}

	call := func(name string, args any) string {
		t.Helper()
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var text strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				text.WriteString(tc.Text)
			}
		}
		if res.IsError {
			t.Fatalf("%s: tool error: %s", name, text.String())
		}
		return text.String()
	}
	// pid is the ready replica's pid, 0 while there is none (a restart
	// replaces it).
	pid := func() int {
		var s apitype.Status
		if err := json.Unmarshal([]byte(call("status", map[string]any{})), &s); err != nil {
			t.Fatal(err)
		}
		for _, svc := range s.Services {
			for _, r := range svc.Replicas {
				if r.Ready && !r.Retiring {
					return r.PID
				}
			}
		}
		return 0
	}
	var before int
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if before = pid(); before == 0 {
			return fmt.Errorf("no ready replica yet")
		}
		return nil
	})
	if out := call("query", map[string]any{"query": "vector(42)"}); !strings.Contains(out, `"42"`) {
		t.Errorf("query vector(42): %s", out)
	}
	call("restart", map[string]any{"service": "idle"})
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if p := pid(); p == before || p == 0 {
			return fmt.Errorf("pid still %d", p)
		}
		return nil
	})
	if out := call("logs", map[string]any{"grep": "restarting idle"}); !strings.Contains(out, "restarting idle") {
		t.Errorf("logs grep: %s", out)
	}
	res, err := session.ReadResource(ctx, &mcp.ReadResourceParams{URI: "nubo://spec"})
	if err != nil || len(res.Contents) != 1 || !strings.Contains(res.Contents[0].Text, "name: agent") {
		t.Errorf("spec resource: %v %+v", err, res)
	}
	// A bad argument is a tool error naming the problem, not a crash.
	bad, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "publish", Arguments: map[string]any{"to": "nowhere", "type": "x"}})
	if err != nil || !bad.IsError {
		t.Errorf("publish to nowhere: %v %+v", err, bad)
	}
}
