package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/metrics"
	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// observability is the metrics store with its scraper and rules, the
// notifier (channels, escalation, silences) and the SLO reporter.
type observability struct {
	metrics  *metrics.Metrics
	notifier *alerting.Notifier
	slos     *slo.Reporter
}

// newObservability builds the parts; nothing runs until start. consoleAddr
// is where links in notifications point.
func (e *Engine) newObservability(app *spec.App, consoleAddr string) (*observability, error) {
	ncfg, err := e.alertingConfig(app, consoleAddr)
	if err != nil {
		return nil, err
	}
	notifier, err := alerting.New(ncfg)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	groups, err := rulegroups.Build(app)
	if err != nil {
		return nil, fmt.Errorf("metrics: rules: %w", err)
	}
	m := app.Observability.Metrics
	mm, err := metrics.New(metrics.Config{
		Dir:         filepath.Join(app.StatePath(), "metrics"),
		Retention:   m.Retention.Duration,
		Interval:    m.Interval.Duration,
		Labels:      m.Labels,
		Targets:     metrics.TargetFunc(e.scrapeTargets),
		Rules:       groups,
		ExternalURL: "http://" + consoleAddr,
		Notify:      notifier.Update,
		Logger:      e.log.With("component", "metrics"),
		Registerer:  e.metrics.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &observability{metrics: mm, notifier: notifier, slos: slo.NewReporter(app.Observability.SLOs, mm.Query)}, nil
}

func (e *Engine) alertingConfig(app *spec.App, consoleAddr string) (alerting.Config, error) {
	e.mu.Lock()
	vals := e.vals
	e.mu.Unlock()
	r := &envResolver{app: app, getenv: e.opts.Getenv, secrets: secretLookup(vals)}
	cfg, err := alerting.FromSpec(app, r.lookup)
	if err != nil {
		return cfg, fmt.Errorf("alerting: %w", err)
	}
	cfg.ExternalURL = "http://" + consoleAddr
	cfg.Dir = filepath.Join(app.StatePath(), "alerting")
	cfg.Logger = e.log.With("component", "alerting")
	cfg.LogLine = func(l string) { e.out.event("", l) }
	return cfg, nil
}

// scrapeTargets are the engine itself and every replica of the services
// observability.metrics.scrape names, as they are now.
func (e *Engine) scrapeTargets() []metrics.Target {
	e.mu.Lock()
	app, admin := e.app, e.admin
	e.mu.Unlock()
	instance := "nubo"
	if admin != nil {
		instance = admin.Addr()
	}
	return append([]metrics.Target{metrics.EngineTarget(e.metrics.handler(), instance)},
		metrics.ServiceTargets(app.Observability.Metrics.Scrape, e.supervisorStatuses())...)
}

// routes mounts the Prometheus-compatible API and the alert and SLO admin
// routes on the console.
func (o *observability) routes() []console.Route {
	n, s := o.notifier.Handler(), o.slos.Handler()
	return []console.Route{
		{Pattern: "/api/v1/", Handler: o.metrics.Handler()},
		{Pattern: "/admin/v1/alerts", Handler: n},
		{Pattern: "/admin/v1/alerts/", Handler: n},
		{Pattern: "/admin/v1/silences", Handler: n},
		{Pattern: "/admin/v1/silences/", Handler: n},
		{Pattern: "/admin/v1/slos", Handler: s},
		{Pattern: "/admin/v1/slos/", Handler: s},
	}
}

func (o *observability) start(ctx context.Context) error {
	if err := o.notifier.Start(ctx); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	if err := o.metrics.Start(ctx); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// stop writes the metrics' staleness markers and closes the store, then
// stops the notifier (which may still send resolved notifications).
func (o *observability) stop(ctx context.Context) error {
	if o == nil {
		return nil
	}
	return errors.Join(o.metrics.Stop(ctx), o.notifier.Stop(ctx))
}

// reload applies a changed spec's rules, channels and SLOs. A change of the
// scrape interval, retention or labels needs a restart of nubo up.
func (e *Engine) reloadObservability(o *observability, next *spec.App) error {
	if o == nil {
		return nil
	}
	groups, err := rulegroups.Build(next)
	if err != nil {
		return err
	}
	ncfg, err := e.alertingConfig(next, e.consoleAddr())
	if err != nil {
		return err
	}
	if err := o.notifier.Reconfigure(ncfg); err != nil {
		return err
	}
	if err := o.metrics.SetRules(groups); err != nil {
		return err
	}
	o.slos.SetSLOs(next.Observability.SLOs)
	return nil
}

func (e *Engine) consoleAddr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.admin != nil {
		return e.admin.Addr()
	}
	return e.app.Local.Console
}
