package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// otlpWriter turns OTLP metrics into samples in the TSDB with Prometheus'
// own translator (the one behind Prometheus' /api/v1/otlp/v1/metrics), set
// as Prometheus' default OTLP configuration: names escaped to
// underscores with unit and type suffixes (a counter "http.requests" is
// http_requests_total), job from service.namespace/service.name, instance
// from service.instance.id, the other resource attributes in target_info,
// explicit-bucket histograms as classic _bucket/_sum/_count series,
// exponential histograms as native histograms, delta temporality refused.
type otlpWriter struct {
	store  *Store
	labels map[string]string
	pool   sync.Pool // of *prometheusremotewrite.PrometheusConverter
}

func newOTLPWriter(store *Store, extra map[string]string) *otlpWriter {
	w := &otlpWriter{store: store, labels: extra}
	w.pool.New = func() any { return prometheusremotewrite.NewPrometheusConverter(nil) }
	return w
}

// write appends md's samples and commits them. A sample the TSDB refuses
// (out of order, too old) is counted in rejected and the rest are kept, as
// an OTLP receiver's partial success says; err says why something was
// rejected. Only a failing commit loses the whole request.
func (w *otlpWriter) write(ctx context.Context, md pmetric.Metrics) (rejected int, err error) {
	cfg := config.DefaultOTLPConfig
	app := &countingAppender{AppenderV2: w.store.Appender(ctx)}
	conv := w.pool.Get().(*prometheusremotewrite.PrometheusConverter)
	conv.Reset(app)
	defer func() {
		conv.Reset(nil)
		w.pool.Put(conv)
	}()
	_, convErr := conv.FromMetrics(ctx, md, prometheusremotewrite.Settings{
		ExternalLabels:                       w.labels,
		AddMetricSuffixes:                    cfg.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:                            !cfg.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes:            prometheusremotewrite.NewPromoteResourceAttributes(cfg),
		KeepIdentifyingResourceAttributes:    cfg.KeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              cfg.ConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 cfg.PromoteScopeMetadata,
		LookbackDelta:                        w.store.opts.LookbackDelta,
		LabelNameUnderscoreSanitization:      cfg.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: cfg.LabelNamePreserveMultipleUnderscores,
	})
	if errors.Is(convErr, context.Canceled) || errors.Is(convErr, context.DeadlineExceeded) {
		_ = app.Rollback()
		return md.DataPointCount(), fmt.Errorf("metrics: otlp: %w", convErr)
	}
	if err := app.Commit(); err != nil {
		return md.DataPointCount(), fmt.Errorf("metrics: otlp: commit: %w", err)
	}
	// Metrics the translator skipped whole (delta temporality, an unknown
	// type) are counted by their data points; samples the TSDB refused, one
	// each.
	rejected = app.failed + skippedPoints(md)
	if app.failed > 0 {
		convErr = errors.Join(convErr, fmt.Errorf("%d samples refused by the TSDB, the first: %w", app.failed, app.firstErr))
	}
	if convErr != nil {
		return rejected, fmt.Errorf("metrics: otlp: %w", convErr)
	}
	return rejected, nil
}

// skippedPoints counts the data points of the metrics the translator
// refuses whole: sums and histograms whose temporality is not cumulative
// (Prometheus stores deltas only behind a feature flag) and metrics of no
// type.
func skippedPoints(md pmetric.Metrics) int {
	n := 0
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					if m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						n += m.Sum().DataPoints().Len()
					}
				case pmetric.MetricTypeHistogram:
					if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						n += m.Histogram().DataPoints().Len()
					}
				case pmetric.MetricTypeExponentialHistogram:
					if m.ExponentialHistogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						n += m.ExponentialHistogram().DataPoints().Len()
					}
				case pmetric.MetricTypeEmpty:
					n++
				}
			}
		}
	}
	return n
}

// countingAppender keeps appending past a sample the TSDB refuses, so one
// out-of-order series does not lose the others of the request, and counts
// the refusals.
type countingAppender struct {
	storage.AppenderV2
	failed   int
	firstErr error
}

func (a *countingAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	r, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		var partial *storage.AppendPartialError
		if errors.As(err, &partial) {
			return r, nil // only exemplars were refused; the sample is in
		}
		a.failed++
		if a.firstErr == nil {
			a.firstErr = fmt.Errorf("%s: %w", ls.Get(labels.MetricName), err)
		}
		return 0, nil
	}
	return r, nil
}
