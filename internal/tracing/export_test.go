package tracing

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestExportSendsEverySpan exports what a tracer records and receives to
// a second OTLP receiver (a test server decoding OTLP with the collector's
// own types), with the spec's headers: every span arrives, once, with its
// service and attributes.
func TestExportSendsEverySpan(t *testing.T) {
	var mu sync.Mutex
	got := map[SpanID]Span{}
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := ptraceotlp.NewExportRequest()
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || req.UnmarshalProto(body) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		spans, rejected, _ := FromTraces(req.Traces())
		mu.Lock()
		defer mu.Unlock()
		auth = append(auth, r.Header.Get("Authorization"))
		for _, s := range spans {
			got[s.SpanID] = s
		}
		if rejected > 0 {
			t.Errorf("%d spans without IDs exported", rejected)
		}
	}))
	defer srv.Close()
	exp, err := NewExporter(srv.URL, map[string]string{"Authorization": "Bearer t0k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := NewTracer(nil)
	tr.SetStore(st)
	tr.SetExporter(exp)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tr.Run(ctx) }()
	go func() { defer wg.Done(); exp.Run(ctx) }()

	const n = 1500
	for i := range n {
		sp := Span{TraceID: TraceID{byte(i), byte(i >> 8), 1}, SpanID: SpanID{byte(i), byte(i >> 8), 1}, Name: "op",
			Service: []string{"web", "users"}[i%2], Start: time.Now().UnixNano(), End: time.Now().UnixNano(),
			Attrs: []Attr{Int("i", int64(i))}}
		if i%3 == 0 {
			tr.Receive([]Span{sp}) // as from the OTLP receiver
		} else {
			tr.Record(sp) // as from a hop
		}
	}
	nubotest.WaitFor(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != n {
			return &countError{len(got), n}
		}
		return nil
	})
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for id, s := range got {
		if v, _ := s.Attr("i"); v == "" || s.Service == "" || s.SpanID != id {
			t.Fatalf("span arrived as %+v", s)
		}
	}
	for _, a := range auth {
		if a != "Bearer t0k" {
			t.Fatalf("export header %q, want the spec's", a)
		}
	}
	if s := exp.Stats(); s.Sent != n || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
}

type countError struct{ got, want int }

func (e *countError) Error() string { return fmt.Sprintf("%d of %d so far", e.got, e.want) }

// TestDeadExportEndpointNeverBlocks exports to an address where nothing
// listens: recording and enqueueing return at once whatever the endpoint
// does, and what cannot be sent is counted as failed or dropped at the
// bounded queue, never waited for.
func TestDeadExportEndpointNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	exp, err := NewExporter(dead, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp.backoff = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { exp.Run(ctx); close(done) }()
	// Three times the queue: Enqueue must drop rather than wait for the
	// sender, which is busy failing.
	for range 3 * exportQueue / 512 {
		batch := make([]Span, 512)
		for i := range batch {
			batch[i] = Span{TraceID: TraceID{1}, SpanID: SpanID{byte(i), 1}}
		}
		exp.Enqueue(batch...)
	}
	nubotest.WaitFor(t, 20*time.Second, func() error {
		if s := exp.Stats(); s.Failed == 0 {
			return &countError{int(s.Failed), 1}
		}
		return nil
	})
	cancel()
	<-done
	s := exp.Stats()
	if s.Dropped == 0 || s.Sent != 0 || s.Dropped+s.Failed+uint64(s.Queued) > 3*exportQueue {
		t.Errorf("stats %+v: want drops at the queue, failures and nothing sent", s)
	}
	if _, err := NewExporter("jaeger:4318", nil, nil); err == nil {
		t.Error("an endpoint without a scheme is accepted")
	}
}
