package spec

// Mesh holds traffic routes and authorization policies between workloads.
type Mesh struct {
	// MTLS is the mutual-TLS mode. Default permissive.
	MTLS string `yaml:"mtls" enum:"strict|permissive|disable"`
	// Routes split the traffic for a host callers use over several services.
	Routes map[string][]*RouteDestination `yaml:"routes" names:"service"`
	// Policies authorize calls between workloads, in Istio's order.
	Policies []*Policy `yaml:"policies"`
	// Enforcement applies denials (enforce) or only logs them (audit). Default enforce.
	Enforcement string `yaml:"enforcement" enum:"enforce|audit"`
}

// RouteDestination is one weighted destination of a route.
type RouteDestination struct {
	// Destination is a service name.
	Destination string `yaml:"destination" required:"true"`
	// Weight in percent; the weights of a route sum to 100.
	Weight int `yaml:"weight" min:"0" max:"100"`
}

// Policy is an authorization policy, as Istio's AuthorizationPolicy.
type Policy struct {
	// Name of the policy, a DNS label.
	Name string `yaml:"name" required:"true"`
	// To is the service the policy protects, or "*" for all.
	To string `yaml:"to" required:"true"`
	// Action taken on a match.
	Action string `yaml:"action" required:"true" enum:"allow|deny|audit"`
	// From lists who is calling.
	From PolicySource `yaml:"from"`
	// When lists conditions that must all hold.
	When []*PolicyCondition `yaml:"when"`
}

// PolicySource matches the calling workload.
type PolicySource struct {
	// Principals are calling services or functions; "*" matches any.
	Principals []string `yaml:"principals"`
	// Namespaces of the callers.
	Namespaces []string `yaml:"namespaces"`
}

// PolicyCondition matches a request attribute against values.
type PolicyCondition struct {
	// Key is request.method, request.path, request.headers[NAME] or source.namespace.
	Key string `yaml:"key" required:"true"`
	// Values match exactly, or as a prefix or suffix with a * at the other end.
	Values []string `yaml:"values" required:"true"`
}

// Ingress routes outside traffic for a host.
type Ingress struct {
	// Name of the ingress, a DNS label.
	Name string `yaml:"name" required:"true"`
	// Host matched; *.localhost resolves to this machine in browsers.
	Host string `yaml:"host"`
	// TLS serves HTTPS with a certificate from the local CA (cert-manager in Kubernetes).
	TLS bool `yaml:"tls"`
	// Paths route by longest prefix.
	Paths []*IngressPath `yaml:"paths" required:"true"`
}

// IngressPath routes a path prefix to the gateway or a service.
type IngressPath struct {
	// Path prefix.
	Path string `yaml:"path" required:"true"`
	// To is "gateway" or service:NAME.
	To string `yaml:"to" required:"true"`
	// Port of the service's Service object; default its expose.port.
	Port int `yaml:"port" min:"0" max:"65535"`
}
