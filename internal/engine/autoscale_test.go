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

// TestAutoscaleUpAndDown burns CPU in real processes: the HPA algorithm
// scales the service up to max, then back to min once the load stops and the
// (shortened) stabilization window has passed.
func TestAutoscaleUpAndDown(t *testing.T) {
	dir := t.TempDir()
	load := filepath.Join(dir, "load")
	os.WriteFile(load, nil, 0o644)
	app := writeSpec(t, dir, fmt.Sprintf(`
name: hpa
services:
  api:
    run: CHILD -serve -burn 0.3 -burn-file %s
    port: 8080
    resources: {cpu: 100m}
    scaling: {min: 1, max: 3, targetCPU: 50}
local:
  supervisor: {autoscaleInterval: 300ms, scaleDownStabilization: 2s, sampleInterval: 200ms}
`, load))
	e := startEngine(t, app)
	replicas := func() int { return e.Status().Services[0].Desired }
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if n := replicas(); n != 3 {
			return fmt.Errorf("%d replicas, want 3", n)
		}
		return nil
	})
	os.Remove(load)
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if n := replicas(); n != 1 {
			return fmt.Errorf("%d replicas, want 1", n)
		}
		return nil
	})
	ev := strings.Join(e.events(), "\n")
	if !strings.Contains(ev, "-> 3") || !strings.Contains(ev, "-> 1") {
		t.Errorf("scaling decisions are not in the output with their reasons:\n%s", ev)
	}
	if sc := e.Status().Services[0].Scaling; sc == nil || sc.LastDecision == "" {
		t.Errorf("status lacks the last scaling decision: %+v", sc)
	}
}
