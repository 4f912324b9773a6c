package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/metrics"
	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// observability is the metrics store with its scraper and rules, the
// notifier (channels, escalation, silences) and the SLO reporter. A reload
// changes rules, channels and SLOs; a change of the scrape interval,
// retention or labels needs a restart of nubo up.
type observability struct {
	e *Engine
	// app is the spec of the running rules, channels and SLOs: what a
	// reload compares with.
	app      *spec.App
	env      *envSource
	console  *consoleComponent
	metrics  *metrics.Metrics
	notifier *alerting.Notifier
	slos     *slo.Reporter
}

// newObservability builds the parts; nothing runs until Start. Links in
// notifications point at the console.
func newObservability(e *Engine, app *spec.App, vals secrets.Values, env *envSource, cc *consoleComponent) (*observability, error) {
	o := &observability{e: e, env: env, console: cc, app: app}
	ncfg, err := o.alertingConfig(app, vals)
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
		Targets:     metrics.TargetFunc(o.scrapeTargets),
		Rules:       groups,
		ExternalURL: "http://" + cc.addr,
		Notify:      notifier.Update,
		Logger:      e.log,
		Registerer:  e.metrics.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	o.metrics, o.notifier = mm, notifier
	o.slos = slo.NewReporter(app.Observability.SLOs, mm.Query)
	return o, nil
}

func (o *observability) alertingConfig(app *spec.App, vals secrets.Values) (alerting.Config, error) {
	cfg, err := alerting.FromSpec(app, o.env.resolver(app, vals, "", "").lookup)
	if err != nil {
		return cfg, fmt.Errorf("alerting: %w", err)
	}
	addr := o.console.Addr()
	if addr == "" {
		addr = o.console.addr
	}
	cfg.ExternalURL = "http://" + addr
	cfg.Dir = filepath.Join(app.StatePath(), "alerting")
	cfg.Logger = o.e.log
	cfg.LogLine = func(l string) { o.e.out.event("", l) }
	return cfg, nil
}

// scrapeTargets are the engine itself, every replica of the services
// observability.metrics.scrape names, as they are now, and the databases
// whose monitoring is enabled.
func (o *observability) scrapeTargets() []metrics.Target {
	app, _ := o.e.current()
	instance := "nubo"
	if addr := o.console.Addr(); addr != "" {
		instance = addr
	}
	out := append([]metrics.Target{metrics.EngineTarget(o.e.metrics.handler(), instance)},
		metrics.ServiceTargets(app.Observability.Metrics.Scrape, o.e.supervisorStatuses())...)
	return append(out, o.e.dbs.targets()...)
}

// routes mounts the Prometheus-compatible API and the alert, SLO and cost
// admin routes on the console.
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
		{Pattern: "GET /admin/v1/cost", Handler: o.costHandler()},
	}
}

func (o *observability) Name() string { return "observability" }

func (o *observability) Start(ctx context.Context) error {
	if err := o.notifier.Start(ctx); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	if err := o.metrics.Start(ctx); err != nil {
		_ = o.notifier.Stop(ctx)
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Stop writes the metrics' staleness markers and closes the store, then
// stops the notifier (which may still send resolved notifications).
func (o *observability) Stop(ctx context.Context) error {
	return errors.Join(o.metrics.Stop(ctx), o.notifier.Stop(ctx))
}

// Prepare checks the new rules, channels and escalation; Commit applies
// them with the SLOs.
func (o *observability) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	old := o.app
	if reflect.DeepEqual(old.Observability, next.Observability) && reflect.DeepEqual(old.Databases, next.Databases) && reflect.DeepEqual(old.Cost, next.Cost) {
		return nil, nil
	}
	groups, err := rulegroups.Build(next)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if err := metrics.CheckRules(groups); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	ncfg, err := o.alertingConfig(next, o.e.valuesFor(next))
	if err != nil {
		return nil, err
	}
	if err := alerting.Check(ncfg); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	pipe, err := logs.NewPipeline(next.Observability.Logs)
	if err != nil {
		return nil, err
	}
	return changeFuncs{commit: func(context.Context) error {
		// What can fail first; the swaps that cannot, after.
		if err := o.metrics.SetRules(groups); err != nil {
			return err
		}
		if err := o.notifier.Reconfigure(ncfg); err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
		o.e.out.pipe.Store(pipe)
		o.slos.SetSLOs(next.Observability.SLOs)
		o.app = next
		return nil
	}}, nil
}
