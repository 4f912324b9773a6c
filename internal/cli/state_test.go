package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestTwoCopiesSideBySide runs one spec twice with --state: each copy has
// its own lock, console and state, and every command finds its copy
// through --state.
func TestTwoCopiesSideBySide(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "nubo.yaml", "name: twice\nservices:\n  idle: {run: sleep 600}\nlocal: {console: \"127.0.0.1:0\"}\n")
	states := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	for _, st := range states {
		startUp(t, dir, nil, "--state", st)
	}
	var got []apitype.Status
	for _, st := range states {
		var s apitype.Status
		nubotest.WaitFor(t, 60*time.Second, func() error {
			r := runBinary(t, dir, "--state", st, "status", "-o", "json")
			if r.code != 0 {
				return fmt.Errorf("%s", r)
			}
			return json.Unmarshal([]byte(r.stdout), &s)
		})
		got = append(got, s)
	}
	if got[0].PID == got[1].PID || got[0].Console == got[1].Console || got[0].StateDir == got[1].StateDir {
		t.Fatalf("the two copies share an engine: %+v / %+v", got[0], got[1])
	}
	for i, st := range states {
		if got[i].StateDir != st {
			t.Errorf("copy %d reports state %q, want %q", i, got[i].StateDir, st)
		}
		if _, err := os.Stat(filepath.Join(st, "engine.lock")); err != nil {
			t.Errorf("copy %d has no lock in its state directory: %v", i, err)
		}
	}
	r := runBinary(t, dir, "--state", states[0], "status")
	if !strings.Contains(r.stdout, "state "+states[0]) || !strings.Contains(r.stdout, "broker nats://") {
		t.Errorf("status does not print the addresses and the state:\n%s", r)
	}
	if r := runBinary(t, dir, "--state", states[0], "down"); r.code != 0 {
		t.Fatalf("down of the first copy: %s", r)
	}
	if r := runBinary(t, dir, "--state", states[1], "status", "-o", "json"); r.code != 0 {
		t.Errorf("the second copy stopped with the first: %s", r)
	}
}
