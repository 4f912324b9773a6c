// Command otelsender is a service instrumented with the OpenTelemetry Go
// SDK, configured by the environment alone (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), as nubo sets it: it sends
// a trace of two spans over OTLP/HTTP protobuf and a log record of that
// trace over OTLP/HTTP JSON, gzip-compressed, then prints the trace ID.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "otelsender:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx) // endpoint and protocol from the environment
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tr := tp.Tracer("otelsender")
	ctx, root := tr.Start(ctx, "checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 201),
			attribute.String("order.id", "o-42")))
	_, child := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.Bool("db.cached", false)))
	time.Sleep(20 * time.Millisecond)
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	child.SetStatus(codes.Error, "deadlock detected")
	child.End()
	root.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		return err
	}
	sc := root.SpanContext()
	if err := sendLog(sc); err != nil {
		return err
	}
	fmt.Println(sc.TraceID().String())
	return nil
}

func sendLog(sc trace.SpanContext) error {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", os.Getenv("OTEL_SERVICE_NAME"))
	r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	r.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	r.SetSeverityNumber(plog.SeverityNumberError)
	r.Body().SetStr("order o-42 failed: deadlock detected")
	r.Attributes().PutStr("order.id", "o-42")
	r.SetTraceID(pcommon.TraceID(sc.TraceID()))
	r.SetSpanID(pcommon.SpanID(sc.SpanID()))
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(body)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")+"/v1/logs", &gz)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("logs: " + resp.Status)
	}
	return nil
}
