package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// webhookReceiver keeps the Alertmanager payloads POSTed to it.
type webhookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []alerting.WebhookMessage
}

func startWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m alerting.WebhookMessage
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *webhookReceiver) wait(t *testing.T, status string) alerting.WebhookMessage {
	t.Helper()
	var found alerting.WebhookMessage
	nubotest.WaitFor(t, 20*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range r.msgs {
			if m.Status == status {
				found = m
				return nil
			}
		}
		return fmt.Errorf("no %s notification among %d", status, len(r.msgs))
	})
	return found
}

// TestAlertLifecycle runs the whole chain on real parts: a service's gauge
// scraped over HTTP, an alert rule from the spec going pending, firing
// after its `for` and resolving, with templated labels and annotations and
// the ALERTS series, delivered to a webhook receiver in Alertmanager's
// format.
func TestAlertLifecycle(t *testing.T) {
	t.Parallel()
	recv := startWebhookReceiver(t)
	app, err := spec.Parse("nubo.yaml", []byte(`name: shop
services:
  worker: {run: ./worker}
observability:
  metrics:
    interval: 50ms
    labels: {cluster: local}
    scrape: [{service: worker}]
  alerts:
    - name: queue_backlog
      expr: 'queue_depth > 10'
      for: 300ms
      severity: warning
      labels: {team: '{{ $labels.service }}-team'}
      annotations:
        summary: '{{ $value }} jobs wait on {{ $labels.instance }}'
      channels: [oncall]
  channels:
    oncall: {type: webhook, url: `+recv.srv.URL+`/alerts}
`))
	if err != nil {
		t.Fatal(err)
	}
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "queue_depth", Help: "Jobs waiting."})
	reg := prometheus.NewRegistry()
	reg.MustRegister(depth)
	worker := httptest.NewServer(promHandler(reg))
	t.Cleanup(worker.Close)
	port, _ := strconv.Atoi(worker.URL[strings.LastIndex(worker.URL, ":")+1:])
	statuses := []supervisor.ServiceStatus{{Name: "worker", Replicas: []supervisor.ReplicaStatus{{Index: 0, State: supervisor.StateReady, Port: port}}}}

	ncfg, err := alerting.FromSpec(app, func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	ncfg.ExternalURL = "http://127.0.0.1:4500"
	notifier, err := alerting.New(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := notifier.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notifier.Stop(context.Background()) })

	groups, err := rulegroups.Build(app)
	if err != nil {
		t.Fatal(err)
	}
	obs := app.Observability.Metrics
	m, err := New(Config{
		Dir: t.TempDir(), Interval: obs.Interval.Duration, Retention: obs.Retention.Duration, Labels: obs.Labels,
		Targets:     TargetFunc(func() []Target { return ServiceTargets(obs.Scrape, statuses) }),
		Rules:       groups,
		ExternalURL: "http://127.0.0.1:4500",
		Notify:      notifier.Update,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })

	depth.Set(25)
	state := func(want alerting.State) func() error {
		return func() error {
			for _, a := range m.Alerts() {
				if a.State == want {
					return nil
				}
			}
			return fmt.Errorf("no %s alert: %+v", want, m.Alerts())
		}
	}
	nubotest.WaitFor(t, 20*time.Second, state(alerting.StatePending))
	nubotest.WaitFor(t, 20*time.Second, state(alerting.StateFiring))
	msg := recv.wait(t, "firing")
	instance := "127.0.0.1:" + strconv.Itoa(port)
	a := msg.Alerts[0]
	wantLabels := map[string]string{
		"alertname": "queue_backlog", "severity": "warning", "team": "worker-team", "cluster": "local",
		"job": "worker", "service": "worker", "replica": "0", "instance": instance,
	}
	if fmt.Sprint(a.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("alert labels %v, want %v", a.Labels, wantLabels)
	}
	if got, want := a.Annotations["summary"], "25 jobs wait on "+instance; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if msg.Receiver != "oncall" || msg.GroupKey != `{}:{alertname="queue_backlog"}` || !strings.HasPrefix(a.GeneratorURL, "http://127.0.0.1:4500/graph?g0.expr=queue_depth+%3E+10") {
		t.Errorf("payload: %+v", msg)
	}
	if held := a.StartsAt.Sub(notifier.Alerts(time.Now())[0].ActiveAt); held < 300*time.Millisecond {
		t.Errorf("fired %v after becoming active, before its for of 300ms", held)
	}

	depth.Set(0)
	resolved := recv.wait(t, "resolved")
	if len(resolved.Alerts) != 1 || resolved.Alerts[0].EndsAt.IsZero() {
		t.Errorf("resolved payload: %+v", resolved)
	}

	// The ALERTS series recorded both states.
	vec, err := m.Query(context.Background(), `count by (alertstate) (count_over_time(ALERTS{alertname="queue_backlog"}[1m]))`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]bool{}
	for _, s := range vec {
		states[s.Metric.Get("alertstate")] = true
	}
	if !states["pending"] || !states["firing"] {
		t.Errorf("ALERTS states recorded: %v", vec)
	}
}

