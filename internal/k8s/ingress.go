package k8s

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nubo-dev/nubo/internal/spec"
)

// gatewayAPI is the Gateway API's version.
const gatewayAPI = "gateway.networking.k8s.io/v1"

// backend is the Service and port an ingress path sends to.
func (b *builder) backend(p *spec.IngressPath) (string, int32) {
	if p.To == "gateway" {
		return componentName("gateway"), 80
	}
	name := strings.TrimPrefix(p.To, "service:")
	port := int32(p.Port)
	if port == 0 {
		if s := b.app.Services[name]; s != nil {
			port = int32(s.Expose.Port)
		}
	}
	return name, port
}

// tlsSecret is the Secret holding an ingress' certificate, which
// cert-manager (or the user) provides.
func tlsSecret(ingress string) string { return ingress + "-tls" }

func (b *builder) ingress() error {
	if len(b.app.Ingress) == 0 {
		return nil
	}
	if b.app.Kubernetes.Ingress == "gateway-api" {
		b.gatewayAPI()
		return nil
	}
	prefix := networkingv1.PathTypePrefix
	for _, in := range b.app.Ingress {
		var paths []networkingv1.HTTPIngressPath
		for _, p := range in.Paths {
			name, port := b.backend(p)
			paths = append(paths, networkingv1.HTTPIngressPath{
				Path:     p.Path,
				PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: name, Port: networkingv1.ServiceBackendPort{Number: port},
				}},
			})
		}
		ing := &networkingv1.Ingress{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
			ObjectMeta: b.meta(in.Name, "ingress"),
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
				Host:             in.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
			}}},
		}
		if in.TLS {
			tls := networkingv1.IngressTLS{SecretName: tlsSecret(in.Name)}
			if in.Host != "" {
				tls.Hosts = []string{in.Host}
			}
			ing.Spec.TLS = []networkingv1.IngressTLS{tls}
		}
		if err := b.addTyped(ing); err != nil {
			return fmt.Errorf("ingress %q: %w", in.Name, err)
		}
	}
	return nil
}

// gatewayAPI renders one Gateway for the app, with a listener per host
// (and an HTTPS one where TLS is on), and an HTTPRoute per ingress.
func (b *builder) gatewayAPI() {
	gw := b.app.Name
	var listeners []any
	for i, in := range b.app.Ingress {
		http := map[string]any{"name": fmt.Sprintf("http-%d", i), "port": 80, "protocol": "HTTP"}
		if in.Host != "" {
			http["hostname"] = in.Host
		}
		listeners = append(listeners, http)
		if in.TLS {
			https := map[string]any{
				"name": fmt.Sprintf("https-%d", i), "port": 443, "protocol": "HTTPS",
				"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{map[string]any{"name": tlsSecret(in.Name)}}},
			}
			if in.Host != "" {
				https["hostname"] = in.Host
			}
			listeners = append(listeners, https)
		}
	}
	b.addCustom(gatewayAPI, "Gateway", gw, "ingress", map[string]any{"spec": map[string]any{
		"gatewayClassName": b.opts.GatewayClass,
		"listeners":        listeners,
	}})
	for _, in := range b.app.Ingress {
		var rules []any
		for _, p := range in.Paths {
			name, port := b.backend(p)
			rules = append(rules, map[string]any{
				"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": p.Path}}},
				"backendRefs": []any{map[string]any{"name": name, "port": port}},
			})
		}
		spec := map[string]any{
			"parentRefs": []any{map[string]any{"name": gw}},
			"rules":      rules,
		}
		if in.Host != "" {
			spec["hostnames"] = []string{in.Host}
		}
		b.addCustom(gatewayAPI, "HTTPRoute", in.Name, "ingress", map[string]any{"spec": spec})
	}
}
