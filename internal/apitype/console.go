package apitype

import "encoding/json"

// Graph is the system as the spec draws it, for the console's service map
// (GET /console/v1/graph): every part a node, every way one reaches
// another an edge. Live traffic is laid over it from the metrics.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// GraphNode is a part of the system.
type GraphNode struct {
	// ID is KIND:NAME ("service:users"), unique in the graph.
	ID string `json:"id"`
	// Kind is service, function, database, queue, topic, gateway,
	// ingress, bus, schedule, external (an http integration's URL) or
	// mock (a gateway route's mock answer).
	Kind string `json:"kind"`
	// Name is the part's name in the spec.
	Name string `json:"name"`
}

// GraphEdge says that From reaches To.
type GraphEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Kind is how: route (gateway, ingress), mesh (a mesh route, with its
	// weight), dependsOn, trigger or rule.
	Kind string `json:"kind"`
	// Label says more: a path, a weight.
	Label string `json:"label,omitempty"`
}

// Dashboards is the spec's dashboards in Grafana's JSON model
// (GET /console/v1/dashboards), the same `nubo render` and
// `nubo dashboards export` produce.
type Dashboards struct {
	Dashboards []NamedDashboard `json:"dashboards"`
}

// NamedDashboard is one dashboard, by its key in observability.dashboards.
type NamedDashboard struct {
	Name      string          `json:"name"`
	Dashboard json.RawMessage `json:"dashboard"`
}

// Call is a request the API explorer sends through the gateway
// (POST /console/v1/call).
type Call struct {
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the path on the gateway, with the stage and the query:
	// /dev/users/42?verbose=1.
	Path string `json:"path"`
	// Headers are sent as they are (a JWT's Authorization, an API key).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the request body.
	Body string `json:"body,omitempty"`
}

// CallResult is the gateway's answer to a Call.
type CallResult struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	Truncated  bool              `json:"truncated,omitempty"`
	DurationMs float64           `json:"durationMs"`
	// TraceID is the trace the request started (its traceparent).
	TraceID string `json:"traceId"`
}
