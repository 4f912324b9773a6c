package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestCostOfARunningSystem: nubo cost prints the cost series of a running
// engine at the spec's prices, with a monthly projection of 730 hours.
func TestCostOfARunningSystem(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "nubo.yaml", `name: priced
services:
  idle: {run: sleep 600}
cost: {vcpuHour: 0.04, memoryGiBHour: 1000}
observability:
  metrics: {interval: 1s}
local:
  console: "127.0.0.1:0"
  supervisor: {sampleInterval: 200ms}
`)
	state := filepath.Join(dir, "state")
	up := exec.Command(nuboBin, "--state", state, "up", "--no-watch")
	up.Dir = dir
	out := &nubotest.Buffer{}
	up.Stdout, up.Stderr = out, out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = up.Process.Kill()
		_ = up.Wait()
		if t.Failed() {
			t.Logf("nubo up:\n%s", out)
		}
	})
	var doc apitype.CostReport
	nubotest.WaitFor(t, 60*time.Second, func() error {
		r := runBinary(t, dir, "--state", state, "cost", "-o", "json")
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			return err
		}
		for _, row := range doc.Rows {
			if row.Kind == "service" && row.Name == "idle" && row.PerHour > 0 {
				return nil
			}
		}
		return fmt.Errorf("no cost of idle yet: %+v", doc.Rows)
	})
	for _, row := range doc.Rows {
		if math.Abs(row.Month-row.PerHour*730) > 1e-9*row.Month {
			t.Errorf("%s %s: month %g is not 730 hours of %g", row.Kind, row.Name, row.Month, row.PerHour)
		}
	}
	if doc.Currency != "USD" {
		t.Errorf("currency %q", doc.Currency)
	}
	if r := runBinary(t, dir, "--state", state, "cost"); r.code != 0 {
		t.Errorf("cost: %s", r)
	}
}
