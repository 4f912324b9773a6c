package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Target is one metrics endpoint.
type Target struct {
	// URL of the endpoint.
	URL string
	// Handler serves the endpoint in process (the engine's own registry);
	// when set, URL only names the target.
	Handler http.Handler
	// Labels identify the target and are added to each of its series, as
	// Prometheus' target labels: a scraped label of the same name is kept as
	// exported_NAME. job and instance always; service and replica for a
	// replica of a service.
	Labels map[string]string
}

// TargetSource lists the targets; the scraper asks before each round, so
// replicas that come and go are followed.
type TargetSource interface {
	Targets() []Target
}

// TargetFunc makes a function a TargetSource.
type TargetFunc func() []Target

// Targets calls f.
func (f TargetFunc) Targets() []Target { return f() }

// EngineJob is the job label of nubo's own metrics.
const EngineJob = "nubo"

// EngineTarget is the engine's own /metrics, scraped in process through h.
// instance is the console's address. The engine's series keep their own
// service and replica labels.
func EngineTarget(h http.Handler, instance string) Target {
	return Target{
		URL:     "http://" + instance + "/metrics",
		Handler: h,
		Labels:  map[string]string{"job": EngineJob, "instance": instance},
	}
}

// ServiceTargets lists the endpoints of observability.metrics.scrape on every
// live replica of the services the statuses describe (the supervisors'):
// job and service are the service's name, replica its index ($NUBO_REPLICA),
// instance 127.0.0.1:PORT, the port the entry's or else the replica's $PORT.
func ServiceTargets(scrape []*spec.ScrapeTarget, statuses []supervisor.ServiceStatus) []Target {
	byName := map[string]supervisor.ServiceStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	var out []Target
	seen := map[string]bool{}
	for _, sc := range scrape {
		st, ok := byName[sc.Service]
		if !ok {
			continue
		}
		path := sc.Path
		if path == "" {
			path = "/metrics"
		}
		for _, r := range st.Replicas {
			if !alive(r.State) {
				continue
			}
			port := sc.Port
			if port == 0 {
				port = r.Port
			}
			if port == 0 {
				continue
			}
			instance := "127.0.0.1:" + strconv.Itoa(port)
			url := "http://" + instance + path
			if seen[url] {
				continue
			}
			seen[url] = true
			out = append(out, Target{URL: url, Labels: map[string]string{
				"job": sc.Service, "service": sc.Service, "replica": strconv.Itoa(r.Index), "instance": instance,
			}})
		}
	}
	return out
}

// alive reports whether a replica in state s has a process that should
// answer. A terminating one is left out, as Kubernetes takes a terminating
// pod out of its endpoints, so that its last moments do not read as down.
func alive(s supervisor.State) bool {
	return s == supervisor.StateStarting || s == supervisor.StateRunning || s == supervisor.StateReady
}

// ScrapeOptions configure a Scraper.
type ScrapeOptions struct {
	// Targets lists what to scrape; required.
	Targets TargetSource
	// Labels are added to every series that lacks them
	// (observability.metrics.labels), as Prometheus' external labels.
	Labels map[string]string
	// Interval between scrapes; default 15s.
	Interval time.Duration
	// Timeout of one scrape; default the smaller of 10s and Interval.
	Timeout time.Duration
	// Client fetches URLs; default one that ignores the proxy environment
	// (every target is on this machine).
	Client *http.Client
	// Logger receives scrape failures at debug level.
	Logger *slog.Logger
}

// Scraper scrapes targets into a Store, with Prometheus' semantics: target
// labels, an up series and scrape_duration_seconds and
// scrape_samples_scraped per target, and staleness markers for series that
// disappear, targets that go away and scrapes that fail.
type Scraper struct {
	store *Store
	opts  ScrapeOptions
	log   *slog.Logger

	mu      sync.Mutex // guards targets; held for a whole round
	targets map[string]*targetState

	healthMu sync.Mutex // guards health
	health   []TargetHealth
}

