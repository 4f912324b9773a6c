package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// TestTracesCommands lists traces and prints one as a waterfall, from the
// query API over a real store.
func TestTracesCommands(t *testing.T) {
	t.Parallel()
	st, err := tracing.OpenStore(tracing.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tr := tracing.NewTracer(nil)
	tr.SetStore(st)
	start := time.Now().Add(-time.Minute)
	at := func(ms int) int64 { return start.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	id := tracing.TraceID{0x4b, 0xf9, 1}
	spans := []tracing.Span{
		{TraceID: id, SpanID: tracing.SpanID{1}, Service: "gateway", Name: "GET /orders", Start: at(0), End: at(100), Kind: tracing.KindServer},
		{TraceID: id, SpanID: tracing.SpanID{2}, Parent: tracing.SpanID{1}, Service: "gateway", Name: "orders:80/*", Start: at(10), End: at(90), Kind: tracing.KindClient},
		{TraceID: id, SpanID: tracing.SpanID{3}, Parent: tracing.SpanID{2}, Service: "orders", Name: "SELECT", Start: at(50), End: at(90), Status: tracing.StatusError},
		{TraceID: tracing.TraceID{9}, SpanID: tracing.SpanID{9}, Service: "web", Name: "GET /", Start: at(0), End: at(1)},
	}
	if err := st.Add(spans); err != nil {
		t.Fatal(err)
	}
	// Log records on disk: two of the trace (one within its time, one
	// two hours before it, outside the range searched), one of another.
	disk, err := logs.OpenDisk(t.TempDir(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	for _, l := range []apitype.LogLine{
		{Time: time.Unix(0, at(-2*3600*1000)), Service: "orders", Stream: "stdout", Text: "an older run of the trace id", TraceID: id.String()},
		{Time: time.Unix(0, at(60)), Service: "orders", Stream: "stdout", Level: "error", Text: "SELECT failed: deadlock", TraceID: id.String()},
		{Time: time.Unix(0, at(70)), Service: "web", Stream: "stdout", Text: "another trace", TraceID: tracing.TraceID{9}.String()},
		{Time: time.Unix(0, at(80)), Service: "orders", Stream: "otlp", Replica: -1, Text: "rolled back", TraceID: id.String()},
	} {
		if err := disk.Append(l); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/jaeger/api/", tracing.QueryHandler(tr, "/jaeger"))
	mux.Handle("GET /admin/v1/traces/{id}/logs", tracing.LogsHandler(tr, func(traceID string, since, until time.Time, limit int) ([]apitype.LogLine, error) {
		return disk.Find(logs.Search{TraceID: traceID, Since: since, Until: until, Limit: limit})
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	r := runInProcess(t, "traces", "--error", "--min-duration", "30ms", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("nubo traces:\n%s", r)
	}
	if !regexp.MustCompile(`TRACE ID\s+STARTED\s+DURATION\s+SPANS\s+ROOT\s+ERRORS\n` + id.String() + `\s+\S+\s+100ms\s+3\s+gateway: GET /orders\s+1\n$`).MatchString(r.stdout) {
		t.Errorf("nubo traces output:\n%s", r.stdout)
	}
	if r := runInProcess(t, "traces", "--service", "nobody", "--addr", addr); r.code != 0 || !strings.Contains(r.stdout, "No traces match.") {
		t.Errorf("no match:\n%s", r)
	}
	if r := runInProcess(t, "traces", "--since", "soon", "--addr", addr); r.code == 0 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("bad --since:\n%s", r)
	}

	r = runInProcess(t, "trace", id.String(), "--addr", addr)
	if r.code != 0 {
		t.Fatalf("nubo trace:\n%s", r)
	}
	for _, re := range []string{
		`trace ` + id.String() + `: 3 spans, 100ms, 1 failed`,
		`\n gateway\s+GET /orders\s+100ms\s+\|█{40}\|\n`,
		`\n   gateway\s+orders:80/\*\s+80ms\s+\|    █{32}    \|\n`,
		`\n!    orders\s+SELECT\s+40ms\s+\|\s{20}█{16}\s{4}\|\n`,
		// The trace's log records within its time, oldest first.
		`\nlogs: 2 records\n\norders-1\s+\| SELECT failed: deadlock\norders-0\s+\| rolled back\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("waterfall lacks %s:\n%s", re, r.stdout)
		}
	}
	if r := runInProcess(t, "trace", "0123456789abcdef0123456789abcdef", "--addr", addr); r.code == 0 || !strings.Contains(r.stderr, "trace not found") {
		t.Errorf("unknown trace:\n%s", r)
	}
	r = runInProcess(t, "trace", tracing.TraceID{9}.String(), "--addr", addr)
	if r.code != 0 || !strings.Contains(r.stdout, "web-1 | another trace") {
		t.Errorf("nubo trace of the other trace:\n%s", r)
	}

	// The API: the records of a trace the store no longer has are
	// searched for in all records; a bad id or limit is a 400.
	var tl apitype.TraceLogs
	gone := tracing.TraceID{0x77}
	if err := disk.Append(apitype.LogLine{Time: time.Now(), Service: "web", Text: "of a gone trace", TraceID: gone.String()}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/admin/v1/traces/" + gone.String() + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil || resp.StatusCode != 200 || tl.TraceID != gone.String() ||
		len(tl.Logs) != 1 || tl.Logs[0].Text != "of a gone trace" {
		t.Errorf("logs of a gone trace: %d %+v %v", resp.StatusCode, tl, err)
	}
	resp.Body.Close()
	resp, err = http.Get(srv.URL + "/admin/v1/traces/" + id.String() + "/logs?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	tl = apitype.TraceLogs{}
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil || len(tl.Logs) != 1 || tl.Logs[0].Text != "rolled back" {
		t.Errorf("limit=1: %+v %v", tl, err)
	}
	resp.Body.Close()
	for _, path := range []string{"/admin/v1/traces/xyz/logs", "/admin/v1/traces/" + id.String() + "/logs?limit=0"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, resp.StatusCode)
		}
	}
	if r := runInProcess(t, "trace", id.String(), "-o", "json", "--addr", addr); r.code != 0 || !strings.Contains(r.stdout, `"operationName": "SELECT"`) {
		t.Errorf("json:\n%s", r)
	}
}
