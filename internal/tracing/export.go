package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Export bounds: a down endpoint costs at most the queue's memory, never a
// request's time.
const (
	exportQueue   = 8192
	exportBatch   = 512
	exportPeriod  = time.Second
	exportTimeout = 10 * time.Second
	exportTries   = 4
)

// Exporter sends spans to another OTLP/HTTP endpoint (tracing.export.otlp)
// in protobuf batches of up to 512, retrying a failed batch with backoff.
// Enqueue never blocks: past the bounded queue spans are dropped and
// counted.
type Exporter struct {
	url     string
	headers map[string]string
	client  *http.Client
	log     *slog.Logger
	q       chan Span
	backoff time.Duration

	sent, dropped, failed atomic.Uint64
}

// NewExporter makes an exporter to endpoint (http://host:4318, the path
// /v1/traces added unless it has one) with extra headers.
func NewExporter(endpoint string, headers map[string]string, log *slog.Logger) (*Exporter, error) {
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("tracing.export.otlp %q: want an http:// or https:// URL", endpoint)
	}
	url := endpoint
	if !strings.HasSuffix(url, "/v1/traces") {
		url = strings.TrimSuffix(url, "/") + "/v1/traces"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exporter{url: url, headers: headers, log: log, q: make(chan Span, exportQueue),
		client: &http.Client{Timeout: exportTimeout}, backoff: 500 * time.Millisecond}, nil
}

// Enqueue adds spans to the queue, dropping what does not fit.
func (e *Exporter) Enqueue(spans ...Span) {
	for i := range spans {
		select {
		case e.q <- spans[i]:
		default:
			e.dropped.Add(1)
		}
	}
}

// ExportStats count what an exporter did.
type ExportStats struct {
	Sent, Dropped, Failed uint64
	Queued                int
}

// Stats says what was sent, dropped at the queue, and lost after every
// retry failed.
func (e *Exporter) Stats() ExportStats {
	return ExportStats{Sent: e.sent.Load(), Dropped: e.dropped.Load(), Failed: e.failed.Load(), Queued: len(e.q)}
}

// Run sends batches until ctx ends, then sends what is queued once more
// (bounded by exportTimeout).
func (e *Exporter) Run(ctx context.Context) {
	tick := time.NewTicker(exportPeriod)
	defer tick.Stop()
	batch := make([]Span, 0, exportBatch)
	flush := func(ctx context.Context) {
		if len(batch) > 0 {
			e.send(ctx, batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
			defer cancel()
			for {
				select {
				case sp := <-e.q:
					batch = append(batch, sp)
					if len(batch) == exportBatch {
						flush(fctx)
					}
				default:
					flush(fctx)
					return
				}
			}
		case sp := <-e.q:
			batch = append(batch, sp)
			if len(batch) == exportBatch {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		}
	}
}

// send posts one batch, retrying what the OTLP spec calls retryable (429,
// 502, 503, 504, and failed connections).
func (e *Exporter) send(ctx context.Context, spans []Span) {
	body, err := ptraceotlp.NewExportRequestFromTraces(ToTraces(spans)).MarshalProto()
	if err != nil {
		e.failed.Add(uint64(len(spans)))
		return
	}
	wait := e.backoff
	for try := 1; ; try++ {
		// A request under way finishes (bounded by the client's timeout)
		// when ctx ends: its spans may already be there.
		err = e.post(context.WithoutCancel(ctx), body)
		if err == nil {
			e.sent.Add(uint64(len(spans)))
			return
		}
		var perm permanentError
		if try == exportTries || ctx.Err() != nil || asPermanent(err, &perm) {
			e.failed.Add(uint64(len(spans)))
			e.log.Warn("tracing: export failed", "endpoint", e.url, "spans", len(spans), "err", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
}

type permanentError struct{ error }

func asPermanent(err error, p *permanentError) bool {
	pe, ok := err.(permanentError)
	if ok {
		*p = pe
	}
	return ok
}

func (e *Exporter) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Type", ctProto)
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
		return fmt.Errorf("%s answered %s", e.url, resp.Status)
	}
	return permanentError{fmt.Errorf("%s answered %s", e.url, resp.Status)}
}