// TestReloadKeepsAlertState evaluates at chosen times: an alert keeps
// firing across SetRules, and the series of removed rules go stale at the
// next evaluation.
func TestReloadKeepsAlertState(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	values := make([]float64, 41)
	for i := range values {
		values[i] = 1
	}
	appendSeries(t, store, labels.FromStrings("__name__", "x", "job", "a"), 15*time.Second, values...)
	var mu sync.Mutex
	var notified []alerting.Alert
	ev, err := NewEvaluator(store, EvaluatorOptions{Interval: 15 * time.Second, Notify: func(_ time.Time, as []alerting.Alert) {
		mu.Lock()
		notified = as
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	both := []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{
		{Alert: "x_up", Expr: "x > 0", For: modelDur(time.Minute)},
		{Record: "x:doubled", Expr: "x * 2"},
	}}}
	if err := ev.SetRules(both); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return time.Unix(t0, 0).Add(d) }
	state := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(notified) == 0 {
			return "inactive"
		}
		return string(notified[0].State)
	}
	query := func(expr string, ts time.Time) int {
		vec, err := store.Query(context.Background(), expr, ts)
		if err != nil {
			t.Fatal(err)
		}
		return len(vec)
	}
	ev.Evaluate(context.Background(), at(0))
	if state() != "pending" {
		t.Fatalf("at 0: %s", state())
	}
	ev.Evaluate(context.Background(), at(time.Minute))
	if state() != "firing" {
		t.Fatalf("at 1m: %s", state())
	}
	if err := ev.SetRules(both); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at(75*time.Second))
	if state() != "firing" || !notified[0].ActiveAt.Equal(at(0)) {
		t.Errorf("after a reload: %s since %v, want firing since %v", state(), notified[0].ActiveAt, at(0))
	}
	if n := query(`x:doubled`, at(75*time.Second)); n != 1 {
		t.Errorf("x:doubled before its removal: %d series", n)
	}
	if err := ev.SetRules([]rulefmt.RuleGroup{{Name: "g", Rules: both[0].Rules[:1]}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at(90*time.Second))
	if n := query(`x:doubled`, at(90*time.Second)); n != 0 {
		t.Errorf("x:doubled after its removal: %d series, want stale", n)
	}
	if err := ev.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at(105*time.Second))
	if n := query(`ALERTS`, at(105*time.Second)); n != 0 {
		t.Errorf("ALERTS after the group's removal: %d series, want stale", n)
	}
	if state() != "inactive" {
		t.Errorf("alerts after the group's removal: %v", notified)
	}

	bad := []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{{Record: "r", Expr: "sum("}}}, {Name: "g"}}
	err = ev.SetRules(bad)
	if err == nil || !strings.Contains(err.Error(), `rule group "g", rule 1 (r): expr:`) || !strings.Contains(err.Error(), `rule group "g": defined twice`) {
		t.Errorf("SetRules of bad groups: %v", err)
	}
}

// TestRuleGroupsLoad checks that every group rulegroups builds loads into
// Prometheus' rules package as it is.
func TestRuleGroupsLoad(t *testing.T) {
	t.Parallel()
	app, err := spec.Parse("nubo.yaml", []byte(`name: shop
observability:
  metrics: {interval: 30s}
  alerts:
    - name: high_error_rate
      expr: 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05'
      for: 5m
      severity: critical
      labels: {team: users}
      annotations: {summary: "{{ $value | humanizePercentage }} of requests fail"}
  slos:
    avail:
      objective: 99.9
      indicators:
        - {name: a, type: ratio, errors: 'sum(rate(e[{{.window}}]))', total: 'sum(rate(t[{{.window}}]))'}
databases:
  users-db:
    type: postgres
    monitoring:
      alerts:
        - {name: users-db-connections-high, expr: 'pg_stat_activity_count > 80', for: 5m, severity: warning}
`))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := rulegroups.Build(app)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := NewEvaluator(openStore(t), EvaluatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetRules(groups); err != nil {
		t.Errorf("the generated groups do not load: %v", err)
	}
}

func promHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func modelDur(d time.Duration) model.Duration { return model.Duration(d) }
