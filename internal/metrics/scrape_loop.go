package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// scrapeLoop scrapes one target, as a loop of Prometheus' scrape pool.
type scrapeLoop struct {
	s    *Scraper
	key  string
	lset labels.Labels // target labels, sorted
	done chan struct{} // closed when run returns
	// prev is the done channel of the loop this one replaces, if that one
	// was still ending; run waits for it.
	prev   <-chan struct{}
	cancel context.CancelFunc // set by Run before run starts

	scrapeMu sync.Mutex // held for a whole scrape; guards the fields below
	// cache maps a series as the target writes it to its labels and
	// reference, so that a steady target costs one map lookup per sample.
	cache   map[string]*cacheEntry
	symbols *labels.SymbolTable
	round   uint64

	mu           sync.Mutex // guards the fields below
	target       Target
	healthState  string
	lastError    string
	lastScrape   time.Time
	lastDuration time.Duration
	lastSamples  int
}

type cacheEntry struct {
	lset  labels.Labels
	ref   storage.SeriesRef
	round uint64 // the last round that saw the series
}

func (s *Scraper) newLoop(t Target, lset labels.Labels, key string) *scrapeLoop {
	return &scrapeLoop{
		s: s, key: key, lset: lset, done: make(chan struct{}),
		cache: map[string]*cacheEntry{}, symbols: labels.NewSymbolTable(),
		target: t, healthState: "unknown",
	}
}

func (l *scrapeLoop) setTarget(t Target) {
	l.mu.Lock()
	l.target = t
	l.mu.Unlock()
}

func (l *scrapeLoop) currentTarget() Target {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.target
}

// run scrapes at once, then every interval, until ctx ends; then it marks
// the target's series stale. A scrape that overruns the interval (it
// cannot overrun its timeout) skips the ticks it covered, as Prometheus'
// loop does.
func (l *scrapeLoop) run(ctx context.Context) {
	defer close(l.done)
	if l.prev != nil {
		select {
		case <-l.prev:
		case <-ctx.Done():
		}
	}
	interval := l.s.opts.Interval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last time.Time
	for ctx.Err() == nil {
		start := time.Now()
		if !last.IsZero() {
			l.s.metrics.intervalLength.Observe(start.Sub(last).Seconds())
		}
		last = start
		l.scrape(ctx)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	l.markStale(time.Now())
}

// scrape fetches, parses and appends the target's samples and its report
// series in one transaction. Its deadline covers all of it: a scrape that
// runs out of time keeps no sample and reports the target down. If ctx
// ends (the loop stops), nothing is written: the loop marks the series
// stale instead.
func (l *scrapeLoop) scrape(ctx context.Context) {
	l.scrapeMu.Lock()
	defer l.scrapeMu.Unlock()
	start := time.Now()
	ts := start.UnixMilli()
	l.round++
	sctx, cancel := context.WithTimeout(ctx, l.s.opts.Timeout)
	defer cancel()
	body, ctype, err := l.s.fetch(sctx, l.currentTarget())
	app := l.s.store.Appender(ctx)
	n := 0
	if err == nil {
		n, err = l.appendBody(sctx, app, body, ctype, ts)
		if err != nil {
			_ = app.Rollback()
			app = l.s.store.Appender(ctx)
		}
	}
	if ctx.Err() != nil {
		_ = app.Rollback()
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("scrape timed out after %s: %w", l.s.opts.Timeout, err)
	}
	// Series seen before and not now are stale; after a failed scrape, all.
	nan := math.Float64frombits(value.StaleNaN)
	for key, ce := range l.cache {
		if ce.round != l.round || err != nil {
			_, _ = app.Append(ce.ref, ce.lset, 0, ts, nan, nil, nil, storage.AOptions{})
			delete(l.cache, key)
		}
	}
	dur := time.Since(start)
	up := 1.0
	if err != nil {
		up = 0
		l.s.log.Debug("scrape failed", "target", l.currentTarget().URL, "err", err)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"up", up}, {"scrape_duration_seconds", dur.Seconds()}, {"scrape_samples_scraped", float64(n)}} {
		_, _ = app.Append(0, l.s.reportLabels(l.lset, r.name), 0, ts, r.v, nil, nil, storage.AOptions{})
	}
	if cerr := app.Commit(); cerr != nil {
		l.s.log.Warn("scrape: commit samples", "target", l.currentTarget().URL, "err", cerr)
	}
	l.s.metrics.duration.Observe(time.Since(start).Seconds())
	l.mu.Lock()
	l.healthState, l.lastError = "up", ""
	if err != nil {
		l.healthState, l.lastError = "down", err.Error()
	}
	l.lastScrape, l.lastDuration, l.lastSamples = start, dur, n
	l.mu.Unlock()
}

