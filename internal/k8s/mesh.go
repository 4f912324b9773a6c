package k8s

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Istio's API versions.
const (
	istioNetworking = "networking.istio.io/v1"
	istioSecurity   = "security.istio.io/v1"
)

// host is the fully qualified name Istio matches a service by.
func (b *builder) host(name string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", name, b.ns)
}

func (b *builder) mesh() error {
	m := b.app.Mesh
	if b.app.Kubernetes.Mesh != "istio" {
		b.meshless()
		return nil
	}
	b.addCustom(istioSecurity, "PeerAuthentication", "default", "mesh", map[string]any{"spec": map[string]any{
		"mtls": map[string]any{"mode": strings.ToUpper(m.MTLS)},
	}})
	// Route hosts no service is named after still need a Service for
	// callers' DNS to resolve; it selects the first destination, so that
	// the name works even where the sidecar does not intercept.
	for _, h := range sortedKeys(m.Routes) {
		if b.app.Services[h] != nil || b.app.Functions[h] != nil {
			continue
		}
		first := b.app.Services[m.Routes[h][0].Destination]
		if err := b.addTyped(&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: b.meta(h, "mesh"),
			Spec: corev1.ServiceSpec{
				Selector: b.selector(m.Routes[h][0].Destination),
				Ports: []corev1.ServicePort{{
					Name: "http", Port: 80, TargetPort: intstr.FromInt32(servicePort(first)), Protocol: corev1.ProtocolTCP,
				}},
			},
		}); err != nil {
			return err
		}
	}
	hosts := map[string]bool{}
	for h := range m.Routes {
		hosts[h] = true
	}
	for name, s := range b.app.Services {
		t := s.Traffic
		if t.Retry != nil || t.Timeout.IsSet() || t.Fault != nil {
			hosts[name] = true
		}
	}
	for _, h := range sortedKeys(hosts) {
		b.virtualService(h)
	}
	for _, name := range sortedKeys(b.app.Services) {
		b.destinationRule(name, b.app.Services[name].Traffic)
	}
	for _, p := range m.Policies {
		b.authorizationPolicy(p)
	}
	return nil
}

// meshless warns about each mesh feature the spec uses that no object
// carries without a mesh.
func (b *builder) meshless() {
	m := b.app.Mesh
	const why = "not rendered: kubernetes.mesh is none"
	if len(m.Routes) > 0 {
		b.warnf("mesh.routes", why)
	}
	if len(m.Policies) > 0 {
		b.warnf("mesh.policies", why)
	}
	for _, name := range sortedKeys(b.app.Services) {
		t := b.app.Services[name].Traffic
		if t.Retry != nil || t.Timeout.IsSet() || t.Fault != nil || t.CircuitBreaker != nil ||
			t.LoadBalancing.Sticky != nil || t.LoadBalancing.Algorithm != "round_robin" {
			b.warnf(pathOf("services", name)+".traffic", why)
		}
	}
}

// virtualService routes the callers of host: to the weighted destinations
// of mesh.routes, or to the service itself, with the service's retries,
// timeout and faults.
func (b *builder) virtualService(host string) {
	route := []any{}
	if dests, ok := b.app.Mesh.Routes[host]; ok {
		for _, d := range dests {
			route = append(route, map[string]any{
				"destination": map[string]any{"host": b.host(d.Destination)},
				"weight":      d.Weight,
			})
		}
	} else {
		route = append(route, map[string]any{"destination": map[string]any{"host": b.host(host)}})
	}
	http := map[string]any{"route": route}
	if s := b.app.Services[host]; s != nil {
		t := s.Traffic
		if r := t.Retry; r != nil {
			retries := map[string]any{"attempts": r.Attempts, "retryOn": strings.Join(r.On, ",")}
			if r.PerTryTimeout.IsSet() {
				retries["perTryTimeout"] = dur(r.PerTryTimeout.Duration)
			}
			http["retries"] = retries
		}
		if t.Timeout.IsSet() {
			http["timeout"] = dur(t.Timeout.Duration)
		}
		if f := t.Fault; f != nil {
			fault := map[string]any{}
			if d := f.Delay; d != nil {
				fault["delay"] = map[string]any{"percentage": map[string]any{"value": d.Percent}, "fixedDelay": dur(d.Fixed.Duration)}
			}
			if a := f.Abort; a != nil {
				fault["abort"] = map[string]any{"percentage": map[string]any{"value": a.Percent}, "httpStatus": a.Status}
			}
			http["fault"] = fault
		}
	}
	b.addCustom(istioNetworking, "VirtualService", host, "mesh", map[string]any{"spec": map[string]any{
		"hosts": []string{host},
		"http":  []any{http},
	}})
}

