package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// nubo's own components on Kubernetes: the same code `nubo up` runs in one
// process, each as a Deployment of the nubo image running
// `nubo serve COMPONENT --spec FILE`.
const (
	// componentLabel is the LabelComponent value of the components' pods.
	componentLabel = "platform"
	// componentPort serves the component's HTTP: the gateway's API, the
	// platform API (NUBO_API) of the dispatcher, the event store's API, and
	// /healthz, /readyz and /metrics on each.
	componentPort = 8080
	// specDir is where the spec ConfigMap is mounted.
	specDir = "/etc/nubo/spec"
	// secretsDir holds one folder per secret a component reads, one file per
	// key (NUBO_SECRETS_DIR).
	secretsDir = "/etc/nubo/secrets"
	// specConfigMap holds the spec files and the files they refer to.
	specConfigMap = "nubo-spec"
	// schemasConfigMap holds the JSON Schema of each event type.
	schemasConfigMap = "nubo-event-schemas"
)

// componentName is the name of a component's objects: nubo-gateway, ...
func componentName(c string) string { return "nubo-" + c }

// specFile is one file of the spec ConfigMap: its key and its path under
// specDir.
type specFile struct {
	key, path string
	data      []byte
}

func (b *builder) components() error {
	var comps []string
	if b.app.Gateway != nil {
		comps = append(comps, "gateway")
	}
	if b.hasEvents() {
		comps = append(comps, "events")
	}
	if b.app.EventStore != nil {
		comps = append(comps, "eventstore")
	}
	if len(b.app.Events) > 0 {
		if err := b.schemas(); err != nil {
			return err
		}
	}
	if len(comps) == 0 {
		return nil
	}
	files, err := b.specFiles()
	if err != nil {
		return err
	}
	data := map[string]string{}
	h := sha256.New()
	for _, f := range files {
		data[f.key] = string(f.data)
		fmt.Fprintf(h, "%s\x00%d\x00", f.key, len(f.data))
		h.Write(f.data)
	}
	if err := b.addTyped(&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: b.meta(specConfigMap, componentLabel),
		Data:       data,
	}); err != nil {
		return err
	}
	hash := hex.EncodeToString(h.Sum(nil))[:16]
	for _, c := range comps {
		if err := b.component(c, files, hash); err != nil {
			return fmt.Errorf("component %s: %w", c, err)
		}
	}
	return nil
}

// specFiles reads the spec's files, and the gateway's key-set files, for the
// spec ConfigMap; their paths relative to the main file's folder are kept,
// so that includes resolve as they do locally. Secrets' dotenv files are
// never among them.
func (b *builder) specFiles() ([]specFile, error) {
	var rels []string
	for _, f := range b.app.Files() {
		rel, err := filepath.Rel(b.app.Dir, f)
		if err != nil {
			return nil, err
		}
		rels = append(rels, rel)
	}
	if g := b.app.Gateway; g != nil {
		for _, name := range sortedKeys(g.Authorizers) {
			if f := g.Authorizers[name].JWKSFile; f != "" {
				rel, err := relToSpec(b.app.Dir, f)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", pathOf("gateway.authorizers", name)+".jwksFile", err)
				}
				rels = append(rels, rel)
			}
		}
	}
	var out []specFile
	seen := map[string]bool{}
	for _, rel := range rels {
		p := filepath.ToSlash(rel)
		if filepath.IsAbs(rel) || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("%s is outside the spec's folder %s: the components cannot mount it from the spec ConfigMap; move it under that folder", rel, b.app.Dir)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		data, err := os.ReadFile(filepath.Join(b.app.Dir, rel))
		if err != nil {
			return nil, fmt.Errorf("read %s for the spec ConfigMap: %w", rel, err)
		}
		key := strings.NewReplacer("/", "__").Replace(p)
		out = append(out, specFile{key: key, path: p, data: data})
	}
	return out, nil
}

// relToSpec returns file relative to the spec's folder dir: a relative
// path as it is, an absolute one inside dir as the relative path it is. A
// path outside dir is an error naming dir.
func relToSpec(dir, file string) (string, error) {
	if !filepath.IsAbs(file) {
		return filepath.Clean(file), nil
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absDir, filepath.Clean(file))
	if err != nil || rel == ".." || strings.HasPrefix(filepath.ToSlash(rel), "../") {
		return "", fmt.Errorf("%s is outside the spec's folder %s: the components cannot mount it from the spec ConfigMap; move it under that folder", file, absDir)
	}
	return rel, nil
}

