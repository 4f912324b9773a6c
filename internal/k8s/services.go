package k8s

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nubo-dev/nubo/internal/spec"
)

// DefaultPort is the container port of a service that sets none; the
// container gets it in $PORT, as each replica does locally.
const DefaultPort = 8080

// servicePort is the port a service's container listens on.
func servicePort(s *spec.Service) int32 {
	if s.Port > 0 {
		return int32(s.Port)
	}
	return DefaultPort
}

func (b *builder) services() error {
	for _, name := range sortedKeys(b.app.Services) {
		if err := b.service(name, b.app.Services[name]); err != nil {
			return fmt.Errorf("service %q: %w", name, err)
		}
	}
	return nil
}

func (b *builder) service(name string, s *spec.Service) error {
	path := pathOf("services", name)
	if s.Image == "" {
		b.warnf(path, "has no image: rendered with image %q, which Kubernetes cannot pull; set image", name)
	}
	if s.Restart != "always" {
		b.warnf(path+".restart", "%q is not rendered: a Deployment always restarts its pods", s.Restart)
	}
	if err := b.serviceAccount(name, "service"); err != nil {
		return err
	}
	port := servicePort(s)
	env, envFrom, err := b.containerEnv(path, name, s.Env, s.EnvFrom, port)
	if err != nil {
		return err
	}
	image := s.Image
	if image == "" {
		image = name
	}
	portName := "http"
	if s.GRPC {
		portName = "grpc"
	}
	c := corev1.Container{
		Name:    name,
		Image:   b.interpolateEnv(image),
		Ports:   []corev1.ContainerPort{{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		Env:     env,
		EnvFrom: envFrom,
	}
	c.Resources.Requests = requests(s.Resources)
	c.LivenessProbe = probe(s.Health.Liveness, port)
	c.ReadinessProbe = probe(s.Health.Readiness, port)
	c.StartupProbe = probe(s.Health.Startup, port)

	pod := b.podTemplate(name, "service", c)
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(seconds(s.StopGracePeriod.Duration)))
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(name, "service"),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: b.selector(name)},
			Template: pod,
		},
	}
	// With an autoscaler, the replica count is its to set: applying one
	// here would fight it on every deploy.
	if s.Scaling == nil {
		dep.Spec.Replicas = ptr(int32(*s.Replicas))
	}
	if err := b.addTyped(dep); err != nil {
		return err
	}

	appProtocol := "http"
	if s.GRPC {
		appProtocol = "kubernetes.io/h2c"
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(name, "service"),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceType(s.Expose.Type),
			Selector: b.selector(name),
			Ports: []corev1.ServicePort{{
				Name:        portName,
				Port:        int32(s.Expose.Port),
				TargetPort:  intstr.FromString(portName),
				Protocol:    corev1.ProtocolTCP,
				AppProtocol: &appProtocol,
			}},
		},
	}
	if err := b.addTyped(svc); err != nil {
		return err
	}

	if sc := s.Scaling; sc != nil {
		if err := b.autoscaler(path, name, s); err != nil {
			return err
		}
		if sc.Min > 1 {
			return b.disruptionBudget(name, "service")
		}
		return nil
	}
	if *s.Replicas > 1 {
		return b.disruptionBudget(name, "service")
	}
	return nil
}

// podTemplate is the pod of a workload of the app, with its account and
// the app's pull secrets.
func (b *builder) podTemplate(name, component string, containers ...corev1.Container) corev1.PodTemplateSpec {
	spec := corev1.PodSpec{
		ServiceAccountName: name,
		Containers:         containers,
	}
	for _, s := range b.app.Kubernetes.ImagePullSecrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: b.labels(name, component)},
		Spec:       spec,
	}
}

// serviceAccount gives a workload its own identity: Istio's authorization
// policies name callers by it.
func (b *builder) serviceAccount(name, component string) error {
	return b.addTyped(&corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: b.meta(name, component),
	})
}

func requests(r spec.Resources) corev1.ResourceList {
	l := corev1.ResourceList{}
	if r.CPU.IsSet() {
		l[corev1.ResourceCPU] = r.CPU.Quantity
	}
	if r.Memory.IsSet() {
		l[corev1.ResourceMemory] = r.Memory.Quantity
	}
	if len(l) == 0 {
		return nil
	}
	return l
}

// probe is a container probe with the spec's timings; the port defaults to
// the container's.
func probe(p *spec.Probe, port int32) *corev1.Probe {
	if p == nil {
		return nil
	}
	out := &corev1.Probe{
		InitialDelaySeconds: seconds(p.InitialDelay.Duration),
		PeriodSeconds:       max(seconds(p.Period.Duration), 1),
		TimeoutSeconds:      max(seconds(p.Timeout.Duration), 1),
		FailureThreshold:    int32(p.FailureThreshold),
		SuccessThreshold:    int32(p.SuccessThreshold),
	}
	portOf := func(p int) intstr.IntOrString {
		if p > 0 {
			return intstr.FromInt32(int32(p))
		}
		return intstr.FromInt32(port)
	}
	switch {
	case p.HTTP != nil:
		get := &corev1.HTTPGetAction{Path: p.HTTP.Path, Port: portOf(p.HTTP.Port)}
		for _, k := range sortedKeys(p.HTTP.Headers) {
			get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: k, Value: p.HTTP.Headers[k]})
		}
		out.HTTPGet = get
	case p.TCP != nil:
		out.TCPSocket = &corev1.TCPSocketAction{Port: portOf(p.TCP.Port)}
	case p.Exec != nil:
		out.Exec = &corev1.ExecAction{Command: p.Exec.Command}
	}
	return out
}

func (b *builder) autoscaler(path, name string, s *spec.Service) error {
	sc := s.Scaling
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: b.meta(name, "service"),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr(int32(sc.Min)),
			MaxReplicas:    int32(sc.Max),
		},
	}
	add := func(res corev1.ResourceName, target int, q spec.Quantity, field string) {
		if target <= 0 {
			return
		}
		if !q.IsSet() {
			b.warnf(path+".scaling."+field, "a utilization target needs resources.%s: the autoscaler cannot compute it without the request", res)
		}
		hpa.Spec.Metrics = append(hpa.Spec.Metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   res,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(target))},
			},
		})
	}
	add(corev1.ResourceCPU, sc.TargetCPU, s.Resources.CPU, "targetCPU")
	add(corev1.ResourceMemory, sc.TargetMemory, s.Resources.Memory, "targetMemory")
	return b.addTyped(hpa)
}

// disruptionBudget keeps all but one replica of a workload up through
// voluntary disruptions (node drains).
func (b *builder) disruptionBudget(name, component string) error {
	one := intstr.FromInt32(1)
	return b.addTyped(&policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: b.meta(name, component),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: b.selector(name)},
		},
	})
}

// memoryLimit is a container's resources with a memory limit (and the same
// request, so the scheduler counts what the limit allows).
func memoryLimit(q spec.Quantity) corev1.ResourceRequirements {
	if !q.IsSet() {
		return corev1.ResourceRequirements{}
	}
	l := corev1.ResourceList{corev1.ResourceMemory: q.Quantity}
	return corev1.ResourceRequirements{Limits: l, Requests: corev1.ResourceList{corev1.ResourceMemory: q.Quantity.DeepCopy()}}
}
