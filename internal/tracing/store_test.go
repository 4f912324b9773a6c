package tracing

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testSpan(trace byte, span byte, parent byte, service, name string, start time.Time, d time.Duration) Span {
	sp := Span{TraceID: TraceID{trace, 1}, SpanID: SpanID{span, 1}, Service: service, Name: name,
		Start: start.UnixNano(), End: start.Add(d).UnixNano(), Kind: KindServer}
	if parent != 0 {
		sp.Parent = SpanID{parent, 1}
	}
	return sp
}

func TestStoreSurvivesRestartAndSearches(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	st, err := OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	slow := testSpan(1, 1, 0, "web", "GET /", now, 300*time.Millisecond)
	slow.Attrs = []Attr{String("http.request.method", "GET"), Int("http.response.status_code", 200)}
	child := testSpan(1, 2, 1, "users", "GET /users", now.Add(time.Millisecond), 100*time.Millisecond)
	failed := testSpan(2, 1, 0, "web", "POST /orders", now.Add(time.Second), 5*time.Millisecond)
	failed.Status = StatusError
	if err := st.Add([]Span{slow, child}); err != nil {
		t.Fatal(err)
	}
	if err := st.Add([]Span{failed}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn line at the end (a crash mid-write) is skipped.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spans"))
	f, _ := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"tid":"01`)
	f.Close()

	st, err = OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s := st.Stats(); s.Spans != 3 || s.Traces != 2 {
		t.Fatalf("after restart: %+v, want 3 spans in 2 traces", s)
	}
	got, err := st.Trace(slow.TraceID)
	if err != nil || len(got) != 2 || got[0].Name != "GET /" || got[1].Parent != slow.SpanID {
		t.Fatalf("Trace = %+v, %v", got, err)
	}
	if v, _ := got[0].Attr("http.response.status_code"); v != "200" {
		t.Errorf("attribute lost: %+v", got[0].Attrs)
	}
	cases := []struct {
		name string
		q    Query
		want []TraceID
	}{
		{"all, newest first", Query{}, []TraceID{failed.TraceID, slow.TraceID}},
		{"service", Query{Service: "users"}, []TraceID{slow.TraceID}},
		{"operation", Query{Service: "web", Operation: "POST /orders"}, []TraceID{failed.TraceID}},
		{"min duration", Query{MinDuration: 200 * time.Millisecond}, []TraceID{slow.TraceID}},
		{"max duration", Query{MaxDuration: 10 * time.Millisecond}, []TraceID{failed.TraceID}},
		{"error", Query{Error: true}, []TraceID{failed.TraceID}},
		{"error tag", Query{Tags: map[string]string{"error": "true"}}, []TraceID{failed.TraceID}},
		{"attribute", Query{Tags: map[string]string{"http.request.method": "GET"}}, []TraceID{slow.TraceID}},
		{"attribute no match", Query{Tags: map[string]string{"http.request.method": "PUT"}}, nil},
		{"time range", Query{Start: now.Add(500 * time.Millisecond)}, []TraceID{failed.TraceID}},
		{"limit", Query{Limit: 1}, []TraceID{failed.TraceID}},
	}
	for _, c := range cases {
		ids, err := st.Search(c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(ids) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, ids, c.want)
			continue
		}
		for i := range ids {
			if ids[i] != c.want[i] {
				t.Errorf("%s: got %v, want %v", c.name, ids, c.want)
			}
		}
	}
	if svcs := st.Services(); len(svcs) != 2 || svcs[0] != "users" || svcs[1] != "web" {
		t.Errorf("Services = %v", svcs)
	}
	if ops := st.Operations("web"); len(ops) != 2 {
		t.Errorf("Operations(web) = %v", ops)
	}
}

func TestStoreDropsPastRetentionAndSize(t *testing.T) {
	dir := t.TempDir()
	clock := time.Now()
	now := func() time.Time { return clock }
	st, err := OpenStore(StoreConfig{Dir: dir, Retention: 2 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	old := testSpan(1, 1, 0, "web", "old", clock, time.Millisecond)
	if err := st.Add([]Span{old}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(3 * time.Hour)
	young := testSpan(2, 1, 0, "web", "young", clock, time.Millisecond)
	if err := st.Add([]Span{young}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Trace(old.TraceID); len(got) != 0 {
		t.Errorf("a span past retention is still found: %+v", got)
	}
	if ops := st.Operations("web"); len(ops) != 1 || ops[0] != "young" {
		t.Errorf("operations after pruning: %v", ops)
	}
	st.Close()
	// And at open, with a clock further on, the rest goes too.
	clock = clock.Add(3 * time.Hour)
	st, err = OpenStore(StoreConfig{Dir: dir, Retention: 2 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Stats(); s.Spans != 0 || s.Bytes != 0 {
		t.Errorf("after open past retention: %+v", s)
	}
	st.Close()

	// Size: with a bound of 16 KiB, segments of 1 KiB roll and the
	// oldest go; the folder stays near the bound.
	dir = t.TempDir()
	st, err = OpenStore(StoreConfig{Dir: dir, MaxBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 400 {
		if err := st.Add([]Span{testSpan(byte(i), 1, 0, "web", "op", time.Now(), time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.spans"))
	for _, f := range files {
		fi, _ := os.Stat(f)
		total += fi.Size()
	}
	if total > 16<<10+(16<<10)/maxSegments+512 {
		t.Errorf("folder holds %d bytes, bound 16 KiB", total)
	}
	if s := st.Stats(); s.Bytes != total || s.Spans == 0 || s.Spans >= 400 {
		t.Errorf("stats %+v, files %d bytes", s, total)
	}
}
