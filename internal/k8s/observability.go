package k8s

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/spec"
)

const monitoringAPI = "monitoring.coreos.com/v1"

// monitoring reports whether Prometheus Operator objects are rendered.
func (b *builder) monitoring() bool { return b.app.Kubernetes.Monitoring == "prometheus-operator" }

// scrapeEndpoint completes an endpoint of a ServiceMonitor or PodMonitor:
// the spec's interval, its extra labels, and the service and replica labels
// nubo's own scraper adds, so that the same queries work in both worlds.
func (b *builder) scrapeEndpoint(ep map[string]any) map[string]any {
	m := b.app.Observability.Metrics
	ep["interval"] = dur(m.Interval.Duration)
	relabel := []any{
		map[string]any{"action": "replace", "sourceLabels": []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name"}, "targetLabel": "service"},
		map[string]any{"action": "replace", "sourceLabels": []string{"__meta_kubernetes_pod_name"}, "targetLabel": "replica"},
	}
	for _, k := range sortedKeys(m.Labels) {
		relabel = append(relabel, map[string]any{"action": "replace", "targetLabel": k, "replacement": m.Labels[k]})
	}
	ep["relabelings"] = relabel
	return ep
}

func (b *builder) observability() error {
	o := b.app.Observability
	if len(o.Logs.Parsers)+len(o.Logs.Filters) > 0 {
		b.warnf("observability.logs", "parsers and filters are not rendered: on Kubernetes the cluster's log collector parses and filters")
	}
	if len(o.Tracing.Headers)+len(o.Tracing.Baggage) > 0 && !b.renderCollector() {
		b.warnf("observability.tracing", "headers and baggage are rendered with the OpenTelemetry Collector, which only tracing.export.otlp asks for")
	}
	if err := b.dashboards(); err != nil {
		return err
	}
	if !b.monitoring() {
		if len(o.Metrics.Scrape)+len(o.Alerts)+len(o.SLOs)+len(o.Channels) > 0 {
			b.warnf("observability", "scrape targets, alerts, SLOs and channels are not rendered: kubernetes.monitoring is none")
		}
		return nil
	}
	for _, t := range o.Metrics.Scrape {
		ep := map[string]any{"path": t.Path}
		if t.Port > 0 {
			ep["portNumber"] = t.Port
		} else {
			ep["port"] = "http"
			if s := b.app.Services[t.Service]; s != nil && s.GRPC {
				ep["port"] = "grpc"
			}
		}
		b.addCustom(monitoringAPI, "PodMonitor", t.Service, "service", map[string]any{"spec": map[string]any{
			"selector":            map[string]any{"matchLabels": b.selector(t.Service)},
			"podMetricsEndpoints": []any{b.scrapeEndpoint(ep)},
		}})
	}
	groups, err := rulegroups.BuildFor(b.app, rulegroups.Kubernetes)
	if err != nil {
		return err
	}
	for _, g := range groups {
		b.prometheusRule(g)
	}
	return b.alertmanagerConfig()
}

// prometheusRule renders one of the rule groups the local engine
// evaluates (internal/metrics, internal/slo) as a PrometheusRule of its
// own: the same expressions, labels and annotations.
func (b *builder) prometheusRule(g rulefmt.RuleGroup) {
	var rules []any
	for _, r := range g.Rules {
		m := map[string]any{"expr": r.Expr}
		if r.Record != "" {
			m["record"] = r.Record
		} else {
			m["alert"] = r.Alert
		}
		if r.For > 0 {
			m["for"] = dur(time.Duration(r.For))
		}
		if r.KeepFiringFor > 0 {
			m["keep_firing_for"] = dur(time.Duration(r.KeepFiringFor))
		}
		if len(r.Labels) > 0 {
			m["labels"] = r.Labels
		}
		if len(r.Annotations) > 0 {
			m["annotations"] = r.Annotations
		}
		rules = append(rules, m)
	}
	group := map[string]any{"name": g.Name, "rules": rules}
	if g.Interval > 0 {
		group["interval"] = dur(time.Duration(g.Interval))
	}
	name := strings.NewReplacer(":", "-", "_", "-").Replace(g.Name)
	b.addCustom(monitoringAPI, "PrometheusRule", name, "observability", map[string]any{"spec": map[string]any{"groups": []any{group}}})
}

// nullReceiver takes what no route sends elsewhere; it notifies no one.
const nullReceiver = "null"

// alertmanagerConfig renders channels as receivers and routes each alert to
// its channels. An escalation policy becomes one route per step and
// channel, held back by the step's delay (group_wait); acknowledging is
// silencing the alert in Alertmanager, which stops the later steps.
func (b *builder) alertmanagerConfig() error {
	o := b.app.Observability
	if len(o.Channels) == 0 {
		return nil
	}
	receivers := []any{map[string]any{"name": nullReceiver}}
	for _, name := range sortedKeys(o.Channels) {
		r, err := b.receiver(name, o.Channels[name])
		if err != nil {
			return fmt.Errorf("channel %q: %w", name, err)
		}
		receivers = append(receivers, r)
	}
	// The same routes the local notifier follows (internal/alerting), by
	// alert name.
	var routes []any
	byAlert := alerting.Routes(b.app)
	for _, name := range sortedKeys(byAlert) {
		a := byAlert[name]
		matchers := []any{map[string]any{"name": "alertname", "value": name, "matchType": "="}}
		for _, c := range a.Channels {
			routes = append(routes, map[string]any{"receiver": c, "matchers": matchers, "continue": true})
		}
		e := o.Escalation[a.Escalation]
		if e == nil {
			continue
		}
		var total, at time.Duration
		for _, st := range e.Steps {
			total += st.Delay.Duration
		}
		for _, st := range e.Steps {
			at += st.Delay.Duration
			for _, c := range st.Channels {
				route := map[string]any{"receiver": c, "matchers": matchers, "continue": true, "groupWait": dur(at)}
				if e.Repeat && total > 0 {
					route["repeatInterval"] = dur(total)
				}
				routes = append(routes, route)
			}
		}
	}
	route := map[string]any{"receiver": nullReceiver, "groupBy": []string{"alertname"}}
	if len(routes) > 0 {
		route["routes"] = routes
	}
	b.addCustom("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", b.app.Name, "observability", map[string]any{"spec": map[string]any{
		"route":     route,
		"receivers": receivers,
	}})
	return nil
}

// secretSelector returns the Secret and key of a value written as exactly
// ${secrets.NAME.KEY}.
func secretSelector(v string) (name, key string, ok bool) {
	expr, found := strings.CutPrefix(v, "${")
	expr, closed := strings.CutSuffix(expr, "}")
	if !found || !closed || strings.Contains(expr, "${") {
		return "", "", false
	}
	parts := strings.Split(expr, ".")
	if len(parts) != 3 || parts[0] != "secrets" {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// receiver is an Alertmanager receiver for a channel. URLs written in the
// spec (not secrets) that Alertmanager only takes from a Secret get a
// Secret of their own.
func (b *builder) receiver(name string, c *spec.Channel) (map[string]any, error) {
	r := map[string]any{"name": name}
	urlRef := func() (map[string]any, error) {
		if s, k, ok := secretSelector(c.URL); ok {
			return map[string]any{"name": s, "key": k}, nil
		}
		secret := "alertmanager-" + name
		err := b.addTyped(&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: b.meta(secret, "observability"),
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{"url": b.interpolateEnv(c.URL)},
		})
		return map[string]any{"name": secret, "key": "url"}, err
	}
	switch c.Type {
	case "webhook":
		if s, k, ok := secretSelector(c.URL); ok {
			r["webhookConfigs"] = []any{map[string]any{"urlSecret": map[string]any{"name": s, "key": k}, "sendResolved": true}}
		} else {
			r["webhookConfigs"] = []any{map[string]any{"url": b.interpolateEnv(c.URL), "sendResolved": true}}
		}
	case "slack":
		ref, err := urlRef()
		if err != nil {
			return nil, err
		}
		r["slackConfigs"] = []any{map[string]any{"apiURL": ref, "sendResolved": true}}
	case "email":
		cfg := map[string]any{"to": strings.Join(c.To, ", "), "sendResolved": true}
		if smtp := c.SMTP; smtp != nil {
			cfg["smarthost"] = fmt.Sprintf("%s:%d", smtp.Host, smtp.Port)
			from := smtp.From
			if from == "" {
				from = "nubo@" + b.ns
			}
			cfg["from"] = from
			if smtp.Username != "" {
				cfg["authUsername"] = b.interpolateEnv(smtp.Username)
			}
			if s, k, ok := secretSelector(smtp.Password); ok {
				cfg["authPassword"] = map[string]any{"name": s, "key": k}
			} else if smtp.Password != "" {
				b.warnf(pathOf("observability.channels", name)+".smtp.password", "not rendered: Alertmanager takes the password from a Secret; write ${secrets.NAME.KEY}")
			}
		}
		r["emailConfigs"] = []any{cfg}
	case "log":
		// Alertmanager keeps its own log of notifications: a receiver
		// without configurations is the nearest thing.
	}
	return r, nil
}
