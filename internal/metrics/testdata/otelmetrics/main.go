// Command otelmetrics is a service instrumented with the OpenTelemetry Go
// SDK's metrics, configured by the environment alone
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES),
// as nubo sets it: it records a counter, a gauge and a histogram and sends
// them once with the OTLP/HTTP metric exporter as it stops.
package main

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "otelmetrics:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx) // endpoint, protocol and compression from the environment
	if err != nil {
		return err
	}
	// The periodic reader's interval is long: Shutdown collects and sends
	// once, so the test sees exactly one export.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	m := mp.Meter("otelmetrics")
	orders, err := m.Int64Counter("shop.orders", metric.WithUnit("{order}"), metric.WithDescription("Orders placed."))
	if err != nil {
		return err
	}
	queue, err := m.Int64Gauge("shop.queue.depth", metric.WithDescription("Orders waiting."))
	if err != nil {
		return err
	}
	latency, err := m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	if err != nil {
		return err
	}
	paid := metric.WithAttributes(attribute.String("order.state", "paid"))
	orders.Add(ctx, 3, paid)
	orders.Add(ctx, 2, paid)
	queue.Record(ctx, 7)
	for _, v := range []float64{0.05, 0.2, 0.3, 2} {
		latency.Record(ctx, v, metric.WithAttributes(attribute.String("http.route", "/orders")))
	}
	return mp.Shutdown(ctx)
}
