package k8s

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nubo-dev/nubo/internal/spec"
)

// functionPort is the port a function listens on when rendered as a
// Deployment; Knative sets $PORT itself.
const functionPort = 8080

func (b *builder) functions() error {
	for _, name := range sortedKeys(b.app.Functions) {
		if err := b.function(name, b.app.Functions[name]); err != nil {
			return fmt.Errorf("function %q: %w", name, err)
		}
	}
	return nil
}

func (b *builder) function(name string, f *spec.Function) error {
	path := pathOf("functions", name)
	if f.Image == "" {
		b.warnf(path, "has no image: rendered with image %q, which Kubernetes cannot pull; set image", name)
	}
	if len(f.Layers) > 0 {
		b.warnf(path+".layers", "not rendered: on Kubernetes, layers belong in the image")
	}
	if err := b.serviceAccount(name, "function"); err != nil {
		return err
	}
	knative := b.app.Kubernetes.Functions == "knative"
	port := int32(functionPort)
	if knative {
		port = 0 // Knative reserves $PORT and sets it
	}
	env, envFrom, err := b.containerEnv(path, name, f.Env, spec.EnvFrom{}, port)
	if err != nil {
		return err
	}
	if knative {
		// Knative's webhook refuses valueFrom.fieldRef unless the cluster
		// turns on kubernetes.podspec-fieldref, off by default; the pod's
		// name (NUBO_REPLICA elsewhere) is in $HOSTNAME there.
		env = slices.DeleteFunc(env, func(e corev1.EnvVar) bool { return e.ValueFrom != nil && e.ValueFrom.FieldRef != nil })
	}
	image := f.Image
	if image == "" {
		image = name
	}
	c := corev1.Container{
		Name:      name,
		Image:     b.interpolateEnv(image),
		Env:       env,
		EnvFrom:   envFrom,
		Resources: memoryLimit(f.Memory),
	}
	if knative {
		err = b.knativeService(name, f, c)
	} else {
		err = b.functionDeployment(path, name, f, c)
	}
	if err != nil {
		return err
	}
	return b.functionNetworkPolicy(path, name, f)
}

// knativeService is a function as Knative runs it: scaled from zero on
// requests, each instance taking concurrency of them at once.
func (b *builder) knativeService(name string, f *spec.Function, c corev1.Container) error {
	container, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
	if err != nil {
		return err
	}
	dropEmpty(container)
	podSpec := map[string]any{
		"serviceAccountName":   name,
		"containerConcurrency": f.Concurrency,
		"timeoutSeconds":       seconds(f.Timeout.Duration),
		"containers":           []any{container},
	}
	if ps := b.pullSecrets(); len(ps) > 0 {
		podSpec["imagePullSecrets"] = ps
	}
	annotations := map[string]string{
		"autoscaling.knative.dev/min-scale": strconv.Itoa(f.Scaling.Min),
		"autoscaling.knative.dev/max-scale": strconv.Itoa(f.Scaling.Max),
		// Knative's closest to idleTimeout: how long the last instance
		// stays once traffic has stopped.
		"autoscaling.knative.dev/scale-to-zero-pod-retention-period": dur(f.Scaling.IdleTimeout.Duration),
	}
	b.addCustom("serving.knative.dev/v1", "Service", name, "function", map[string]any{"spec": map[string]any{
		"template": map[string]any{
			"metadata": map[string]any{"labels": b.labels(name, "function"), "annotations": annotations},
			"spec":     podSpec,
		},
	}})
	return nil
}

func (b *builder) pullSecrets() []any {
	var out []any
	for _, s := range b.app.Kubernetes.ImagePullSecrets {
		out = append(out, map[string]any{"name": s})
	}
	return out
}

// functionDeployment is a function without Knative: a Deployment of
// scaling.min instances (at least one) behind a Service.
func (b *builder) functionDeployment(path, name string, f *spec.Function, c corev1.Container) error {
	if f.Scaling.Min == 0 {
		b.warnf(path+".scaling.min", "scale to zero needs Knative: with kubernetes.functions: deployment one instance always runs")
	}
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: functionPort, Protocol: corev1.ProtocolTCP}}
	pod := b.podTemplate(name, "function", c)
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(name, "function"),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(max(f.Scaling.Min, 1))),
			Selector: &metav1.LabelSelector{MatchLabels: b.selector(name)},
			Template: pod,
		},
	}
	if err := b.addTyped(dep); err != nil {
		return err
	}
	return b.addTyped(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(name, "function"),
		Spec: corev1.ServiceSpec{
			Selector: b.selector(name),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	})
}

// functionNetworkPolicy turns vpc.egress into an egress allow-list. DNS,
// nubo's components (the platform API) and, under Istio, its control plane
// stay reachable: without them nothing works.
func (b *builder) functionNetworkPolicy(path, name string, f *spec.Function) error {
	if len(f.VPC.Egress) == 0 {
		return nil
	}
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: b.meta(name, "function"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: b.selector(name)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		},
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	np.Spec.Egress = append(np.Spec.Egress,
		networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
		networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelInstance: b.app.Name, LabelComponent: componentLabel}},
		}}},
	)
	if b.app.Kubernetes.Mesh == "istio" {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "istio-system"}},
		}}})
	}
	for i, e := range f.VPC.Egress {
		kind, target, ok := strings.Cut(e, ":")
		var peer networkingv1.NetworkPolicyPeer
		switch {
		case ok && (kind == "service" || kind == "function"):
			peer.PodSelector = &metav1.LabelSelector{MatchLabels: b.selector(target)}
		case ok && kind == "database":
			labels := b.selector(target)
			if db := b.app.Databases[target]; db != nil && db.Type == "postgres" {
				labels = map[string]string{cnpgClusterLabel: target}
			}
			peer.PodSelector = &metav1.LabelSelector{MatchLabels: labels}
		default:
			// A NetworkPolicy knows addresses, not host names: allow the web
			// ports anywhere, and say so.
			b.warnf(fmt.Sprintf("%s.vpc.egress[%d]", path, i), "a host name cannot be written in a NetworkPolicy: %q is rendered as egress to ports 80 and 443 anywhere", e)
			http, https := intstr.FromInt32(80), intstr.FromInt32(443)
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &http}, {Protocol: &tcp, Port: &https}},
			})
			continue
		}
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{peer}})
	}
	return b.addTyped(np)
}
