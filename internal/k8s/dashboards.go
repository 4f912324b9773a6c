package k8s

import (
	"encoding/json"
	"fmt"

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
	for _, name := range sortedKeys(b.app.Observability.Dashboards) {
		js, err := json.MarshalIndent(grafanaDashboard(b.app.Name, name, b.app.Observability.Dashboards[name]), "", "  ")
		if err != nil {
			return fmt.Errorf("dashboard %q: %w", name, err)
		}
		meta := b.meta("grafana-dashboard-"+name, "observability")
		meta.Labels[GrafanaDashboardLabel] = "1"
		if err := b.addTyped(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta,
			Data:       map[string]string{name + ".json": string(js) + "\n"},
		}); err != nil {
			return err
		}
	}
	return nil
}

// grafanaDashboard is Grafana's JSON model of a dashboard: two panels a
// row, each 12 columns wide.
func grafanaDashboard(app, name string, d *spec.Dashboard) map[string]any {
	title := d.Title
	if title == "" {
		title = name
	}
	uid := app + "-" + name
	if len(uid) > 40 { // Grafana's limit
		uid = uid[:40]
	}
	out := map[string]any{
		"uid":           uid,
		"title":         title,
		"schemaVersion": 39,
		"editable":      false,
		"tags":          []any{app, "nubo"},
	}
	if d.Refresh.IsSet() {
		out["refresh"] = d.Refresh.String()
	}
	if d.TimeRange.From != "" || d.TimeRange.To != "" {
		out["time"] = map[string]any{"from": d.TimeRange.From, "to": d.TimeRange.To}
	}
	var vars []any
	for _, v := range d.Variables {
		m := map[string]any{"name": v.Name, "type": v.Type, "multi": v.Multi, "includeAll": v.IncludeAll}
		if m["type"] == "" {
			m["type"] = "query"
		}
		switch {
		case v.Query != "":
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
	out["templating"] = map[string]any{"list": orEmpty(vars)}
	var panels []any
	for i, p := range d.Panels {
		var targets []any
		for j, t := range p.Targets {
			ref := t.RefID
			if ref == "" {
				ref = string(rune('A' + j%26))
			}
			tm := map[string]any{"expr": t.Expr, "refId": ref}
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
