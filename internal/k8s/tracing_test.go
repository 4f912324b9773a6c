package k8s

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestTracingRendersACollector renders the reference spec with an export
// endpoint: an OpenTelemetry Collector receives OTLP and sends it on with
// the spec's headers (a secret's value through the environment, never in
// the ConfigMap) and baggage, and the workloads send to it.
func TestTracingRendersACollector(t *testing.T) {
	app := loadSpec(t, "../spec/testdata/nubo.reference.yaml")
	app.Observability.Tracing.Export.OTLP = "http://jaeger.tracing:4318"
	app.Observability.Tracing.Headers = map[string]string{"Authorization": "Bearer ${secrets.api-keys.partner-a}"}
	res, err := Render(app, goldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	found := map[string]bool{}
	for _, o := range res.Objects {
		if o.GetName() == collectorName {
			found[o.GetKind()] = true
		}
		switch {
		case o.GetKind() == "ConfigMap" && o.GetName() == collectorName:
			text := o.Object["data"].(map[string]any)["config.yaml"].(string)
			if strings.Contains(text, "partner-a") || strings.Contains(text, "Bearer") {
				t.Errorf("the header's value is in the ConfigMap:\n%s", text)
			}
			if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
				t.Fatal(err)
			}
		case o.GetKind() == "Deployment" && o.GetName() == collectorName:
			b, _ := yaml.Marshal(o.Object)
			if !strings.Contains(string(b), "image: "+collectorImage) || !strings.Contains(string(b), "name: OTLP_HEADER_0") ||
				!strings.Contains(string(b), "secretKeyRef") {
				t.Errorf("collector deployment:\n%s", b)
			}
		case o.GetKind() == "Deployment" && o.GetName() == "users":
			b, _ := yaml.Marshal(o.Object)
			if !strings.Contains(string(b), "value: "+collectorEndpoint()) || !strings.Contains(string(b), "name: OTEL_SERVICE_NAME") {
				t.Errorf("users does not send to the collector:\n%s", b)
			}
		}
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "ServiceAccount"} {
		if !found[k] {
			t.Errorf("no %s/%s", k, collectorName)
		}
	}
	exp := cfg["exporters"].(map[string]any)["otlphttp"].(map[string]any)
	if exp["endpoint"] != "http://jaeger.tracing:4318" || exp["headers"].(map[string]any)["Authorization"] != "${env:OTLP_HEADER_0}" {
		t.Errorf("exporter %v", exp)
	}
	bag := cfg["processors"].(map[string]any)["resource/baggage"].(map[string]any)["attributes"].([]any)[0].(map[string]any)
	if bag["key"] != "env" || bag["value"] != "prod" {
		t.Errorf("baggage %v", bag)
	}
	traces := cfg["service"].(map[string]any)["pipelines"].(map[string]any)["traces"].(map[string]any)
	if traces["receivers"].([]any)[0] != "otlp" || traces["exporters"].([]any)[0] != "otlphttp" {
		t.Errorf("traces pipeline %v", traces)
	}

	// Without export, no collector and no OTEL_ endpoint.
	app.Observability.Tracing.Export.OTLP = ""
	res, err = Render(app, goldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		if o.GetName() == collectorName {
			t.Errorf("%s/%s rendered without tracing.export", o.GetKind(), o.GetName())
		}
	}
}