// targetState is what the scraper keeps of one target between scrapes.
type targetState struct {
	target Target
	lset   labels.Labels // target labels, sorted
	key    string
	// cache maps a series as the target writes it to its labels and
	// reference, so that a steady target costs one map lookup per sample.
	cache   map[string]*cacheEntry
	symbols *labels.SymbolTable
	round   uint64

	health       string
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

// NewScraper checks opts and returns a Scraper; it scrapes nothing yet.
func NewScraper(store *Store, opts ScrapeOptions) (*Scraper, error) {
	if store == nil || opts.Targets == nil {
		return nil, errors.New("metrics: scraper: no store or no targets")
	}
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = min(10*time.Second, opts.Interval)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 2 * opts.Interval}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scraper{store: store, opts: opts, log: opts.Logger.With("component", "scrape"), targets: map[string]*targetState{}}, nil
}

// Run scrapes every interval until ctx ends, then marks every series of
// every target stale.
func (s *Scraper) Run(ctx context.Context) {
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for {
		s.Scrape(ctx)
		select {
		case <-ctx.Done():
			s.staleAll()
			return
		case <-tick.C:
		}
	}
}

// maxConcurrentScrapes bounds the scrapes in flight in one round.
const maxConcurrentScrapes = 16

// Scrape runs one round: it asks the source for the targets, forgets (and
// marks stale) those gone, and scrapes the others concurrently.
func (s *Scraper) Scrape(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	current := map[string]*targetState{}
	for _, t := range s.opts.Targets.Targets() {
		st := s.newTargetState(t)
		if old, ok := s.targets[st.key]; ok {
			old.target = t // a handler may have been replaced
			st = old
		}
		current[st.key] = st
	}
	for key, st := range s.targets {
		if _, ok := current[key]; !ok {
			s.stale(st, time.Now())
		}
	}
	s.targets = current

	sem := make(chan struct{}, maxConcurrentScrapes)
	var wg sync.WaitGroup
	for _, st := range current {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.scrapeTarget(ctx, st)
		}()
	}
	wg.Wait()
	s.snapshotHealth()
}

