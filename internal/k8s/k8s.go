// Package k8s turns a spec into Kubernetes objects (`nubo render`) and puts
// them in a cluster (`nubo diff`, `nubo deploy`).
//
// # Overview
//
// Render maps every section of nubo.yaml to the objects DESIGN.md's table
// names: Deployments, Services, autoscalers and disruption budgets for
// services; Istio for the mesh; Knative for functions; the NATS JetStream
// controller for queues, topics and the event store; CloudNativePG and
// StatefulSets for databases; the Prometheus Operator and Grafana for
// observability; and nubo's own gateway, event dispatcher and event store as
// Deployments of the nubo image running `nubo serve`, reading the spec from a
// ConfigMap. Kubernetes' own kinds are built from k8s.io/api types; the kinds
// of those platforms are built as unstructured objects, whose field names the
// tests check against the platforms' published CRDs. Output is deterministic:
// the same spec gives the same bytes.
//
// Secrets are rendered without values. Deploy fills them from the sources
// `nubo up` reads (internal/secrets), straight into the cluster.
//
// Deploy, Diff and Prune talk to the cluster through client-go's dynamic
// client with server-side apply (field manager "nubo"), not the typed
// clientset or apply configurations: those add about 15 MiB and a minute of
// build to nubo for nothing the dynamic client cannot do.
package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Standard labels on every object nubo renders.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"
	// ManagedBy is the value of LabelManagedBy, and the field manager of
	// server-side apply.
	ManagedBy = "nubo"
)

// DefaultImage is the nubo image the components run when Options.Image is
// empty.
const DefaultImage = "ghcr.io/nubo-dev/nubo:latest"

// DefaultNATSURL is where the components and the JetStream objects find NATS
// when Options.NATSURL is empty: the Service of the NATS Helm chart installed
// as "nats" in the app's namespace.
const DefaultNATSURL = "nats://nats:4222"

// DefaultGatewayClass is the GatewayClass of the Gateway rendered for
// `kubernetes.ingress: gateway-api` when Options.GatewayClass is empty.
const DefaultGatewayClass = "istio"

// Options tune a rendering. The zero value renders with the defaults.
type Options struct {
	// Image is the nubo image of the gateway, dispatcher and event store.
	Image string
	// NATSURL is the NATS server the components connect to.
	NATSURL string
	// GatewayClass is the class of the Gateway API Gateway, when rendered.
	GatewayClass string
	// Namespace replaces the spec's namespace; empty keeps it.
	Namespace string
	// Getenv resolves ${env.NAME} at render time; nil resolves it empty.
	Getenv func(string) string
	// Secrets, when set, fills the Secrets' data: deploy sets it, render
	// never does, so that values never reach a file.
	Secrets secrets.Values
	// Generated fills the keys nubo generates (database roles' passwords):
	// secret name -> key -> value. Deploy sets it.
	Generated map[string]map[string]string
}

// Result is a rendering: the objects in apply order and what did not carry
// over to Kubernetes exactly.
type Result struct {
	// Objects are sorted by kind (in apply order), then name.
	Objects []*unstructured.Unstructured
	// Warnings are the spec's fields that do not carry over exactly.
	Warnings []Warning
}

// Warning is a spec field that renders differently from how `nubo up` runs
// it, or not at all.
type Warning struct {
	// Path is the field path, as spec.App.Pos takes it.
	Path string
	// Message says what Kubernetes gets instead.
	Message string
}

// String writes the warning as path: message.
func (w Warning) String() string { return w.Path + ": " + w.Message }

