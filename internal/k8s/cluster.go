package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a connection to a Kubernetes API server.
type Cluster struct {
	dyn dynamic.Interface
	// Name says which cluster it is, for messages: the context, or the
	// server's address.
	Name string
}

// Connect reads a kubeconfig as kubectl does ($KUBECONFIG, ~/.kube/config,
// or the file given) and connects to its current context, or to the one
// named.
func Connect(kubeconfig, kubeContext string) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	name := kubeContext
	if name == "" {
		if raw, err := cc.RawConfig(); err == nil {
			name = raw.CurrentContext
		}
	}
	c, err := NewCluster(cfg)
	if err != nil {
		return nil, err
	}
	if name != "" {
		c.Name = name
	}
	return c, nil
}

// NewCluster connects with a REST configuration.
func NewCluster(cfg *rest.Config) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "nubo"
	// A deploy makes a few requests per object: client-go's default of 5
	// per second would make a hundred objects take a minute.
	cfg.QPS, cfg.Burst = 100, 200
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	return &Cluster{dyn: dyn, Name: cfg.Host}, nil
}

// resource is the dynamic client of an object's kind, in its namespace.
func (c *Cluster) resource(apiVersion, kindName, ns string) (dynamic.ResourceInterface, kind, error) {
	i := kindIndex(apiVersion, kindName)
	if i < 0 {
		return nil, kind{}, fmt.Errorf("%s %s is not a kind nubo renders", apiVersion, kindName)
	}
	k := kinds[i]
	if k.namespaced {
		return c.dyn.Resource(k.gvr()).Namespace(ns), k, nil
	}
	return c.dyn.Resource(k.gvr()), k, nil
}

// ObjectName names an object for messages: Deployment shop/users, and
// Knative Service shop/send-welcome where a kind's name alone is ambiguous.
func ObjectName(o *unstructured.Unstructured) string {
	k := o.GetKind()
	if o.GetAPIVersion() == "serving.knative.dev/v1" {
		k = "Knative " + k
	}
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", k, ns, o.GetName())
	}
	return fmt.Sprintf("%s %s", k, o.GetName())
}

// Get returns the live object of obj's kind and name, or nil when there is
// none.
func (c *Cluster) Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, k, err := c.resource(obj.GetAPIVersion(), obj.GetKind(), obj.GetNamespace())
	if err != nil {
		return nil, err
	}
	live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.explain(obj, k, err)
	}
	return live, nil
}

// Apply server-side applies one object as field manager nubo, forcing
// ownership of the fields it sets, with strict field validation: a field
// the server does not know is an error, not silently dropped. With dryRun
// the server computes the result without storing it.
func (c *Cluster) Apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, k, err := c.resource(obj.GetAPIVersion(), obj.GetKind(), obj.GetNamespace())
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ObjectName(obj), err)
	}
	opts := metav1.PatchOptions{FieldManager: ManagedBy, Force: ptr(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return nil, c.explain(obj, k, err)
	}
	return out, nil
}

// errNotServed marks a kind the cluster does not serve.
var errNotServed = errors.New("kind not served")

// explain wraps an API error with the object's name, and says what to
// install (or which setting to change) when the cluster lacks the kind.
// The server's own message is kept whole: it says which field is wrong.
func (c *Cluster) explain(obj *unstructured.Unstructured, k kind, err error) error {
	if notServed(err) {
		msg := fmt.Sprintf("%s: the cluster does not serve %s %s", ObjectName(obj), k.apiVersion(), k.kind)
		if k.provider != "" {
			msg += "; install " + k.provider
			if k.setting != "" {
				msg += ", or set " + k.setting
			}
		}
		return fmt.Errorf("%s: %w", msg, errNotServed)
	}
	return fmt.Errorf("%s: %w", ObjectName(obj), err)
}

// notServed reports an error of a request for a resource the server does
// not have (as opposed to an object that does not exist).
func notServed(err error) bool {
	if !apierrors.IsNotFound(err) {
		return false
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if d := st.Status().Details; d != nil && d.Name != "" {
			return false // a named object (or its namespace) is missing
		}
	}
	return strings.Contains(err.Error(), "could not find the requested resource") || strings.Contains(err.Error(), "404 page not found")
}

// key identifies an object by group, kind, namespace and name; the version
// does not matter, the server converts.
func key(o *unstructured.Unstructured) string {
	gv, _ := schema.ParseGroupVersion(o.GetAPIVersion())
	return gv.Group + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// Stale lists the objects of the app in namespace ns that nubo applied and
// keep does not hold: what a prune deletes. Only objects whose fields nubo
// applied, and that no controller owns, qualify: controllers copy labels
// onto what they create (CloudNativePG's Services and Secrets, Knative's
// routes), and those are theirs to delete.
func (c *Cluster) Stale(ctx context.Context, app, ns string, keep []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	kept := map[string]bool{}
	for _, o := range keep {
		kept[key(o)] = true
	}
	var out []*unstructured.Unstructured
	for _, k := range kinds {
		if !k.namespaced {
			continue // never the namespace: deleting it deletes everything in it
		}
		list, err := c.dyn.Resource(k.gvr()).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: PruneSelector(app)})
		if notServed(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", k.resource, ns, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			o.SetAPIVersion(k.apiVersion())
			o.SetKind(k.kind)
			if kept[key(o)] || len(o.GetOwnerReferences()) > 0 || !appliedByNubo(o) || o.GetAnnotations()[AnnotationPrune] == "never" {
				continue
			}
			out = append(out, o)
		}
	}
	return out, nil
}

func appliedByNubo(o *unstructured.Unstructured) bool {
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == ManagedBy && mf.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// Delete deletes an object; the garbage collector deletes what it owns
// (kubectl's default). One already gone is not an error.
func (c *Cluster) Delete(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	ri, k, err := c.resource(obj.GetAPIVersion(), obj.GetKind(), obj.GetNamespace())
	if err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &policy}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err = ri.Delete(ctx, obj.GetName(), opts)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return c.explain(obj, k, err)
	}
	return nil
}

// namespaceExists reports whether namespace ns exists.
func (c *Cluster) namespaceExists(ctx context.Context, ns string) (bool, error) {
	_, err := c.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	return true, nil
}
