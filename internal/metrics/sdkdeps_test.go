package metrics

// testdata/otelmetrics, which the tests build, uses the OpenTelemetry
// SDK's metrics; go mod tidy does not look into testdata, so these imports
// keep its modules in go.mod.
import (
	_ "go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	_ "go.opentelemetry.io/otel/sdk/metric"
)
