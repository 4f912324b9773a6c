package k8s

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations nubo sets.
const (
	// AnnotationKeys lists a rendered Secret's keys, so that the output of
	// `nubo render` says what `nubo deploy` will fill in.
	AnnotationKeys = "nubo.dev/keys"
	// AnnotationSpecHash is on the pod templates of nubo's components: a
	// change of the spec rolls them.
	AnnotationSpecHash = "nubo.dev/spec-hash"
	// AnnotationPrune "never" keeps an object from nubo deploy --prune
	// once the spec no longer renders it: the backups' volume outlives
	// the streams it backed up.
	AnnotationPrune = "nubo.dev/prune"
	// AnnotationAudit is set by nubo deploy on what it applies: the
	// number and hash of its record in the local audit trail
	// ("12:9f86d0..."), which nubo audit shows.
	AnnotationAudit = "nubo.dev/audit"
	// AnnotationDeployedBy and AnnotationDeployedAt say who deployed
	// (cli:USER) and when (RFC 3339), as the record does.
	AnnotationDeployedBy = "nubo.dev/deployed-by"
	AnnotationDeployedAt = "nubo.dev/deployed-at"
)

func (b *builder) namespace() error {
	labels := b.labels(b.ns, "")
	if b.app.Kubernetes.Mesh == "istio" {
		// Istio injects its sidecar into the pods of labelled namespaces.
		labels["istio-injection"] = "enabled"
	}
	return b.addTyped(&corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: b.ns, Labels: labels},
	})
}

func (b *builder) config() error {
	for _, name := range sortedKeys(b.app.Config) {
		if err := b.addTyped(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: b.meta(name, "config"),
			Data:       b.app.Config[name],
		}); err != nil {
			return err
		}
	}
	return nil
}

// secretTypes maps the spec's secret types to Kubernetes'.
var secretTypes = map[string]corev1.SecretType{
	"opaque":          corev1.SecretTypeOpaque,
	"tls":             corev1.SecretTypeTLS,
	"basic-auth":      corev1.SecretTypeBasicAuth,
	"docker-registry": corev1.SecretTypeDockerConfigJson,
}

func (b *builder) secrets() error {
	for _, name := range sortedKeys(b.app.Secrets) {
		s := b.app.Secrets[name]
		meta := b.meta(name, "secret")
		meta.Annotations = map[string]string{AnnotationKeys: strings.Join(s.Keys, ",")}
		sec := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta,
			Type:       secretTypes[s.Type],
		}
		if vals, ok := b.opts.Secrets[name]; ok {
			sec.Data = map[string][]byte{}
			for _, k := range s.Keys {
				v, ok := vals[k]
				if !ok {
					return fmt.Errorf("secret %q: no value for key %q", name, k)
				}
				sec.Data[k] = []byte(v.Reveal())
			}
		}
		if err := b.addTyped(sec); err != nil {
			return err
		}
	}
	return nil
}

// dur writes a duration the way every API nubo renders for accepts: Go's
// units up to hours, without zero parts (90m -> 1h30m, 30d -> 720h).
// Prometheus, Istio (protobuf durations), Gateway API and NATS all read it.
func dur(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		fmt.Fprintf(&b, "%ds", s)
		d -= s * time.Second
	}
	if ms := d / time.Millisecond; ms > 0 {
		fmt.Fprintf(&b, "%dms", ms)
	}
	if b.Len() == 0 {
		return "1ms" // below a millisecond: the smallest every API accepts
	}
	return b.String()
}

// seconds rounds a duration up to whole seconds, as Kubernetes' *Seconds
// fields take it.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

// sortedKeys returns a map's keys in order: every loop over a map that
// renders something goes through it, so output is stable.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pathOf builds a spec field path as the spec package writes it, for
// warnings: keys with dots are quoted.
func pathOf(parent, key string) string {
	if strings.ContainsAny(key, ".[]\"") {
		return fmt.Sprintf("%s[%q]", parent, key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}
