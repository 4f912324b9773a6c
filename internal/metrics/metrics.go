// Package metrics is the Prometheus inside `nubo up`: it scrapes the
// engine's own metrics and the services' endpoints into an embedded
// Prometheus TSDB, answers PromQL through Prometheus' engine behind a
// Prometheus-compatible HTTP API, and evaluates recording and alerting rules
// with Prometheus' rules package, handing the alerts to internal/alerting.
//
// Storage, queries and rules are Prometheus' own packages (tsdb, promql,
// rules, model/textparse), so the expressions users test locally behave as
// in production. What is written here is the glue a Prometheus server
// provides and which cannot be embedded without its service discovery,
// remote storage and configuration: a scraper for local targets, a rule
// loop, and the read endpoints of the HTTP API.
//
// Metrics ties the parts together for the engine; the parts (Store,
// Scraper, Evaluator, API) are exported so that tests and benchmarks can
// drive them at chosen times.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nubo-dev/nubo/internal/alerting"
)

// Config configures Metrics.
type Config struct {
	// Dir holds the TSDB (the state directory's metrics folder); required.
	Dir string
	// Retention of samples (observability.metrics.retention); default 15d.
	Retention time.Duration
	// Interval of scrapes and rule evaluations
	// (observability.metrics.interval); default 15s.
	Interval time.Duration
	// ScrapeTimeout bounds one scrape, from request to last sample
	// appended; default the smaller of 10s and Interval.
	ScrapeTimeout time.Duration
	// Labels are added to every series and alert that lacks them
	// (observability.metrics.labels).
	Labels map[string]string
	// Targets lists what to scrape; required.
	Targets TargetSource
	// Rules are evaluated every Interval (rulegroups.Build builds them from the
	// spec); SetRules replaces them.
	Rules []rulefmt.RuleGroup
	// ExternalURL is the console's URL, for alerts' links and templates.
	ExternalURL string
	// Notify receives the pending and firing alerts after each evaluation.
	Notify func(ts time.Time, alerts []alerting.Alert)
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Registerer receives the TSDB's, PromQL's and the rules' own metrics;
	// nil registers none.
	Registerer prometheus.Registerer
}

// Metrics is the metrics component: New, then Start and Stop.
type Metrics struct {
	cfg Config
	log *slog.Logger
	api *API

	mu      sync.Mutex // guards the fields below
	store   *Store
	scraper *Scraper
	eval    *Evaluator
	otlp    *otlpWriter
	rules   []rulefmt.RuleGroup
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New checks cfg; it opens nothing.
func New(cfg Config) (*Metrics, error) {
	if cfg.Dir == "" {
		return nil, errors.New("metrics: no directory for the TSDB")
	}
	if cfg.Targets == nil {
		return nil, errors.New("metrics: no target source")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{cfg: cfg, log: cfg.Logger.With("component", "metrics"), rules: cfg.Rules}
	m.api = newAPI(m.parts, cfg.Logger)
	return m, nil
}

func (m *Metrics) parts() apiParts {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return apiParts{}
	}
	return apiParts{store: m.store, eval: m.eval, scraper: m.scraper}
}

// Start opens the TSDB (replaying its write-ahead log), loads the rules and
// starts scraping and evaluating. It returns once queries can be answered.
func (m *Metrics) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.stopped:
		return errors.New("metrics: start: stopped")
	case m.started:
		return errors.New("metrics: start: already started")
	}
	store, err := OpenStore(StoreOptions{
		Dir: m.cfg.Dir, Retention: m.cfg.Retention, EvaluationInterval: m.cfg.Interval,
		Logger: m.cfg.Logger, Registerer: m.cfg.Registerer,
	})
	if err != nil {
		return err
	}
	scraper, err := NewScraper(store, ScrapeOptions{
		Targets: m.cfg.Targets, Labels: m.cfg.Labels, Interval: m.cfg.Interval, Timeout: m.cfg.ScrapeTimeout,
		Logger: m.cfg.Logger, Registerer: m.cfg.Registerer,
	})
	if err != nil {
		store.Close()
		return err
	}
	eval, err := NewEvaluator(store, EvaluatorOptions{
		Interval: m.cfg.Interval, ExternalLabels: m.cfg.Labels, ExternalURL: m.cfg.ExternalURL,
		Notify: m.cfg.Notify, Logger: m.cfg.Logger, Registerer: m.cfg.Registerer,
	})
	if err == nil {
		err = eval.SetRules(m.rules)
	}
	if err != nil {
		store.Close()
		return fmt.Errorf("metrics: rules: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.store, m.scraper, m.eval, m.cancel, m.started = store, scraper, eval, cancel, true
	m.otlp = newOTLPWriter(store, m.cfg.Labels)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		scraper.Run(runCtx)
	}()
	go func() {
		defer m.wg.Done()
		eval.Run(runCtx)
	}()
	m.log.Debug("metrics started", "dir", m.cfg.Dir, "interval", m.cfg.Interval, "retention", m.cfg.Retention)
	return nil
}

