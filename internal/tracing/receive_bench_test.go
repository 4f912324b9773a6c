package tracing

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// BenchmarkReceive is the receiver and the store alone, without a network:
// OTLP/HTTP protobuf export requests of 512 spans (traces of 10 spans, 8
// attributes a span), as bench/tracing/load sends them, decoded, written
// to a segment file and indexed. It reports spans/s.
func BenchmarkReceive(b *testing.B) {
	st, err := OpenStore(StoreConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tr := NewTracer(nil)
	tr.SetStore(st)
	h := (&Receiver{Spans: tr.Receive}).Handler()
	const spans = 512
	bodies := make([][]byte, 16)
	for i := range bodies {
		bodies[i] = exportBody(b, i, spans)
	}
	b.SetBytes(int64(len(bodies[0])))
	start, cpu0 := time.Now(), cpuTime()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		i++
	}
	b.ReportMetric(float64(i*spans)/time.Since(start).Seconds(), "spans/s")
	// CPU time too: on a loaded machine the wall time is mostly waiting.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(i*spans), "cpu-ns/span")
}

// cpuTime is the process' user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func exportBody(b *testing.B, seed, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", seed%4))
	rs.Resource().Attributes().PutStr("host.name", "bench")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("bench")
	now := time.Now()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		var tid [16]byte
		tid[0], tid[1], tid[2] = byte(seed), byte(i/10), byte(i/10>>8)
		tid[15] = 1
		var sid [8]byte
		sid[0], sid[1], sid[7] = byte(i), byte(i>>8), 1
		sp.SetTraceID(pcommon.TraceID(tid))
		sp.SetSpanID(pcommon.SpanID(sid))
		if i%10 != 0 {
			var pid [8]byte
			pid[0], pid[1], pid[7] = byte(i-1), byte((i-1)>>8), 1
			sp.SetParentSpanID(pcommon.SpanID(pid))
		}
		sp.SetName(fmt.Sprintf("GET /api/%d", i%7))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Microsecond)))
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", fmt.Sprintf("/api/%d", i))
		a.PutInt("http.response.status_code", 200)
		a.PutStr("server.address", "orders")
		a.PutInt("server.port", 8080)
		a.PutStr("user_agent.original", "bench/1.0")
		a.PutBool("cache.hit", i%2 == 0)
		a.PutDouble("load", 0.5)
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return body
}
