package tracing

// testdata/otelsender, which the tests build, uses the OpenTelemetry SDK;
// go mod tidy does not look into testdata, so these imports keep its
// modules in go.mod.
import (
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/sdk/trace"
)
