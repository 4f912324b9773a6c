package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestReloadOfABombKeepsTheSystem writes an alias bomb over a running
// spec: the reload must refuse it with the loader's error and leave the
// running service alone. Before the loader bounded alias expansion, this
// reload took gigabytes and killed the engine.
func TestReloadOfABombKeepsTheSystem(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: bomb
services:
  keep: {run: CHILD -serve, port: 8080}
`)
	e := startEngine(t, app, func(o *Options) { o.NoWatch = false })
	waitReady(t, e)
	pid := pidOf(e, "keep")

	var bomb strings.Builder
	bomb.WriteString("name: bomb\nservices:\n  keep: {run: CHILD -serve, port: 8080}\na: &a [l,l,l,l,l,l,l,l,l]\n")
	prev := "a"
	for _, c := range "bcdefghi" {
		name := string(c)
		bomb.WriteString(name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n")
		prev = name
	}
	if err := os.WriteFile(filepath.Join(dir, "nubo.yaml"), []byte(bomb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// The wait is a guard against a hang, not a measure of speed.
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if indexOf(e.events(), "does not load; keeping the running system") < 0 {
			return fmt.Errorf("no message about the bomb yet")
		}
		return nil
	})
	if all := strings.Join(e.events(), "\n"); !strings.Contains(all, "YAML nodes") {
		t.Errorf("the bomb's error is not shown:\n%s", all)
	}
	if got := pidOf(e, "keep"); got != pid {
		t.Fatalf("the running service changed: pid %d, was %d", got, pid)
	}
	if s := e.Status().Services; len(s) != 1 || s[0].Ready != 1 {
		t.Fatalf("the running system is not ready after the bomb: %+v", s)
	}
}