// reportNames are the series a scrape writes about itself.
var reportNames = [...]string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

func (s *Scraper) reportLabels(lset labels.Labels, name string) labels.Labels {
	b := labels.NewBuilder(lset)
	b.Set(labels.MetricName, name)
	for k, v := range s.opts.Labels {
		if b.Get(k) == "" {
			b.Set(k, v)
		}
	}
	return b.Labels()
}

// markStale marks every series of a target that went away, and its report
// series.
func (l *scrapeLoop) markStale(now time.Time) {
	l.scrapeMu.Lock()
	defer l.scrapeMu.Unlock()
	app := l.s.store.Appender(context.Background())
	ts := now.UnixMilli()
	nan := math.Float64frombits(value.StaleNaN)
	for _, ce := range l.cache {
		_, _ = app.Append(ce.ref, ce.lset, 0, ts, nan, nil, nil, storage.AOptions{})
	}
	for _, name := range reportNames {
		_, _ = app.Append(0, l.s.reportLabels(l.lset, name), 0, ts, nan, nil, nil, storage.AOptions{})
	}
	if err := app.Commit(); err != nil {
		l.s.log.Warn("scrape: commit staleness markers", "target", l.currentTarget().URL, "err", err)
	}
	l.cache = map[string]*cacheEntry{}
}

func (l *scrapeLoop) health() TargetHealth {
	l.mu.Lock()
	defer l.mu.Unlock()
	return TargetHealth{
		URL: l.target.URL, Labels: l.lset.Map(), Health: l.healthState, LastError: l.lastError,
		LastScrape: l.lastScrape, LastDuration: l.lastDuration, Samples: l.lastSamples,
	}
}

// maxBody bounds one scrape's answer.
const maxBody = 64 << 20

// errBodyTooLarge fails a scrape whose answer passes maxBody.
var errBodyTooLarge = fmt.Errorf("answer larger than the limit of %d MiB", maxBody>>20)

// acceptHeader prefers the Prometheus text format, which every client
// library writes, then OpenMetrics.
const acceptHeader = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

// fetch gets a target's answer before ctx's deadline.
func (s *Scraper) fetch(ctx context.Context, t Target) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", "nubo-scraper")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(s.opts.Timeout.Seconds(), 'f', -1, 64))
	if t.Handler != nil {
		return s.fetchInProcess(ctx, t.Handler, req)
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", fmt.Errorf("server returned HTTP status %s", resp.Status)
	}
	if resp.ContentLength > maxBody {
		s.metrics.bodyTooLarge.Inc()
		return nil, "", errBodyTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, "", fmt.Errorf("read the answer: %w", err)
	}
	if len(body) > maxBody {
		s.metrics.bodyTooLarge.Inc()
		return nil, "", errBodyTooLarge
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// fetchInProcess serves req with h (the engine's own registry). A handler
// does not have to honour the request's context, so it runs on a goroutine
// of its own and the scrape stops waiting at the deadline; the handler
// then writes into a recorder nobody reads.
func (s *Scraper) fetchInProcess(ctx context.Context, h http.Handler, req *http.Request) ([]byte, string, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, "", fmt.Errorf("in-process handler: %w", ctx.Err())
	}
	if rec.Code != http.StatusOK {
		return nil, "", fmt.Errorf("server returned HTTP status %d", rec.Code)
	}
	if rec.Body.Len() > maxBody {
		s.metrics.bodyTooLarge.Inc()
		return nil, "", errBodyTooLarge
	}
	return rec.Body.Bytes(), rec.Header().Get("Content-Type"), nil
}

// ctxCheckEvery is how many samples appendBody appends between two looks
// at its deadline: often enough that a huge answer stops within
// milliseconds of it, seldom enough to cost nothing.
const ctxCheckEvery = 1024

