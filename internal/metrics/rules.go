package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/rules"

	"github.com/nubo-dev/nubo/internal/alerting"
)

// EvaluatorOptions configure an Evaluator.
type EvaluatorOptions struct {
	// Interval between evaluations; default 15s. A group with a longer
	// interval of its own is evaluated at that one.
	Interval time.Duration
	// ExternalLabels are $externalLabels in templates, and are added to the
	// alerts that lack them, as Prometheus adds its external labels to the
	// alerts it sends (observability.metrics.labels).
	ExternalLabels map[string]string
	// ExternalURL is the console's URL: $externalURL in templates, and the
	// base of each alert's generator link.
	ExternalURL string
	// Notify receives every pending and firing alert after each evaluation;
	// alerting.Notifier.Update fits. Nil notifies nobody.
	Notify func(ts time.Time, alerts []alerting.Alert)
	// Logger receives rule evaluation failures.
	Logger *slog.Logger
	// Registerer receives the rule groups' own metrics
	// (prometheus_rule_*); nil registers none.
	Registerer prometheus.Registerer
}

// Evaluator evaluates recording and alerting rules with Prometheus' rules
// package: recording rules write their series, alerting rules go pending
// and then firing after their `for`, write the ALERTS and ALERTS_FOR_STATE
// series, and expand their labels and annotations as templates.
//
// Prometheus' rules.Manager runs each group on its own timer; the Evaluator
// evaluates every group in order on one, so that an evaluation is one call
// that tests and benchmarks can make at a chosen time, and so that SLO
// alerts see the recording rules written in the same pass.
type Evaluator struct {
	store *Store
	opts  EvaluatorOptions
	mopts *rules.ManagerOptions
	log   *slog.Logger

	mu      sync.Mutex // guards the fields below; held during an evaluation
	groups  []*rules.Group
	removed []*rules.Group // groups taken away, evaluated once more to mark their series stale
	restore map[*rules.Group]bool
	alerts  []alerting.Alert
}

// NewEvaluator returns an Evaluator with no rules.
func NewEvaluator(store *Store, opts EvaluatorOptions) (*Evaluator, error) {
	if store == nil {
		return nil, errors.New("metrics: evaluator: no store")
	}
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var extURL *url.URL
	if opts.ExternalURL != "" {
		u, err := url.Parse(opts.ExternalURL)
		if err != nil {
			return nil, fmt.Errorf("metrics: evaluator: external URL %q: %w", opts.ExternalURL, err)
		}
		extURL = u
	}
	log := opts.Logger.With("component", "rules")
	e := &Evaluator{store: store, opts: opts, log: log, restore: map[*rules.Group]bool{}}
	e.mopts = &rules.ManagerOptions{
		ExternalURL: extURL,
		QueryFunc:   rules.EngineQueryFunc(store.engine, store.db),
		// Alerts reach the notifier through Notify after a whole pass, not
		// rule by rule.
		NotifyFunc:      func(context.Context, string, ...*rules.Alert) {},
		Context:         context.Background(),
		AppendableV2:    store.db,
		Queryable:       store.db,
		Logger:          log,
		Metrics:         rules.NewGroupMetrics(opts.Registerer),
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
		ResendDelay:     time.Minute,
		Parser:          store.parser,
	}
	return e, nil
}