// destinationRule carries a service's load balancing and circuit breaker;
// a service with Istio's defaults gets none.
func (b *builder) destinationRule(name string, t spec.Traffic) {
	policy := map[string]any{}
	lb := t.LoadBalancing
	switch {
	case lb.Sticky != nil && lb.Sticky.Header != "":
		policy["loadBalancer"] = map[string]any{"consistentHash": map[string]any{"httpHeaderName": lb.Sticky.Header}}
	case lb.Sticky != nil && lb.Sticky.Cookie != nil:
		cookie := map[string]any{"name": lb.Sticky.Cookie.Name}
		if lb.Sticky.Cookie.TTL.IsSet() {
			cookie["ttl"] = dur(lb.Sticky.Cookie.TTL.Duration)
		}
		policy["loadBalancer"] = map[string]any{"consistentHash": map[string]any{"httpCookie": cookie}}
	case lb.Algorithm == "ring_hash":
		policy["loadBalancer"] = map[string]any{"consistentHash": map[string]any{"useSourceIp": true}}
	case lb.Algorithm == "least_request":
		policy["loadBalancer"] = map[string]any{"simple": "LEAST_REQUEST"}
	case lb.Algorithm == "random":
		policy["loadBalancer"] = map[string]any{"simple": "RANDOM"}
	}
	if cb := t.CircuitBreaker; cb != nil {
		policy["outlierDetection"] = map[string]any{
			"consecutive5xxErrors": cb.ConsecutiveErrors,
			"interval":             dur(cb.Interval.Duration),
			"baseEjectionTime":     dur(cb.Timeout.Duration),
			"maxEjectionPercent":   cb.MaxEjectionPercent,
		}
	}
	if len(policy) == 0 {
		return
	}
	b.addCustom(istioNetworking, "DestinationRule", name, "mesh", map[string]any{"spec": map[string]any{
		"host":          b.host(name),
		"trafficPolicy": policy,
	}})
}

// authorizationPolicy is Istio's AuthorizationPolicy, whose semantics the
// spec's policies have. Methods and paths are operations in Istio's terms,
// other keys conditions; audit enforcement is Istio's dry-run annotation.
func (b *builder) authorizationPolicy(p *spec.Policy) {
	rule := map[string]any{}
	source := map[string]any{}
	var principals []string
	for _, pr := range p.From.Principals {
		if pr == "*" {
			principals = append(principals, "*")
			continue
		}
		principals = append(principals, fmt.Sprintf("cluster.local/ns/%s/sa/%s", b.ns, pr))
	}
	if len(principals) > 0 {
		source["principals"] = principals
	}
	if len(p.From.Namespaces) > 0 {
		source["namespaces"] = p.From.Namespaces
	}
	if len(source) > 0 {
		rule["from"] = []any{map[string]any{"source": source}}
	}
	op := map[string]any{}
	var when []any
	for _, c := range p.When {
		switch c.Key {
		case "request.method":
			op["methods"] = c.Values
		case "request.path":
			op["paths"] = c.Values
		default:
			when = append(when, map[string]any{"key": c.Key, "values": c.Values})
		}
	}
	if len(op) > 0 {
		rule["to"] = []any{map[string]any{"operation": op}}
	}
	if len(when) > 0 {
		rule["when"] = when
	}
	spec := map[string]any{
		"action": strings.ToUpper(p.Action),
		"rules":  []any{rule},
	}
	if p.To != "*" {
		spec["selector"] = map[string]any{"matchLabels": b.selector(p.To)}
	}
	b.addCustom(istioSecurity, "AuthorizationPolicy", p.Name, "mesh", map[string]any{"spec": spec})
	if b.app.Mesh.Enforcement == "audit" && p.Action != "audit" {
		obj := b.objs[len(b.objs)-1]
		obj.SetAnnotations(map[string]string{"istio.io/dry-run": "true"})
	}
}