// componentSecrets are the secrets a component reads: the gateway's API
// keys, the event store's encryption key.
func (b *builder) componentSecrets(c string) []string {
	var out []string
	switch c {
	case "gateway":
		g := b.app.Gateway
		for _, name := range sortedKeys(g.Authorizers) {
			if k := g.Authorizers[name].Keys; k != nil {
				out = append(out, k.Secret)
			}
		}
	case "eventstore":
		if k := b.app.EventStore.Encryption.Key; k != nil && b.app.EventStore.Encryption.Enabled {
			out = append(out, k.Secret)
		}
	}
	return dedupe(out)
}

func (b *builder) component(c string, files []specFile, hash string) error {
	name := componentName(c)
	if err := b.serviceAccount(name, componentLabel); err != nil {
		return err
	}
	mounts := []corev1.VolumeMount{{Name: "spec", MountPath: specDir, ReadOnly: true}}
	items := make([]corev1.KeyToPath, len(files))
	for i, f := range files {
		items[i] = corev1.KeyToPath{Key: f.key, Path: f.path}
	}
	volumes := []corev1.Volume{{Name: "spec", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: specConfigMap}, Items: items,
	}}}}
	for i, s := range b.componentSecrets(c) {
		// A volume's name is a DNS label: "secret-"+s could pass 63
		// characters, an index cannot.
		vol := fmt.Sprintf("secret-%d", i)
		volumes = append(volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s}}})
		mounts = append(mounts, corev1.VolumeMount{Name: vol, MountPath: path.Join(secretsDir, s), ReadOnly: true})
	}
	health := func(p string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstr.FromString("http")}}, PeriodSeconds: 5}
	}
	container := corev1.Container{
		Name:  c,
		Image: b.opts.Image,
		Args:  []string{"serve", c, "--spec", path.Join(specDir, files[0].path)},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: componentPort, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			{Name: "NUBO_APP", Value: b.app.Name},
			{Name: "NUBO_NAMESPACE", Value: b.ns},
			{Name: "NUBO_NATS_URL", Value: b.opts.NATSURL},
			{Name: "NUBO_SECRETS_DIR", Value: secretsDir},
			{Name: "NUBO_LISTEN", Value: fmt.Sprintf(":%d", componentPort)},
		},
		LivenessProbe:  health("/healthz"),
		ReadinessProbe: health("/readyz"),
		VolumeMounts:   mounts,
	}
	pod := b.podTemplate(name, componentLabel, container)
	pod.Annotations = map[string]string{AnnotationSpecHash: hash}
	pod.Spec.Volumes = volumes
	// The gateway takes traffic and scales out; the dispatcher and the
	// event store own schedules and projections, which must run once.
	replicas := int32(1)
	if c == "gateway" {
		replicas = 2
	}
	if err := b.addTyped(&appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(name, componentLabel),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: b.selector(name)},
			Template: pod,
		},
	}); err != nil {
		return err
	}
	if err := b.addTyped(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(name, componentLabel),
		Spec: corev1.ServiceSpec{
			Selector: b.selector(name),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
				AppProtocol: ptr("http"),
			}},
		},
	}); err != nil {
		return err
	}
	if replicas > 1 {
		if err := b.disruptionBudget(name, componentLabel); err != nil {
			return err
		}
	}
	if b.monitoring() {
		b.addCustom("monitoring.coreos.com/v1", "ServiceMonitor", name, componentLabel, map[string]any{"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": b.selector(name)},
			"endpoints": []any{b.scrapeEndpoint(map[string]any{"port": "http", "path": "/metrics"})},
		}})
	}
	return nil
}

// schemas renders the JSON Schemas of the event types as a ConfigMap, one
// key per type.
func (b *builder) schemas() error {
	data := map[string]string{}
	for _, t := range sortedKeys(b.app.Events) {
		e := b.app.Events[t]
		if e.Schema == nil {
			continue
		}
		js, err := json.MarshalIndent(e.Schema, "", "  ")
		if err != nil {
			return fmt.Errorf("event %q: schema: %w", t, err)
		}
		key := strings.NewReplacer(":", "_", "/", "_").Replace(t) + ".json"
		data[key] = string(js) + "\n"
	}
	return b.addTyped(&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: b.meta(schemasConfigMap, componentLabel),
		Data:       data,
	})
}
