package k8s

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kind is one kind of object nubo renders: where the API serves it, whether
// it lives in a namespace, and the file of `nubo render -o DIR` it goes to.
type kind struct {
	group, version, kind string
	// resource is the plural the API serves the kind under.
	resource   string
	namespaced bool
	// file groups kinds in `render -o DIR`; its number prefix is the order
	// `kubectl apply -f DIR` takes them in.
	file string
	// provider names what installs the kind in a cluster, for the error of a
	// cluster that lacks it; empty for Kubernetes' own kinds.
	provider string
	// setting is the spec setting that avoids the kind, when one does.
	setting string
}

// kinds lists every kind nubo renders, in the order they are applied:
// namespaces first, then what others refer to (accounts, config, secrets),
// then workloads, then the objects of the platforms around them.
var kinds = []kind{
	{"", "v1", "Namespace", "namespaces", false, "00-namespace.yaml", "", ""},
	{"", "v1", "ServiceAccount", "serviceaccounts", true, "01-config.yaml", "", ""},
	{"", "v1", "ConfigMap", "configmaps", true, "01-config.yaml", "", ""},
	{"", "v1", "Secret", "secrets", true, "01-config.yaml", "", ""},
	{"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, "02-workloads.yaml", "", ""},
	{"", "v1", "Service", "services", true, "02-workloads.yaml", "", ""},
	{"apps", "v1", "Deployment", "deployments", true, "02-workloads.yaml", "", ""},
	{"apps", "v1", "StatefulSet", "statefulsets", true, "02-workloads.yaml", "", ""},
	{"batch", "v1", "CronJob", "cronjobs", true, "02-workloads.yaml", "", ""},
	{"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, "02-workloads.yaml", "", ""},
	{"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, "02-workloads.yaml", "", ""},
	{"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, "03-network.yaml", "", ""},
	{"networking.k8s.io", "v1", "Ingress", "ingresses", true, "04-ingress.yaml", "", ""},
	{"gateway.networking.k8s.io", "v1", "Gateway", "gateways", true, "04-ingress.yaml", "the Gateway API CRDs", "kubernetes.ingress: ingress"},
	{"gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, "04-ingress.yaml", "the Gateway API CRDs", "kubernetes.ingress: ingress"},
	{"security.istio.io", "v1", "PeerAuthentication", "peerauthentications", true, "05-mesh.yaml", "Istio", "kubernetes.mesh: none"},
	{"security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies", true, "05-mesh.yaml", "Istio", "kubernetes.mesh: none"},
	{"networking.istio.io", "v1", "DestinationRule", "destinationrules", true, "05-mesh.yaml", "Istio", "kubernetes.mesh: none"},
	{"networking.istio.io", "v1", "VirtualService", "virtualservices", true, "05-mesh.yaml", "Istio", "kubernetes.mesh: none"},
	{"serving.knative.dev", "v1", "Service", "services", true, "06-functions.yaml", "Knative Serving", "kubernetes.functions: deployment"},
	{"jetstream.nats.io", "v1beta2", "Stream", "streams", true, "07-events.yaml", "the NATS JetStream controller (NACK)", ""},
	{"jetstream.nats.io", "v1beta2", "Consumer", "consumers", true, "07-events.yaml", "the NATS JetStream controller (NACK)", ""},
	{"jetstream.nats.io", "v1beta2", "KeyValue", "keyvalues", true, "07-events.yaml", "the NATS JetStream controller (NACK)", ""},
	{"postgresql.cnpg.io", "v1", "Cluster", "clusters", true, "08-databases.yaml", "CloudNativePG", ""},
	{"postgresql.cnpg.io", "v1", "ScheduledBackup", "scheduledbackups", true, "08-databases.yaml", "CloudNativePG", ""},
	{"monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", true, "09-monitoring.yaml", "the Prometheus Operator", "kubernetes.monitoring: none"},
	{"monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", true, "09-monitoring.yaml", "the Prometheus Operator", "kubernetes.monitoring: none"},
	{"monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", true, "09-monitoring.yaml", "the Prometheus Operator", "kubernetes.monitoring: none"},
	{"monitoring.coreos.com", "v1alpha1", "AlertmanagerConfig", "alertmanagerconfigs", true, "09-monitoring.yaml", "the Prometheus Operator", "kubernetes.monitoring: none"},
}

// apiVersion is the kind's apiVersion field.
func (k kind) apiVersion() string {
	if k.group == "" {
		return k.version
	}
	return k.group + "/" + k.version
}

// gvr is the kind's resource, for the dynamic client.
func (k kind) gvr() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.group, Version: k.version, Resource: k.resource}
}

// kindIndex returns the position of the kind of apiVersion and kind in kinds,
// or -1 for a kind nubo does not render.
func kindIndex(apiVersion, kindName string) int {
	for i, k := range kinds {
		if k.kind == kindName && k.apiVersion() == apiVersion {
			return i
		}
	}
	return -1
}