// SetRules replaces the rule groups. A group keeping its name keeps the
// state of its alerts (pending since, firing since), as a Prometheus reload
// does; the series of rules taken away are marked stale at the next
// evaluation. On an error nothing changes.
func (e *Evaluator) SetRules(groups []rulefmt.RuleGroup) error {
	built := make([]*rules.Group, 0, len(groups))
	names := map[string]bool{}
	var errs []error
	for _, rg := range groups {
		if names[rg.Name] {
			errs = append(errs, fmt.Errorf("rule group %q: defined twice", rg.Name))
			continue
		}
		names[rg.Name] = true
		g, err := e.buildGroup(rg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		built = append(built, g)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := map[string]*rules.Group{}
	for _, g := range e.groups {
		old[g.Name()] = g
	}
	for _, g := range built {
		if og, ok := old[g.Name()]; ok {
			g.CopyState(og)
			delete(old, g.Name())
			delete(e.restore, og)
		}
	}
	for _, og := range old {
		// An empty group of the same name inherits the old one's series
		// as stale ones, which its next evaluation marks.
		empty, _ := e.buildGroup(rulefmt.RuleGroup{Name: og.Name()})
		empty.CopyState(og)
		e.removed = append(e.removed, empty)
		delete(e.restore, og)
	}
	e.groups = built
	return nil
}

// ruleFile names the origin of nubo's rules in group keys and the API.
const ruleFile = "nubo.yaml"

func (e *Evaluator) buildGroup(rg rulefmt.RuleGroup) (*rules.Group, error) {
	var rs []rules.Rule
	for i, r := range rg.Rules {
		expr, err := e.store.parser.ParseExpr(r.Expr)
		if err != nil {
			return nil, fmt.Errorf("rule group %q, rule %d (%s): expr: %w", rg.Name, i+1, r.Record+r.Alert, err)
		}
		lbls := labels.FromMap(r.Labels)
		switch {
		case r.Alert != "":
			rs = append(rs, rules.NewAlertingRule(
				r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				lbls, labels.FromMap(r.Annotations), labels.FromMap(e.opts.ExternalLabels), e.opts.ExternalURL,
				true, e.log.With("alert", r.Alert),
			))
		case r.Record != "":
			rs = append(rs, rules.NewRecordingRule(r.Record, expr, lbls))
		default:
			return nil, fmt.Errorf("rule group %q, rule %d: neither record nor alert", rg.Name, i+1)
		}
	}
	interval := time.Duration(rg.Interval)
	if interval <= 0 {
		interval = e.opts.Interval
	}
	var offset *time.Duration
	if rg.QueryOffset != nil {
		d := time.Duration(*rg.QueryOffset)
		offset = &d
	}
	return rules.NewGroup(rules.GroupOptions{
		Name: rg.Name, File: ruleFile, Interval: interval, Limit: rg.Limit, Rules: rs, Opts: e.mopts,
		QueryOffset: offset,
	}), nil
}

// Evaluate evaluates every group due at ts, in order, then reports the
// alerts to Notify.
func (e *Evaluator) Evaluate(ctx context.Context, ts time.Time) {
	e.evaluate(ctx, ts, false)
}

// evaluate is Evaluate; on schedule (from Run), a group whose last
// evaluation is more than one of its intervals old counts the iterations it
// missed, as Prometheus' group loop does.
func (e *Evaluator) evaluate(ctx context.Context, ts time.Time, scheduled bool) {
	e.mu.Lock()
	for _, g := range e.removed {
		g.Eval(ctx, ts)
	}
	e.removed = nil
	for _, g := range e.groups {
		last := g.GetLastEvalTimestamp()
		if !last.IsZero() && ts.Before(last.Add(g.Interval()-e.opts.Interval/2)) {
			continue
		}
		if scheduled && !last.IsZero() {
			// Half an interval of lateness is the tick's jitter, not a miss.
			if missed := (ts.Sub(last)+g.Interval()/2)/g.Interval() - 1; missed > 0 {
				key := rules.GroupKey(g.File(), g.Name())
				e.mopts.Metrics.IterationsMissed.WithLabelValues(key).Add(float64(missed))
				e.mopts.Metrics.IterationsScheduled.WithLabelValues(key).Add(float64(missed))
			}
		}
		rules.DefaultEvalIterationFunc(ctx, g, ts)
	}
	e.alerts = e.collect()
	alerts := e.alerts
	e.mu.Unlock()
	if e.opts.Notify != nil {
		e.opts.Notify(ts, alerts)
	}
}

// Run evaluates every interval until ctx ends. As Prometheus does after a
// restart, it restores the `for` state of alerts from the ALERTS_FOR_STATE
// series once two evaluations have seen the data scraped since, so that an
// alert pending for 4 of its 5 minutes does not start over.
func (e *Evaluator) Run(ctx context.Context) {
	e.mu.Lock()
	for _, g := range e.groups {
		for _, ar := range g.AlertingRules() {
			ar.SetRestored(false)
		}
		e.restore[g] = true
	}
	e.mu.Unlock()
	tick := time.NewTicker(e.opts.Interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		now := time.Now()
		e.evaluate(ctx, now, true)
		if n == 2 {
			e.restoreForState(now)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (e *Evaluator) restoreForState(ts time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.groups {
		if e.restore[g] {
			g.RestoreForState(ts)
		}
	}
	e.restore = map[*rules.Group]bool{}
}

// collect converts the active alerts of every alerting rule. Lock held.
func (e *Evaluator) collect() []alerting.Alert {
	var out []alerting.Alert
	for _, g := range e.groups {
		for _, ar := range g.AlertingRules() {
			link := e.generatorURL(ar.Query().String())
			for _, a := range ar.ActiveAlerts() {
				lbls := a.Labels.Map()
				for k, v := range e.opts.ExternalLabels {
					if _, ok := lbls[k]; !ok {
						lbls[k] = v
					}
				}
				state := alerting.StatePending
				if a.State == rules.StateFiring {
					state = alerting.StateFiring
				}
				out = append(out, alerting.Alert{
					Labels: lbls, Annotations: a.Annotations.Map(), State: state,
					Value:    strconv.FormatFloat(a.Value, 'f', -1, 64),
					ActiveAt: a.ActiveAt, FiredAt: a.FiredAt, GeneratorURL: link,
				})
			}
		}
	}
	return out
}

// generatorURL links to an expression as Prometheus does, on the console.
func (e *Evaluator) generatorURL(expr string) string {
	if e.opts.ExternalURL == "" {
		return ""
	}
	return e.opts.ExternalURL + "/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=1"
}

// Alerts returns the pending and firing alerts of the last evaluation.
func (e *Evaluator) Alerts() []alerting.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]alerting.Alert(nil), e.alerts...)
}

// Groups returns the rule groups, in evaluation order.
func (e *Evaluator) Groups() []*rules.Group {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*rules.Group(nil), e.groups...)
}
