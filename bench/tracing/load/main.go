// Command load sends OTLP/HTTP protobuf export requests of -batch spans
// each (10 spans a trace, 8 attributes a span, as an instrumented HTTP
// service makes them) from -c connections for -d, and prints the spans a
// second the receiver took (answers other than 200 count as failures).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:4318/v1/traces", "OTLP/HTTP traces endpoint")
	batch := flag.Int("batch", 512, "spans per request")
	conns := flag.Int("c", 4, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.Parse()
	// 64 different bodies, so that IDs differ from request to request.
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = body(i, *batch)
	}
	var spans, failed atomic.Int64
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for i := w; time.Now().Before(deadline); i += *conns {
				resp, err := client.Post(*url, "application/x-protobuf", bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					log.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				spans.Add(int64(*batch))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("%.0f spans/s (%d spans in %.1fs, %d failed requests)\n", float64(spans.Load())/el, spans.Load(), el, failed.Load())
}

func body(seed, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench")
	rs.Resource().Attributes().PutStr("service.namespace", "shop")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("bench")
	now := time.Now()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		trace := seed*n/10 + i/10
		sp.SetTraceID(pcommon.TraceID{byte(trace), byte(trace >> 8), byte(trace >> 16), byte(seed), 1})
		sp.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), byte(seed), 1})
		if i%10 != 0 {
			sp.SetParentSpanID(pcommon.SpanID{byte(i - i%10), byte((i - i%10) >> 8), byte(seed), 1})
		}
		sp.SetName(fmt.Sprintf("GET /items/{id} %d", i%7))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", fmt.Sprintf("/items/%d", i))
		a.PutStr("http.route", "/items/{id}")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("server.address", "items")
		a.PutStr("network.peer.address", "10.0.0.7")
		a.PutStr("user_agent.original", "bench/1.0")
		a.PutInt("http.request.body.size", 1234)
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		log.Fatal(err)
	}
	return b
}