// appendBody parses an exposition and appends its samples at ts (or at a
// sample's own timestamp), until ctx's deadline. Samples the TSDB refuses as
// out of order or duplicated are skipped, as Prometheus does; a parse error
// fails the whole scrape. scrapeMu held.
func (l *scrapeLoop) appendBody(ctx context.Context, app storage.AppenderV2, body []byte, ctype string, ts int64) (int, error) {
	p, err := textparse.New(body, ctype, l.symbols, textparse.ParserOptions{FallbackContentType: "text/plain"})
	if p == nil {
		return 0, fmt.Errorf("unreadable answer: %w", err)
	}
	n := 0
	for entries := 1; ; entries++ {
		if entries%ctxCheckEvery == 0 && ctx.Err() != nil {
			return n, fmt.Errorf("append the answer: %w", ctx.Err())
		}
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("parse the answer: %w", err)
		}
		var (
			ser []byte
			t   *int64
			v   float64
			h   = (*histogramPair)(nil)
		)
		switch et {
		case textparse.EntrySeries:
			ser, t, v = p.Series()
		case textparse.EntryHistogram:
			var hp histogramPair
			ser, t, hp.h, hp.fh = p.Histogram()
			h = &hp
		default:
			continue
		}
		ce, ok := l.cache[string(ser)]
		if !ok {
			var lset labels.Labels
			p.Labels(&lset)
			ce = &cacheEntry{lset: l.s.mutateLabels(l.lset, lset)}
			l.cache[string(ser)] = ce
		}
		sts := ts
		if t != nil {
			sts = *t
		}
		var ref storage.SeriesRef
		if h != nil {
			ref, err = app.Append(ce.ref, ce.lset, 0, sts, 0, h.h, h.fh, storage.AOptions{})
		} else {
			ref, err = app.Append(ce.ref, ce.lset, 0, sts, v, nil, nil, storage.AOptions{})
		}
		n++
		switch {
		case err == nil:
			ce.ref = ref
		case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrOutOfBounds),
			errors.Is(err, storage.ErrTooOldSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
			// Kept as Prometheus keeps them: dropped, the scrape goes on.
		default:
			return n, fmt.Errorf("append %s: %w", ce.lset, err)
		}
		ce.round = l.round
	}
}

// histogramPair is a native histogram sample, integer or float.
type histogramPair struct {
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// mutateLabels adds a target's labels to a scraped series' labels, keeping
// a scraped label that clashes as exported_NAME (honor_labels: false), and
// the global labels the series lacks.
func (s *Scraper) mutateLabels(target, scraped labels.Labels) labels.Labels {
	b := labels.NewBuilder(scraped)
	target.Range(func(l labels.Label) {
		if v := scraped.Get(l.Name); v != "" {
			name := "exported_" + l.Name
			for scraped.Get(name) != "" {
				name = "exported_" + name
			}
			b.Set(name, v)
		}
		b.Set(l.Name, l.Value)
	})
	for k, v := range s.opts.Labels {
		if b.Get(k) == "" {
			b.Set(k, v)
		}
	}
	return b.Labels()
}

// scrapeMetrics are the scraper's own metrics, named as Prometheus' scrape
// manager names them.
type scrapeMetrics struct {
	intervalLength prometheus.Summary
	bodyTooLarge   prometheus.Counter
	duration       prometheus.Histogram // from start to commit, which scrape_duration_seconds leaves out
}

func newScrapeMetrics(reg prometheus.Registerer, interval time.Duration) (*scrapeMetrics, error) {
	il := prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name:       "prometheus_target_interval_length_seconds",
		Help:       "Actual intervals between scrapes.",
		Objectives: map[float64]float64{0.01: 0.001, 0.05: 0.005, 0.5: 0.05, 0.90: 0.01, 0.99: 0.001},
	}, []string{"interval"})
	tl := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "prometheus_target_scrapes_exceeded_body_size_limit_total",
		Help: "Total number of scrapes that hit the body size limit",
	})
	sd := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                            "prometheus_target_scrape_duration_seconds",
		Help:                            "Total duration of the scrape from start to commit completion in seconds.",
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	})
	if reg != nil {
		var err error
		if il, err = registerOrExisting(reg, il); err != nil {
			return nil, fmt.Errorf("metrics: scraper: %w", err)
		}
		if tl, err = registerOrExisting(reg, tl); err != nil {
			return nil, fmt.Errorf("metrics: scraper: %w", err)
		}
		if sd, err = registerOrExisting(reg, sd); err != nil {
			return nil, fmt.Errorf("metrics: scraper: %w", err)
		}
	}
	return &scrapeMetrics{intervalLength: il.WithLabelValues(interval.String()).(prometheus.Summary), bodyTooLarge: tl, duration: sd}, nil
}

// registerOrExisting registers c, or returns the collector of the same
// description already registered (a scraper made again on a registry).
func registerOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
