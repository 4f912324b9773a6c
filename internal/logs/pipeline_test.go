package logs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

func pipeline(t *testing.T, cfg spec.Logs) *Pipeline {
	t.Helper()
	p, err := NewPipeline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParse(t *testing.T) {
	p := pipeline(t, spec.Logs{Parsers: []*spec.LogParser{{
		Name: "access", Services: []string{"orders"},
		Pattern: `^(?P<ip>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3})$`,
	}}})
	for _, tt := range []struct {
		service, text string
		level, trace  string
		field, value  string
	}{
		{"users", `{"level":"ERROR","msg":"db down","trace_id":"abc123"}`, "error", "abc123", "msg", "db down"},
		{"users", `{"severity":"warning","traceId":"t2"}`, "warn", "t2", "severity", "warning"},
		{"users", `time=2026-12-07 level=info msg="user created" id=42`, "info", "", "msg", "user created"},
		{"orders", `10.0.0.1 GET /health 200`, "", "", "path", "/health"},
		{"users", `10.0.0.1 GET /health 200`, "", "", "", ""}, // the parser is for orders only
		{"users", `plain words = not logfmt`, "", "", "", ""},
	} {
		l := Line{Service: tt.service, Text: tt.text}
		if !p.Process(&l) {
			t.Fatalf("%q dropped", tt.text)
		}
		if l.Level != tt.level || l.TraceID != tt.trace {
			t.Errorf("%q: level %q trace %q, want %q %q", tt.text, l.Level, l.TraceID, tt.level, tt.trace)
		}
		if tt.field == "" && l.Fields != nil {
			t.Errorf("%q: fields %v, want none", tt.text, l.Fields)
		}
		if tt.field != "" && l.Fields[tt.field] != tt.value {
			t.Errorf("%q: field %s = %v, want %q", tt.text, tt.field, l.Fields[tt.field], tt.value)
		}
	}
}

func TestFilters(t *testing.T) {
	p := pipeline(t, spec.Logs{
		Parsers: []*spec.LogParser{{Name: "access", Pattern: `^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3})$`}},
		Filters: []*spec.LogFilter{
			{Name: "no-health", Condition: `.path == "/health"`, Action: "drop"},
			{Name: "no-tokens", Condition: `.token != null`, Action: "redact", Fields: []string{"token"}},
			{Name: "no-card", Condition: `.message | test("card=")`, Action: "redact"},
			{Name: "only-orders-and-users", Condition: `.service == "orders" or .service == "users"`, Action: "keep"},
		},
	})
	keep := func(service, text string) (Line, bool) {
		l := Line{Service: service, Text: text}
		return l, p.Process(&l)
	}
	if _, ok := keep("orders", "GET /health 200"); ok {
		t.Error("a health check was kept")
	}
	if l, ok := keep("orders", "GET /orders 200"); !ok || l.Fields["status"] != "200" {
		t.Errorf("a request was dropped or not parsed: %+v", l)
	}
	l, ok := keep("users", `{"msg":"login","token":"s3cr3t"}`)
	if !ok || strings.Contains(l.Text, "s3cr3t") || l.Fields["token"] != Redacted {
		t.Errorf("the token was not redacted: %+v", l)
	}
	if l, ok := keep("users", "paid with card=4242"); !ok || l.Text != Redacted {
		t.Errorf("the message was not redacted: %+v", l)
	}
	// A value spelled with JSON escapes in the text is gone from it too.
	l, ok = keep("users", `{"msg":"login","token":"p\u00e4ss\"word"}`)
	if !ok || strings.Contains(l.Text, "p\\u00e4ss") || strings.Contains(l.Text, "päss") || !strings.Contains(l.Text, Redacted) {
		t.Errorf("an escaped token was left in the text: %s", l.Text)
	}
	l, ok = keep("users", `user=ada token="a b" level=info`)
	if !ok || strings.Contains(l.Text, "a b") || !strings.Contains(l.Text, "token="+strconv.Quote(Redacted)) && !strings.Contains(l.Text, "token="+Redacted) {
		t.Errorf("a logfmt token was left in the text: %s", l.Text)
	}
	if _, ok := keep("catalog", "hello"); ok {
		t.Error("keep let another service through")
	}
	// A condition that errors on a record is no match, not a drop of all.
	p2 := pipeline(t, spec.Logs{Filters: []*spec.LogFilter{{Name: "bad", Condition: `.x | test("a")`, Action: "drop"}}})
	l2 := Line{Service: "a", Text: `{"x": 12}`}
	if !p2.Process(&l2) {
		t.Error("a failing condition dropped the record")
	}
	if _, err := NewPipeline(spec.Logs{Filters: []*spec.LogFilter{{Name: "broken", Condition: `.a ==`, Action: "drop"}}}); err == nil || !strings.Contains(err.Error(), `filter "broken"`) {
		t.Errorf("a bad condition: %v", err)
	}
}

func TestDiskKeepsSearchesAndForgets(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDisk(dir, 48*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	add := func(at time.Time, service, text string) {
		l := Line{Time: at, Service: service, Stream: "stdout", Text: text}
		(*Pipeline)(nil).Process(&l)
		if err := d.Append(l); err != nil {
			t.Fatal(err)
		}
	}
	add(now.Add(-72*time.Hour), "orders", `{"level":"error","msg":"too old"}`)
	add(now.Add(-2*time.Hour), "orders", `{"level":"error","msg":"payment failed","status":"500","trace_id":"t1"}`)
	add(now.Add(-1*time.Hour), "orders", `{"level":"info","msg":"payment ok","status":"200"}`)
	add(now, "users", `{"level":"warn","msg":"slow query"}`)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn last line, as a crash mid-write leaves it.
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	f, _ := os.OpenFile(files[len(files)-1], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-`)
	f.Close()

	// Reopened, as after a restart: the old file is gone with retention.
	d, err = OpenDisk(dir, 48*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	count := func(s Search) int {
		t.Helper()
		got, err := d.Find(s)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	for name, tt := range map[string]struct {
		s    Search
		want int
	}{
		"all":         {Search{}, 3},
		"errors":      {Search{Level: "error"}, 1},
		"warn+":       {Search{Level: "warning"}, 2},
		"grep":        {Search{Grep: "payment"}, 2},
		"where":       {Search{Where: map[string]string{"status": "500"}}, 1},
		"trace":       {Search{TraceID: "t1"}, 1},
		"service":     {Search{Service: "users"}, 1},
		"since":       {Search{Since: now.Add(-90 * time.Minute)}, 2},
		"limit":       {Search{Limit: 1}, 1},
		"grep quoted": {Search{Grep: `"msg"`}, 3}, // the raw line has it: the escaped pre-check must not lose it
	} {
		if got := count(tt.s); got != tt.want {
			t.Errorf("%s: %d records, want %d", name, got, tt.want)
		}
	}

	// The size bound drops the oldest files first.
	small, err := OpenDisk(dir, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	left, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(left) != 0 {
		t.Errorf("past the size bound, %d files are left", len(left))
	}
}
