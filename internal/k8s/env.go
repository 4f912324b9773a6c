package k8s

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/nubo-dev/nubo/internal/spec"
)

// containerEnv is the environment of a service's or function's container:
// envFrom for its config maps and secrets, then nubo's variables (as `nubo
// up` sets them), then env with ${...} resolved the Kubernetes way.
//
// A value that is exactly one reference to a secret, config key or database
// credential becomes a valueFrom; a reference inside a longer value becomes
// a helper variable defined first and expanded by the kubelet as $(NAME).
// Secret values so never appear in a manifest.
func (b *builder) containerEnv(path, name string, env map[string]string, from spec.EnvFrom, port int32) ([]corev1.EnvVar, []corev1.EnvFromSource, error) {
	var envFrom []corev1.EnvFromSource
	for _, c := range from.Config {
		envFrom = append(envFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: c}}})
	}
	for _, s := range from.Secrets {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}})
	}

	var base []corev1.EnvVar
	setBase := func(k, v string) {
		if _, ok := env[k]; !ok {
			base = append(base, corev1.EnvVar{Name: k, Value: v})
		}
	}
	setBase("NUBO_APP", b.app.Name)
	setBase("NUBO_NAMESPACE", b.ns)
	setBase("NUBO_SERVICE", name)
	if _, ok := env["NUBO_REPLICA"]; !ok {
		base = append(base, corev1.EnvVar{Name: "NUBO_REPLICA", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
		}})
	}
	if port > 0 {
		setBase("PORT", strconv.Itoa(int(port)))
	}
	if b.hasEvents() {
		setBase("NUBO_API", "http://"+componentName("events"))
	}
	if t := b.app.Observability.Tracing; b.renderCollector() {
		setBase("OTEL_EXPORTER_OTLP_ENDPOINT", collectorEndpoint())
		setBase("OTEL_SERVICE_NAME", name)
		setBase("OTEL_RESOURCE_ATTRIBUTES", "service.namespace="+b.app.Name)
		setBase("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
		setBase("OTEL_TRACES_SAMPLER_ARG", strconv.FormatFloat(*t.SampleRate, 'f', -1, 64))
	}

	r := &envRefs{b: b, workload: name, seen: map[string]bool{}}
	var user []corev1.EnvVar
	for _, k := range sortedKeys(env) {
		v, err := r.value(k, env[k])
		if err != nil {
			return nil, nil, fmt.Errorf("env %s: %w", k, err)
		}
		user = append(user, v)
	}
	out := append(base, r.helpers...)
	return append(out, user...), envFrom, nil
}

// envRefs resolves the ${...} of one container's env.
type envRefs struct {
	b        *builder
	workload string
	helpers  []corev1.EnvVar
	seen     map[string]bool
}

// ref is what one ${...} resolves to: a literal, or a value the kubelet
// reads from a Secret or ConfigMap.
type ref struct {
	literal string
	from    *corev1.EnvVarSource
	// helper names the variable holding from, when used inside a value.
	helper string
	// prefix and suffix surround the value of from; a reference with them
	// is always written through its helper.
	prefix, suffix string
}

// placeholder marks a reference inside a value while the literal parts
// around it are escaped; NUL never occurs in spec strings.
const placeholder = "\x00"

func (r *envRefs) value(name, raw string) (corev1.EnvVar, error) {
	var refs []ref
	out, err := spec.Interpolate(raw, func(expr string) (string, error) {
		v, err := r.b.resolve(expr, r.workload)
		if err != nil {
			return "", err
		}
		if v.from == nil {
			return v.literal, nil
		}
		refs = append(refs, v)
		return placeholder + strconv.Itoa(len(refs)-1) + placeholder, nil
	})
	if err != nil {
		return corev1.EnvVar{}, err
	}
	if len(refs) == 1 && out == placeholder+"0"+placeholder && refs[0].prefix == "" && refs[0].suffix == "" {
		return corev1.EnvVar{Name: name, ValueFrom: refs[0].from}, nil
	}
	// The kubelet expands $(VAR) in values; a literal "$(" must stay one.
	var b strings.Builder
	parts := strings.Split(out, placeholder)
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(strings.ReplaceAll(p, "$(", "$$("))
			continue
		}
		n, _ := strconv.Atoi(p)
		v := refs[n]
		if !r.seen[v.helper] {
			r.seen[v.helper] = true
			r.helpers = append(r.helpers, corev1.EnvVar{Name: v.helper, ValueFrom: v.from})
		}
		b.WriteString(strings.ReplaceAll(v.prefix, "$(", "$$(") + "$(" + v.helper + ")" + strings.ReplaceAll(v.suffix, "$(", "$$("))
	}
	return corev1.EnvVar{Name: name, Value: b.String()}, nil
}

// resolve resolves one ${expr} for Kubernetes, in the environment of
// workload (database credentials depend on the role it is granted).
func (b *builder) resolve(expr, workload string) (ref, error) {
	parts := strings.Split(expr, ".")
	switch {
	case parts[0] == "env" && len(parts) == 2:
		return ref{literal: b.opts.Getenv(parts[1])}, nil
	case parts[0] == "services" && len(parts) == 3 && parts[2] == "url":
		return ref{literal: b.serviceURL(parts[1])}, nil
	case parts[0] == "functions" && len(parts) == 3 && parts[2] == "url":
		return ref{literal: b.functionURL(parts[1])}, nil
	case parts[0] == "secrets" && len(parts) == 3:
		return ref{from: secretRef(parts[1], parts[2]), helper: "NUBO_SECRET_" + envName(parts[1]) + "_" + envName(parts[2])}, nil
	case parts[0] == "config" && len(parts) == 3:
		return ref{
			from: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: parts[1]}, Key: parts[2],
			}},
			helper: "NUBO_CONFIG_" + envName(parts[1]) + "_" + envName(parts[2]),
		}, nil
	case parts[0] == "databases" && len(parts) == 3:
		return b.databaseRef(parts[1], parts[2], workload)
	}
	return ref{}, fmt.Errorf("${%s} has no meaning on Kubernetes", expr)
}

func secretRef(name, key string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key,
	}}
}

// interpolateEnv resolves the ${env.NAME} of a value that is not a
// container's environment (an image, an endpoint); anything else is left
// as written, which validation has already refused where it has no place.
func (b *builder) interpolateEnv(s string) string {
	out, err := spec.Interpolate(s, func(expr string) (string, error) {
		if name, ok := strings.CutPrefix(expr, "env."); ok {
			return b.opts.Getenv(name), nil
		}
		return "${" + expr + "}", nil
	})
	if err != nil {
		return s
	}
	return out
}

// serviceURL is how callers in the namespace reach a service: its name, as
// locally, with the port when the Service's is not 80.
func (b *builder) serviceURL(name string) string {
	s := b.app.Services[name]
	if s == nil || s.Expose.Port == 80 {
		return "http://" + name
	}
	return fmt.Sprintf("http://%s:%d", name, s.Expose.Port)
}

// functionURL is the address that invokes a function: Knative's cluster
// address, or the function's own Service.
func (b *builder) functionURL(name string) string {
	if b.app.Kubernetes.Functions == "knative" {
		return fmt.Sprintf("http://%s.%s.svc.cluster.local", name, b.ns)
	}
	return "http://" + name
}
