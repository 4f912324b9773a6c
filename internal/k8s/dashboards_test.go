package k8s

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nubo-dev/nubo/internal/spec"
)

// everyPanelSpec has a dashboard with each panel type, each variable type,
// thresholds and axes, and a name long enough to need a hashed uid.
const everyPanelSpec = `name: dashboards-of-a-long-application-name
observability:
  dashboards:
    everything-on-one-dashboard:
      title: Everything
      refresh: 30s
      timeRange: {from: now-6h, to: now}
      variables:
        - {name: service, type: query, query: 'label_values(up, service)', multi: true, includeAll: true}
        - {name: code, type: custom, values: ["200", "500"]}
        - {name: env, type: constant, values: [prod]}
        - {name: step, type: interval, values: [1m, 5m]}
      panels:
        - title: Series
          type: timeseries
          targets: [{expr: 'sum by (service) (rate(up{service=~"$service"}[5m]))', legend: "{{service}}", refId: A}, {expr: up}]
          thresholds: [{value: 1, color: red, op: gt}, {value: 0.5, color: orange, op: lt}]
          axes: {left: {label: req/s, min: 0, max: 10, unit: reqps}}
        - {title: Stat, type: stat, targets: [{expr: up}]}
        - {title: Gauge, type: gauge, targets: [{expr: up}], axes: {right: {unit: percent}}}
        - {title: Table, type: table, targets: [{expr: up}]}
        - {title: Logs, type: logs, targets: [{expr: up}]}
        - {title: Traces, type: traces}
    empty: {}
`

// renderedDashboards returns the JSON of every dashboard ConfigMap a spec
// renders, by file name.
func renderedDashboards(t *testing.T, src string) map[string]string {
	t.Helper()
	app := loadOrParse(t, src)
	res, err := Render(app, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range res.Objects {
		if o.GetKind() != "ConfigMap" || o.GetLabels()[GrafanaDashboardLabel] != "1" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range data {
			out[k] = v
		}
	}
	if len(out) == 0 {
		t.Fatal("no dashboard rendered")
	}
	return out
}

// loadOrParse loads a spec file, or parses a spec written in the test.
func loadOrParse(t *testing.T, src string) *spec.App {
	t.Helper()
	if strings.HasSuffix(src, ".yaml") && !strings.Contains(src, "\n") {
		return loadSpec(t, src)
	}
	return parseSpec(t, src)
}

// TestDashboardsPassGrafanasStrictSchema decodes every rendered dashboard
// with the Grafana Foundation SDK's strict decoder, which refuses a
// missing required field, a wrong type or an unknown field, then runs its
// Validate; and checks that every panel, target and query variable takes
// its data source from the datasource variable, of type prometheus.
func TestDashboardsPassGrafanasStrictSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, src := range []string{"../../examples/shop/nubo.yaml", "../spec/testdata/nubo.reference.yaml", everyPanelSpec} {
		for file, js := range renderedDashboards(t, src) {
			var d dashboard.Dashboard
			if err := sdkError(d.UnmarshalJSONStrict([]byte(js))); err != nil {
				t.Errorf("%s: the Grafana Foundation SDK refuses it: %v", file, err)
				continue
			}
			if err := sdkError(d.Validate()); err != nil {
				t.Errorf("%s: the Grafana Foundation SDK finds it invalid: %v", file, err)
			}
			if d.Uid == nil || len(*d.Uid) > 40 {
				t.Errorf("%s: uid %v: want one of at most 40 characters", file, d.Uid)
			}
			checkDatasources(t, file, js)
		}
	}
}

// sdkError is err, or nil for the empty list of errors the SDK's
// generated code returns on success (a non-nil cog.BuildErrors).
func sdkError(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// checkDatasources checks the parts of the JSON model that the SDK's types
// leave open: the built-in annotation, the datasource variable, and the
// data source of every panel, target and query variable.
func checkDatasources(t *testing.T, file, js string) {
	t.Helper()
	var m struct {
		Annotations struct {
			List []struct {
				BuiltIn int    `json:"builtIn"`
				Type    string `json:"type"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name       string         `json:"name"`
				Type       string         `json:"type"`
				Query      any            `json:"query"`
				Datasource map[string]any `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string         `json:"title"`
			Datasource map[string]any `json:"datasource"`
			Targets    []struct {
				Datasource map[string]any `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(m.Annotations.List) != 1 || m.Annotations.List[0].BuiltIn != 1 || m.Annotations.List[0].Type != "dashboard" {
		t.Errorf("%s: annotations %+v, want Grafana's built-in one", file, m.Annotations.List)
	}
	if len(m.Templating.List) == 0 || m.Templating.List[0].Name != "datasource" || m.Templating.List[0].Type != "datasource" || m.Templating.List[0].Query != "prometheus" {
		t.Errorf("%s: first variable %+v, want datasource of type datasource, query prometheus", file, m.Templating.List)
	}
	isOurs := func(ds map[string]any) bool { return ds["type"] == "prometheus" && ds["uid"] == "${datasource}" }
	for _, v := range m.Templating.List {
		if v.Type == "query" && !isOurs(v.Datasource) {
			t.Errorf("%s: variable %s has data source %v, want ${datasource}", file, v.Name, v.Datasource)
		}
	}
	for _, p := range m.Panels {
		if !isOurs(p.Datasource) {
			t.Errorf("%s: panel %q has data source %v, want ${datasource}", file, p.Title, p.Datasource)
		}
		for i, tg := range p.Targets {
			if !isOurs(tg.Datasource) {
				t.Errorf("%s: panel %q target %d has data source %v, want ${datasource}", file, p.Title, i, tg.Datasource)
			}
		}
	}
}