// Stop ends scraping and evaluation (marking the scraped series stale), then
// closes the TSDB. It is nil-safe and idempotent; if ctx ends first, the
// TSDB is closed anyway and the error says so.
func (m *Metrics) Stop(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	cancel, store := m.cancel, m.store
	m.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("metrics: stop: loops still running: %w", ctx.Err()))
	}
	errs = append(errs, store.Close())
	return errors.Join(errs...)
}

// WriteOTLP stores OTLP metrics (what the OTLP receiver's /v1/metrics
// takes) in the TSDB, translated as Prometheus translates them. rejected
// counts the data points not stored; err says why. Before Start and after
// Stop nothing is stored.
func (m *Metrics) WriteOTLP(ctx context.Context, md pmetric.Metrics) (rejected int, err error) {
	m.mu.Lock()
	w := m.otlp
	if m.stopped {
		w = nil
	}
	// The write counts in wg, which Stop waits for before it closes the
	// TSDB; it is added under mu before Stop can see stopped.
	if w != nil {
		m.wg.Add(1)
	}
	m.mu.Unlock()
	if w == nil {
		return md.DataPointCount(), errors.New("metrics: the TSDB is not open")
	}
	defer m.wg.Done()
	return w.write(ctx, md)
}

// Handler serves the Prometheus-compatible API under /api/v1/; before Start
// and after Stop it answers 503.
func (m *Metrics) Handler() http.Handler { return m.api }

// SetRules replaces the rule groups, keeping the state of the alerts of the
// groups that stay (see Evaluator.SetRules). Before Start it only records
// them. On an error the old rules stay.
func (m *Metrics) SetRules(groups []rulefmt.RuleGroup) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.eval != nil {
		if err := m.eval.SetRules(groups); err != nil {
			return fmt.Errorf("metrics: rules: %w", err)
		}
	}
	m.rules = groups
	return nil
}

// Query evaluates expr at ts (slo.QueryFunc fits).
func (m *Metrics) Query(ctx context.Context, expr string, ts time.Time) (promql.Vector, error) {
	p := m.parts()
	if p.store == nil {
		return nil, errors.New("metrics: the store is not open")
	}
	return p.store.Query(ctx, expr, ts)
}

// Snapshot writes a copy of the TSDB, every sample appended so far
// included, into the empty folder dir: a folder the store opens as it is.
func (m *Metrics) Snapshot(dir string) error {
	p := m.parts()
	if p.store == nil {
		return errors.New("metrics: the store is not open")
	}
	return p.store.Snapshot(dir)
}

// Alerts returns the pending and firing alerts of the last evaluation.
func (m *Metrics) Alerts() []alerting.Alert {
	if p := m.parts(); p.eval != nil {
		return p.eval.Alerts()
	}
	return nil
}

// Targets reports the scrape targets' health after the last round.
func (m *Metrics) Targets() []TargetHealth {
	if p := m.parts(); p.scraper != nil {
		return p.scraper.Health()
	}
	return nil
}
