package console

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/k8s"
	"github.com/nubo-dev/nubo/internal/spec"
)

// specRoutes serve what the console's pages need from the spec the engine
// runs now: the service map's graph, the dashboards and the gateway's
// OpenAPI document.
func (s *Server) specRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /console/v1/graph", s.withApp(func(w http.ResponseWriter, app *spec.App) {
		writeJSON(w, http.StatusOK, SpecGraph(app))
	}))
	mux.HandleFunc("GET /console/v1/dashboards", s.withApp(func(w http.ResponseWriter, app *spec.App) {
		all, err := k8s.GrafanaDashboards(app)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		out := apitype.Dashboards{Dashboards: []apitype.NamedDashboard{}}
		for _, d := range all {
			out.Dashboards = append(out.Dashboards, apitype.NamedDashboard{Name: d.Name, Dashboard: d.JSON})
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("GET /console/v1/openapi", s.withApp(func(w http.ResponseWriter, app *spec.App) {
		if app.Gateway == nil {
			writeError(w, http.StatusNotFound, "the spec has no gateway section, so no OpenAPI document")
			return
		}
		doc, err := gateway.OpenAPI(app, gateway.OpenAPIOptions{Server: s.gatewayURL()})
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, doc)
	}))
}

func (s *Server) withApp(fn func(http.ResponseWriter, *spec.App)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.App == nil {
			writeError(w, http.StatusNotFound, "this engine serves no spec to the console")
			return
		}
		fn(w, s.cfg.App())
	}
}

// gatewayURL is the running gateway's base URL, "" when there is none.
func (s *Server) gatewayURL() string {
	return s.cfg.Backend.Status().Addresses["gateway"]
}

// SpecGraph draws the system of app: nodes for its parts, edges for the
// gateway's and the ingress's routes, mesh routes, dependsOn, function
// triggers and event rules.
func SpecGraph(app *spec.App) apitype.Graph {
	g := apitype.Graph{Nodes: []apitype.GraphNode{}, Edges: []apitype.GraphEdge{}}
	seen := map[string]bool{}
	node := func(kind, name string) string {
		id := kind + ":" + name
		if !seen[id] {
			seen[id] = true
			g.Nodes = append(g.Nodes, apitype.GraphNode{ID: id, Kind: kind, Name: name})
		}
		return id
	}
	edge := func(from, to, kind, label string) {
		g.Edges = append(g.Edges, apitype.GraphEdge{From: from, To: to, Kind: kind, Label: label})
	}
	// A name in dependsOn or a mesh route is a service, a database or a
	// function; the spec's validation made sure it is one of them.
	kindOf := func(name string) string {
		switch {
		case app.Databases[name] != nil:
			return "database"
		case app.Functions[name] != nil:
			return "function"
		}
		return "service"
	}
	for _, name := range slices.Sorted(maps.Keys(app.Services)) {
		node("service", name)
	}
	for _, name := range slices.Sorted(maps.Keys(app.Functions)) {
		node("function", name)
	}
	for _, name := range slices.Sorted(maps.Keys(app.Databases)) {
		node("database", name)
	}
	for _, name := range slices.Sorted(maps.Keys(app.Queues)) {
		node("queue", name)
	}
	for _, name := range slices.Sorted(maps.Keys(app.Topics)) {
		node("topic", name)
	}
	for _, name := range slices.Sorted(maps.Keys(app.Services)) {
		for _, d := range app.Services[name].DependsOn {
			edge("service:"+name, node(kindOf(d), d), "dependsOn", "")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(app.Mesh.Routes)) {
		from := node("service", name)
		for _, d := range app.Mesh.Routes[name] {
			if d.Destination != name {
				edge(from, node(kindOf(d.Destination), d.Destination), "mesh", fmt.Sprintf("%d%%", d.Weight))
			}
		}
	}
	if gw := app.Gateway; gw != nil {
		from := node("gateway", cmp.Or(gw.Name, "gateway"))
		for _, r := range gw.Routes {
			switch in := r.Integration; in.Type {
			case "service":
				edge(from, node("service", in.Service), "route", r.Path)
			case "function":
				edge(from, node("function", in.Function), "route", r.Path)
			case "http":
				edge(from, node("external", in.URL), "route", r.Path)
			case "mock":
				edge(from, node("mock", fmt.Sprintf("mock %d", cmp.Or(in.Status, 200))), "route", r.Path)
			}
		}
	}
	for _, in := range app.Ingress {
		from := node("ingress", in.Name)
		for _, p := range in.Paths {
			edge(from, node(kindOf(p.To), p.To), "route", in.Host+p.Path)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(app.Functions)) {
		to := "function:" + name
		for _, t := range app.Functions[name].Triggers {
			switch {
			case t.Queue != "":
				edge(node("queue", t.Queue), to, "trigger", "")
			case t.Topic != "":
				edge(node("topic", t.Topic), to, "trigger", "")
			case t.Schedule != "":
				edge(node("schedule", t.Schedule), to, "trigger", "")
			case t.Event != nil:
				edge(node("bus", "events"), to, "trigger", t.Event.Type)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(app.Rules)) {
		r := app.Rules[name]
		if r.Target.Kind == "" {
			continue
		}
		to := node(string(r.Target.Kind), cmp.Or(r.Target.Name, r.Target.URL))
		edge(node("bus", "events"), to, "rule", name)
	}
	return g
}
