package k8s

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// collectorImage is the OpenTelemetry Collector's contrib distribution,
// of the release whose pdata nubo's receiver decodes with.
const collectorImage = "otel/opentelemetry-collector-contrib:0.165.0"

// collectorName is the Deployment, Service and ConfigMap of the collector.
var collectorName = componentName("otel-collector")

// collectorEndpoint is where workloads send OTLP/HTTP.
func collectorEndpoint() string { return "http://" + collectorName + ":4318" }

// renderCollector reports whether the spec asks for a collector: traces
// exported somewhere (tracing.export.otlp), as nubo up does it.
func (b *builder) renderCollector() bool {
	return b.app.Observability.Tracing.Export.OTLP != ""
}

// tracing renders an OpenTelemetry Collector that receives the workloads'
// OTLP (gRPC and HTTP) and sends traces, logs and metrics on to
// tracing.export.otlp with tracing.headers, adding tracing.baggage to
// every resource. Header values come from the collector's environment
// (${env:...}), so that secrets they reference stay in Secrets.
func (b *builder) tracing() error {
	if !b.renderCollector() {
		return nil
	}
	t := b.app.Observability.Tracing
	if err := b.serviceAccount(collectorName, componentLabel); err != nil {
		return err
	}
	r := &envRefs{b: b, workload: collectorName, seen: map[string]bool{}}
	var env []corev1.EnvVar
	headers := map[string]string{}
	keys := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		v, err := r.value(fmt.Sprintf("OTLP_HEADER_%d", i), t.Headers[k])
		if err != nil {
			return fmt.Errorf("observability.tracing.headers.%s: %w", k, err)
		}
		env = append(env, v)
		headers[k] = fmt.Sprintf("${env:OTLP_HEADER_%d}", i)
	}
	env = append(r.helpers, env...)
	processors := map[string]any{"batch": map[string]any{}, "memory_limiter": map[string]any{"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20}}
	chain := []any{"memory_limiter"}
	if len(t.Baggage) > 0 {
		var attrs []any
		for _, k := range sortedKeys(t.Baggage) {
			attrs = append(attrs, map[string]any{"key": k, "value": t.Baggage[k], "action": "upsert"})
		}
		processors["resource/baggage"] = map[string]any{"attributes": attrs}
		chain = append(chain, "resource/baggage")
	}
	chain = append(chain, "batch")
	exporter := map[string]any{"endpoint": strings.TrimSuffix(b.interpolateEnv(t.Export.OTLP), "/v1/traces")}
	if len(headers) > 0 {
		exporter["headers"] = headers
	}
	pipeline := map[string]any{"receivers": []any{"otlp"}, "processors": chain, "exporters": []any{"otlphttp"}}
	cfg := map[string]any{
		"receivers": map[string]any{"otlp": map[string]any{"protocols": map[string]any{
			"grpc": map[string]any{"endpoint": "0.0.0.0:4317"},
			"http": map[string]any{"endpoint": "0.0.0.0:4318"},
		}}},
		"processors": processors,
		"exporters":  map[string]any{"otlphttp": exporter},
		"extensions": map[string]any{"health_check": map[string]any{"endpoint": "0.0.0.0:13133"}},
		"service": map[string]any{
			"extensions": []any{"health_check"},
			"pipelines":  map[string]any{"traces": pipeline, "logs": pipeline, "metrics": pipeline},
		},
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("observability.tracing: %w", err)
	}
	if err := b.addTyped(&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: b.meta(collectorName, componentLabel),
		Data:       map[string]string{"config.yaml": string(text)},
	}); err != nil {
		return err
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(13133)}}, PeriodSeconds: 10}
	container := corev1.Container{
		Name:  "collector",
		Image: collectorImage,
		Args:  []string{"--config=/etc/otelcol/config.yaml"},
		Ports: []corev1.ContainerPort{
			{Name: "otlp-grpc", ContainerPort: 4317, Protocol: corev1.ProtocolTCP},
			{Name: "otlp-http", ContainerPort: 4318, Protocol: corev1.ProtocolTCP},
		},
		Env:            env,
		LivenessProbe:  probe,
		ReadinessProbe: probe,
		VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/otelcol", ReadOnly: true}},
	}
	pod := b.podTemplate(collectorName, componentLabel, container)
	pod.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: collectorName},
	}}}}
	replicas := int32(1)
	if err := b.addTyped(&appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(collectorName, componentLabel),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: b.selector(collectorName)},
			Template: pod,
		},
	}); err != nil {
		return err
	}
	return b.addTyped(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(collectorName, componentLabel),
		Spec: corev1.ServiceSpec{
			Selector: b.selector(collectorName),
			Ports: []corev1.ServicePort{
				{Name: "otlp-grpc", Port: 4317, TargetPort: intstr.FromString("otlp-grpc"), Protocol: corev1.ProtocolTCP, AppProtocol: ptr("grpc")},
				{Name: "otlp-http", Port: 4318, TargetPort: intstr.FromString("otlp-http"), Protocol: corev1.ProtocolTCP, AppProtocol: ptr("http")},
			},
		},
	})
}