// snapshotHealth keeps the targets' state after a round for Health, which
// must not wait for a round in flight. s.mu held.
func (s *Scraper) snapshotHealth() {
	out := make([]TargetHealth, 0, len(s.targets))
	for _, st := range s.targets {
		out = append(out, TargetHealth{
			URL: st.target.URL, Labels: st.lset.Map(), Health: st.health, LastError: st.lastError,
			LastScrape: st.lastScrape, LastDuration: st.lastDuration, Samples: st.lastSamples,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	s.healthMu.Lock()
	s.health = out
	s.healthMu.Unlock()
}

func (s *Scraper) newTargetState(t Target) *targetState {
	b := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range t.Labels {
		if v != "" {
			b.Set(k, v)
		}
	}
	lset := b.Labels()
	return &targetState{target: t, lset: lset, key: t.URL + lset.String(), cache: map[string]*cacheEntry{}, symbols: labels.NewSymbolTable(), health: "unknown"}
}

// scrapeTarget scrapes one target and appends its samples and report
// series in one transaction.
func (s *Scraper) scrapeTarget(ctx context.Context, st *targetState) {
	start := time.Now()
	ts := start.UnixMilli()
	st.round++
	body, ctype, err := s.fetch(ctx, st.target)
	app := s.store.Appender(ctx)
	n := 0
	if err == nil {
		n, err = s.appendBody(app, st, body, ctype, ts)
		if err != nil {
			_ = app.Rollback()
			app = s.store.Appender(ctx)
		}
	}
	// Series seen before and not now are stale; after a failed scrape, all.
	for key, ce := range st.cache {
		if ce.round != st.round || err != nil {
			_, _ = app.Append(ce.ref, ce.lset, 0, ts, math.Float64frombits(value.StaleNaN), nil, nil, storage.AOptions{})
			delete(st.cache, key)
		}
	}
	dur := time.Since(start)
	up := 1.0
	st.health, st.lastError = "up", ""
	if err != nil {
		up, st.health, st.lastError = 0, "down", err.Error()
		s.log.Debug("scrape failed", "target", st.target.URL, "err", err)
	}
	st.lastScrape, st.lastDuration, st.lastSamples = start, dur, n
	for _, r := range []struct {
		name string
		v    float64
	}{{"up", up}, {"scrape_duration_seconds", dur.Seconds()}, {"scrape_samples_scraped", float64(n)}} {
		_, _ = app.Append(0, s.reportLabels(st, r.name), 0, ts, r.v, nil, nil, storage.AOptions{})
	}
	if err := app.Commit(); err != nil {
		s.log.Warn("scrape: commit samples", "target", st.target.URL, "err", err)
	}
}

func (s *Scraper) reportLabels(st *targetState, name string) labels.Labels {
	b := labels.NewBuilder(st.lset)
	b.Set(labels.MetricName, name)
	for k, v := range s.opts.Labels {
		if b.Get(k) == "" {
			b.Set(k, v)
		}
	}
	return b.Labels()
}

// stale marks every series of a target that went away, and its report
// series.
func (s *Scraper) stale(st *targetState, now time.Time) {
	app := s.store.Appender(context.Background())
	ts := now.UnixMilli()
	nan := math.Float64frombits(value.StaleNaN)
	for _, ce := range st.cache {
		_, _ = app.Append(ce.ref, ce.lset, 0, ts, nan, nil, nil, storage.AOptions{})
	}
	for _, name := range []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"} {
		_, _ = app.Append(0, s.reportLabels(st, name), 0, ts, nan, nil, nil, storage.AOptions{})
	}
	if err := app.Commit(); err != nil {
		s.log.Warn("scrape: commit staleness markers", "target", st.target.URL, "err", err)
	}
	st.cache = map[string]*cacheEntry{}
}

func (s *Scraper) staleAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, st := range s.targets {
		s.stale(st, now)
	}
	s.targets = map[string]*targetState{}
	s.snapshotHealth()
}

// maxBody bounds one scrape's answer.
const maxBody = 64 << 20

// acceptHeader prefers the Prometheus text format, which every client
// library writes, then OpenMetrics.
const acceptHeader = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

func (s *Scraper) fetch(ctx context.Context, t Target) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", "nubo-scraper")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(s.opts.Timeout.Seconds(), 'f', -1, 64))
	if t.Handler != nil {
		rec := httptest.NewRecorder()
		t.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return nil, "", fmt.Errorf("server returned HTTP status %d", rec.Code)
		}
		return rec.Body.Bytes(), rec.Header().Get("Content-Type"), nil
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, "", err
	}
	if len(body) > maxBody {
		return nil, "", fmt.Errorf("answer larger than %d MiB", maxBody>>20)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// appendBody parses an exposition and appends its samples at ts (or at a
// sample's own timestamp). Samples the TSDB refuses as out of order or
// duplicated are skipped, as Prometheus does; a parse error fails the whole
// scrape.
func (s *Scraper) appendBody(app storage.AppenderV2, st *targetState, body []byte, ctype string, ts int64) (int, error) {
	p, err := textparse.New(body, ctype, st.symbols, textparse.ParserOptions{FallbackContentType: "text/plain"})
	if p == nil {
		return 0, fmt.Errorf("unreadable answer: %w", err)
	}
	n := 0
	for {
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
		ce, ok := st.cache[string(ser)]
		if !ok {
			var lset labels.Labels
			p.Labels(&lset)
			ce = &cacheEntry{lset: s.mutateLabels(st, lset)}
			st.cache[string(ser)] = ce
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
		ce.round = st.round
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
func (s *Scraper) mutateLabels(st *targetState, scraped labels.Labels) labels.Labels {
	b := labels.NewBuilder(scraped)
	st.lset.Range(func(l labels.Label) {
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

// TargetHealth is the state of one target after its last scrape.
type TargetHealth struct {
	// URL scraped.
	URL string
	// Labels of the target.
	Labels map[string]string
	// Health is up, down, or unknown before the first scrape.
	Health string
	// LastError is the last scrape's error.
	LastError string
	// LastScrape is when it began.
	LastScrape time.Time
	// LastDuration is how long it took.
	LastDuration time.Duration
	// Samples is how many samples it read.
	Samples int
}

// Health lists the targets of the last round, by URL.
func (s *Scraper) Health() []TargetHealth {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return append([]TargetHealth(nil), s.health...)
}