// Render turns a loaded spec into Kubernetes objects.
func Render(app *spec.App, opts Options) (*Result, error) {
	if opts.Image == "" {
		opts.Image = DefaultImage
	}
	if opts.NATSURL == "" {
		opts.NATSURL = DefaultNATSURL
	}
	if opts.GatewayClass == "" {
		opts.GatewayClass = DefaultGatewayClass
	}
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	ns := app.Namespace
	if opts.Namespace != "" {
		ns = opts.Namespace
	}
	b := &builder{app: app, opts: opts, ns: ns}
	steps := []func() error{
		b.namespace,
		b.config,
		b.secrets,
		b.services,
		b.mesh,
		b.ingress,
		b.databases,
		b.functions,
		b.events,
		b.jetStreamBackup,
		b.components,
		b.observability,
		b.tracing,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := b.sort(); err != nil {
		return nil, err
	}
	return &Result{Objects: b.objs, Warnings: b.warnings}, nil
}

// builder collects the objects of one rendering.
type builder struct {
	app      *spec.App
	opts     Options
	ns       string
	objs     []*unstructured.Unstructured
	warnings []Warning
}

func (b *builder) warnf(path, format string, args ...any) {
	b.warnings = append(b.warnings, Warning{Path: path, Message: fmt.Sprintf(format, args...)})
}

// labels are the labels of an object of the app: kubernetes.labels, then
// the standard ones; name, instance and managed-by always win, because
// selectors and pruning rely on them.
func (b *builder) labels(name, component string) map[string]string {
	l := map[string]string{}
	for k, v := range b.app.Kubernetes.Labels {
		l[k] = v
	}
	if _, ok := l[LabelPartOf]; !ok {
		l[LabelPartOf] = b.app.Name
	}
	if component != "" {
		l[LabelComponent] = component
	}
	l[LabelName] = labelValue(name)
	l[LabelInstance] = b.app.Name
	l[LabelManagedBy] = ManagedBy
	return l
}

// labelValue fits an object's name into a label value, at most 63
// characters. Workloads' names always fit, so selectors see them whole; a
// longer name (grafana-dashboard-NAME, queue-NAME) keeps its start and ends
// with a hash of the whole, so that two names still differ.
func labelValue(name string) string {
	if len(name) <= validation.LabelValueMaxLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(name[:52], "-_.") + "-" + hex.EncodeToString(sum[:])[:10]
}

// selector selects the pods of one workload of the app.
func (b *builder) selector(name string) map[string]string {
	return map[string]string{LabelName: name, LabelInstance: b.app.Name}
}

// PruneSelector selects every object nubo rendered for the app named app.
func PruneSelector(app string) string {
	return LabelManagedBy + "=" + ManagedBy + "," + LabelInstance + "=" + app
}

// meta is the ObjectMeta of a namespaced object of the app.
func (b *builder) meta(name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: b.ns, Labels: b.labels(name, component)}
}

// addTyped adds a k8s.io/api object, whose TypeMeta the caller set.
func (b *builder) addTyped(obj runtime.Object) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("convert %T: %w", obj, err)
	}
	dropEmpty(m)
	b.objs = append(b.objs, &unstructured.Unstructured{Object: m})
	return nil
}

// addCustom adds an object of a custom resource: apiVersion and kind, the
// standard metadata, and the given top-level fields (spec, usually).
func (b *builder) addCustom(apiVersion, kindName, name, component string, fields map[string]any) {
	meta := map[string]any{"name": name, "namespace": b.ns, "labels": b.labels(name, component)}
	obj := map[string]any{"apiVersion": apiVersion, "kind": kindName, "metadata": meta}
	for k, v := range fields {
		obj[k] = v
	}
	b.objs = append(b.objs, &unstructured.Unstructured{Object: normalize(obj).(map[string]any)})
}

// sort puts the objects in apply order and refuses two objects of one kind
// with one name, which would overwrite each other in the cluster.
func (b *builder) sort() error {
	idx := make(map[*unstructured.Unstructured]int, len(b.objs))
	for _, o := range b.objs {
		i := kindIndex(o.GetAPIVersion(), o.GetKind())
		if i < 0 {
			return fmt.Errorf("internal error: rendered a %s %s nubo does not list", o.GetAPIVersion(), o.GetKind())
		}
		idx[o] = i
	}
	sort.SliceStable(b.objs, func(i, j int) bool {
		a, c := b.objs[i], b.objs[j]
		if idx[a] != idx[c] {
			return idx[a] < idx[c]
		}
		return a.GetName() < c.GetName()
	})
	for i := 1; i < len(b.objs); i++ {
		a, c := b.objs[i-1], b.objs[i]
		if idx[a] == idx[c] && a.GetName() == c.GetName() {
			return fmt.Errorf("two %ss are named %q: rename one of the spec's parts that render to it (services, functions, databases and nubo's components share names in the namespace)",
				c.GetKind(), c.GetName())
		}
	}
	return nil
}

// normalize turns the Go values the renderer writes (int, []string,
// map[string]string, ...) into the JSON-shaped values unstructured objects
// hold (int64, []any, map[string]any), so that they deep-copy and compare.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = e
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	case []map[string]any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = normalize(e)
		}
		return s
	case []string:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = e
		}
		return s
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case float32:
		return float64(t)
	}
	return v
}

// keepEmpty are fields whose empty value means something and must stay.
var keepEmpty = map[string]bool{"emptyDir": true, "podSelector": true}

// dropEmpty removes what converting a typed object leaves that the API
// would only echo back (creationTimestamp: null, status: {}, resources: {}):
// it is noise in render output and in diffs.
func dropEmpty(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropEmpty(t)
			if len(t) == 0 && !keepEmpty[k] {
				delete(m, k)
			}
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					dropEmpty(em)
				}
			}
		}
	}
}

// envName turns a name into the part of an environment variable name:
// users-db -> USERS_DB.
func envName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

func ptr[T any](v T) *T { return &v }
