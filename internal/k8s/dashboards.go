package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nubo-dev/nubo/internal/spec"
)

// GrafanaDashboardLabel is the label Grafana's dashboard sidecar (in the
// Grafana and kube-prometheus-stack Helm charts) loads ConfigMaps by.
const GrafanaDashboardLabel = "grafana_dashboard"

// dashboards renders each dashboard as a ConfigMap holding Grafana's JSON
// model of it.
func (b *builder) dashboards() error {
	all, err := GrafanaDashboards(b.app)
	if err != nil {
		return err
	}
	for _, d := range all {
		meta := b.meta("grafana-dashboard-"+d.Name, "observability")
		meta.Labels[GrafanaDashboardLabel] = "1"
		if err := b.addTyped(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta,
			Data:       map[string]string{d.Name + ".json": string(d.JSON) + "\n"},
		}); err != nil {
			return err
		}
	}
	return nil
}

// NamedDashboard is one dashboard of the spec in Grafana's JSON model.
type NamedDashboard struct {
	// Name is the dashboard's key in observability.dashboards.
	Name string
	// JSON is Grafana's model of it, indented.
	JSON json.RawMessage
}

// GrafanaDashboards returns the spec's dashboards in Grafana's JSON model,
// by name: what nubo render puts in ConfigMaps, what nubo dashboards
// export prints and what the web console draws, so the three never differ.
func GrafanaDashboards(app *spec.App) ([]NamedDashboard, error) {
	var out []NamedDashboard
	for _, name := range sortedKeys(app.Observability.Dashboards) {
		js, err := json.MarshalIndent(grafanaDashboard(app.Name, name, app.Observability.Dashboards[name]), "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboard %q: %w", name, err)
		}
		out = append(out, NamedDashboard{Name: name, JSON: js})
	}
	return out, nil
}

// datasourceVariable is the dashboard variable that picks the Prometheus
// data source; every panel, target and query variable names its data
// source through it, so that the dashboard works whatever the data source
// is called in a given Grafana.
const datasourceVariable = spec.ReservedDashboardVariable

// prometheusDatasource is how a panel, target or variable names it.
var prometheusDatasource = map[string]any{"type": "prometheus", "uid": "${" + datasourceVariable + "}"}

// builtinAnnotations is the annotation Grafana adds to every dashboard it
// creates (alerts and annotations of this dashboard); its strict schema
// wants the list.
var builtinAnnotations = map[string]any{"list": []any{map[string]any{
	"builtIn":    1,
	"datasource": map[string]any{"type": "grafana", "uid": "-- Grafana --"},
	"enable":     true,
	"hide":       true,
	"iconColor":  "rgba(0, 211, 255, 1)",
	"name":       "Annotations & Alerts",
	"type":       "dashboard",
}}}

// maxUID is Grafana's limit on the length of a dashboard's uid.
const maxUID = 40

// dashboardUID is app-name, or, when that is longer than Grafana allows,
// its start and a hash of the whole, so that two dashboards never share one.
func dashboardUID(app, name string) string {
	uid := app + "-" + name
	if len(uid) <= maxUID {
		return uid
	}
	sum := sha256.Sum256([]byte(uid))
	return strings.TrimRight(uid[:maxUID-11], "-") + "-" + hex.EncodeToString(sum[:])[:10]
}

// grafanaDashboard is Grafana's JSON model of a dashboard: two panels a
// row, each 12 columns wide.
func grafanaDashboard(app, name string, d *spec.Dashboard) map[string]any {
	title := d.Title
	if title == "" {
		title = name
	}
	out := map[string]any{
		"uid":           dashboardUID(app, name),
		"title":         title,
		"schemaVersion": 39,
		"editable":      false,
		"tags":          []any{app, "nubo"},
		"annotations":   builtinAnnotations,
	}
	if d.Refresh.IsSet() {
		out["refresh"] = d.Refresh.String()
	}
	if d.TimeRange.From != "" || d.TimeRange.To != "" {
		out["time"] = map[string]any{"from": d.TimeRange.From, "to": d.TimeRange.To}
	}
	vars := []any{map[string]any{
		"name": datasourceVariable, "label": "Data source", "type": "datasource", "query": "prometheus",
		"multi": false, "includeAll": false, "refresh": 1,
	}}
	for _, v := range d.Variables {
		m := map[string]any{"name": v.Name, "type": v.Type, "multi": v.Multi, "includeAll": v.IncludeAll}
		if m["type"] == "" {
			m["type"] = "query"
		}
		switch {
		case v.Query != "":
			m["datasource"] = prometheusDatasource
			m["query"] = v.Query
			m["definition"] = v.Query
			m["refresh"] = 2 // on time range change
		case len(v.Values) > 0:
			var opts []any
			for _, val := range v.Values {
				opts = append(opts, map[string]any{"text": val, "value": val})
			}
			m["options"] = opts
			m["query"] = joinComma(v.Values)
		}
		vars = append(vars, m)
	}
	out["templating"] = map[string]any{"list": vars}
	var panels []any
	for i, p := range d.Panels {
		var targets []any
		for j, t := range p.Targets {
			ref := t.RefID
			if ref == "" {
				ref = string(rune('A' + j%26))
			}
			tm := map[string]any{"datasource": prometheusDatasource, "expr": t.Expr, "refId": ref}
			if t.Legend != "" {
				tm["legendFormat"] = t.Legend
			}
			targets = append(targets, tm)
		}
		defaults := map[string]any{}
		axis := p.Axes.Left
		if axis == nil {
			axis = p.Axes.Right
		}
		if axis != nil {
			if axis.Unit != "" {
				defaults["unit"] = axis.Unit
			}
			if axis.Min != nil {
				defaults["min"] = *axis.Min
			}
			if axis.Max != nil {
				defaults["max"] = *axis.Max
			}
			if axis.Label != "" {
				defaults["custom"] = map[string]any{"axisLabel": axis.Label}
			}
		}
		if len(p.Thresholds) > 0 {
			defaults["thresholds"] = map[string]any{"mode": "absolute", "steps": thresholdSteps(p.Thresholds)}
		}
		panels = append(panels, map[string]any{
			"id":          i + 1,
			"title":       p.Title,
			"type":        p.Type,
			"datasource":  prometheusDatasource,
			"gridPos":     map[string]any{"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
			"targets":     orEmpty(targets),
			"fieldConfig": map[string]any{"defaults": defaults, "overrides": []any{}},
		})
	}
	out["panels"] = orEmpty(panels)
	return out
}

// thresholdSteps turns the spec's thresholds into Grafana's steps, which
// color everything from a value up: a "lt" threshold colors the base
// instead, and green takes over at its value.
func thresholdSteps(ts []*spec.Threshold) []any {
	base := "green"
	var steps []any
	for _, t := range ts {
		if t.Op == "lt" {
			base = t.Color
			steps = append(steps, map[string]any{"color": "green", "value": t.Value})
			continue
		}
		steps = append(steps, map[string]any{"color": t.Color, "value": t.Value})
	}
	return append([]any{map[string]any{"color": base, "value": nil}}, steps...)
}

func orEmpty(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
