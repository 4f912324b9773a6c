package engine

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestLogRecordsParsedFilteredAndKept: lines become records (JSON parsed),
// the spec's filter drops what it names (not printed, not stored), and the
// records are searched by level and found again after a restart.
func TestLogRecordsParsedFilteredAndKept(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: records
services:
  api: {run: "CHILD -say '{\"level\":\"error\",\"msg\":\"boom\",\"trace_id\":\"t9\"}'"}
  probe: {run: "CHILD -say 'GET /health 200'"}
observability:
  logs:
    parsers:
      - {name: access, pattern: '^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3})$'}
    filters:
      - {name: no-health, condition: '.path == "/health"', action: drop}
`)
	state := filepath.Join(dir, "state")
	e := startEngine(t, app, func(o *Options) { o.StateDir = state })
	waitReady(t, e)
	get := func(e *testEngine, query string) string {
		t.Helper()
		resp, err := http.Get("http://" + e.admin.Addr() + "/admin/v1/logs?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("logs?%s: %d %s", query, resp.StatusCode, b)
		}
		return string(b)
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if !strings.Contains(get(e, "level=error"), `"traceId":"t9"`) {
			return io.EOF
		}
		return nil
	})
	if strings.Contains(e.out.String(), "GET /health") || strings.Contains(get(e, ""), "GET /health") {
		t.Error("the dropped line was printed or stored")
	}
	if got := get(e, "level=error&service=probe"); got != "" {
		t.Errorf("the probe service has error records: %s", got)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A new engine on the same state, whose api no longer prints the
	// record, finds the first one's.
	delete(app.Services, "api")
	e2 := startEngine(t, app, func(o *Options) { o.StateDir = state })
	if n := strings.Count(get(e2, "trace=t9"), `"msg":"boom"`); n < 1 {
		t.Error("the records did not survive the restart")
	}
}
