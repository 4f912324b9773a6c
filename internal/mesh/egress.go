package mesh

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// egressRule is a workload's allow-list (functions' vpc.egress): the mesh
// names and the outside hosts it may reach. Istio's equivalent is a Sidecar
// with outboundTrafficPolicy REGISTRY_ONLY plus the listed hosts; Kubernetes
// enforces it with a NetworkPolicy. Databases are listed as database:NAME
// and reached directly, not through the proxy, so they are not checked here.
type egressRule struct {
	names map[string]bool // services, functions and routes by name
	hosts map[string]bool // outside host names, lower-case, without port
}

// compileEgress builds the allow-lists from Config.Egress.
func compileEgress(egress map[string][]string) map[string]*egressRule {
	out := make(map[string]*egressRule, len(egress))
	for caller, entries := range egress {
		rule := &egressRule{names: map[string]bool{}, hosts: map[string]bool{}}
		for _, e := range entries {
			kind, name, ok := strings.Cut(e, ":")
			switch {
			case ok && (kind == "service" || kind == "function"):
				rule.names[lowerASCII(name)] = true
			case ok && kind == "database":
			default:
				rule.hosts[lowerASCII(strings.TrimSuffix(e, "."))] = true
			}
		}
		out[caller] = rule
	}
	return out
}

// egressDenied reports whether caller may not reach the mesh name or outside
// host (host[:port]) it asked for, and writes the refusal when so. A
// workload without an allow-list reaches everything.
func (c *compiled) egressDenied(w http.ResponseWriter, caller, meshName, host string) bool {
	rule := c.egress[caller]
	if rule == nil {
		return false
	}
	if meshName != "" {
		if rule.names[lowerASCII(meshName)] {
			return false
		}
		writeText(w, http.StatusForbidden, fmt.Sprintf("egress to %q denied: it is not in the vpc.egress of %s", meshName, caller))
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if rule.hosts[lowerASCII(h)] {
		return false
	}
	writeText(w, http.StatusForbidden, fmt.Sprintf("egress to %q denied: it is not in the vpc.egress of %s", h, caller))
	return true
}
