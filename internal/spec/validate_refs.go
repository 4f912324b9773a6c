package spec

import (
	"fmt"
	"sort"
	"strings"
)

// This file holds the reference checks, and the helpers the name and
// semantic checks share: every reference between sections names something
// declared, and for a likely typo the message says which name was meant.

// refHint returns ` (did you mean "x"?)` when a known name is close to name.
func refHint(name string, known []string) string {
	if s := Suggest(name, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// mergeNames returns the names of several lists, sorted and without repeats.
func mergeNames(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, n := range l {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// atObject places a problem with a whole mapping. A block mapping's value is
// recorded at the colon of its first key, which reads as a wrong place, so
// this uses the mapping's own key when it has one (services.users) and the
// first key written inside it otherwise (a list item).
func atObject(src *source, path string) Pos {
	if pos, ok := src.keyPos[path]; ok {
		return pos
	}
	var first Pos
	found := false
	for p, pos := range src.keyPos {
		if parentPath(p) != path {
			continue
		}
		if !found || posBefore(src.files, pos, first) {
			first, found = pos, true
		}
	}
	if found {
		return first
	}
	return src.at(path)
}

// posBefore orders positions as the diagnostics are sorted: by file in load
// order, then line and column.
func posBefore(files []string, a, b Pos) bool {
	if a.File != b.File {
		return fileRank(files, a.File) < fileRank(files, b.File)
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

func fileRank(files []string, f string) int {
	for i, x := range files {
		if x == f {
			return i
		}
	}
	return len(files)
}

// objectErrorf records an error about a whole mapping, placed by atObject.
func (r *report) objectErrorf(path, format string, args ...any) {
	r.add(atObject(r.src, path), path, SeverityError, format, args...)
}

// objectWarnf records a warning about a whole mapping, placed by atObject.
func (r *report) objectWarnf(path, format string, args ...any) {
	r.add(atObject(r.src, path), path, SeverityWarning, format, args...)
}

// checkReferences reports every reference that names nothing declared.
func checkReferences(a *App, r *report) {
	k := knownNames(a)
	refsServices(a, r, k)
	refsMesh(a, r, k)
	refsDatabases(a, r, k)
	refsFunctions(a, r, k)
	refsEvents(a, r, k)
	refsGateway(a, r, k)
	refsObservability(a, r, k)
}

// known holds the sorted names of each kind of thing a reference may name.
type known struct {
	services, databases, functions, queues, topics []string
	config, secrets, channels, escalation          []string
	workloads                                      []string // services and functions
	dependencies                                   []string // services, databases and functions
}

func knownNames(a *App) known {
	k := known{
		services:   sortedKeys(a.Services),
		databases:  sortedKeys(a.Databases),
		functions:  sortedKeys(a.Functions),
		queues:     sortedKeys(a.Queues),
		topics:     sortedKeys(a.Topics),
		config:     sortedKeys(a.Config),
		secrets:    sortedKeys(a.Secrets),
		channels:   sortedKeys(a.Observability.Channels),
		escalation: sortedKeys(a.Observability.Escalation),
	}
	k.workloads = mergeNames(k.services, k.functions)
	k.dependencies = mergeNames(k.services, k.databases, k.functions)
	return k
}

// ref reports name at path unless it is among names.
func (r *report) ref(path, what, name string, names []string) {
	if !contains(names, name) {
		r.unknown(path, what, name, names)
	}
}

func refsServices(a *App, r *report, k known) {
	for _, name := range k.services {
		s, p := a.Services[name], joinPath("services", name)
		for i, d := range s.DependsOn {
			r.ref(indexPath(p+".dependsOn", i), "service, database or function", d, k.dependencies)
		}
		for i, c := range s.EnvFrom.Config {
			r.ref(indexPath(p+".envFrom.config", i), "config", c, k.config)
		}
		for i, sec := range s.EnvFrom.Secrets {
			r.ref(indexPath(p+".envFrom.secrets", i), "secret", sec, k.secrets)
		}
	}
}

func refsMesh(a *App, r *report, k known) {
	for _, host := range sortedKeys(a.Mesh.Routes) {
		p := joinPath("mesh.routes", host)
		for i, d := range a.Mesh.Routes[host] {
			if d.Destination != "" {
				r.ref(indexPath(p, i)+".destination", "service", d.Destination, k.services)
			}
		}
	}
	for i, pol := range a.Mesh.Policies {
		p := indexPath("mesh.policies", i)
		if pol.To != "" && pol.To != "*" {
			r.ref(p+".to", "service or function", pol.To, k.workloads)
		}
		for j, pr := range pol.From.Principals {
			// Built-in principals (the ingress, the gateway, the events
			// dispatcher) and the SPIFFE form (cluster.local/ns/NS/sa/NAME),
			// Istio's own, are not workloads of the spec.
			if pr != "*" && !builtinPrincipals[pr] && !strings.Contains(pr, "/") {
				r.ref(indexPath(p+".from.principals", j), "service or function", pr, k.workloads)
			}
		}
		for j, c := range pol.When {
			if c.Key != "" && !policyKeyValid(c.Key) {
				r.errorf(indexPath(p+".when", j)+".key", "unknown key %q: use request.method, request.path, request.headers[NAME] or source.namespace%s", c.Key, hint(c.Key, policyKeys))
			}
		}
	}
	for i, in := range a.Ingress {
		for j, ip := range in.Paths {
			p := indexPath(indexPath("ingress", i)+".paths", j) + ".to"
			switch {
			case ip.To == "gateway":
				if a.Gateway == nil {
					r.errorf(p, `"gateway" needs a gateway section, and none is declared`)
				}
			case strings.HasPrefix(ip.To, "service:"):
				r.ref(p, "service", strings.TrimPrefix(ip.To, "service:"), k.services)
			case ip.To != "":
				r.errorf(p, `%q is not a destination: write "gateway" or service:NAME`, ip.To)
			}
		}
	}
}

func refsDatabases(a *App, r *report, k known) {
	for _, name := range k.databases {
		db, p := a.Databases[name], joinPath("databases", name)
		if key := db.Security.Encryption.Key; key != nil && key.Secret != "" {
			r.ref(p+".security.encryption.key.secret", "secret", key.Secret, k.secrets)
		}
		for i, role := range db.Security.Access.Roles {
			rp := indexPath(p+".security.access.roles", i)
			for j, s := range role.Services {
				r.ref(indexPath(rp+".services", j), "service", s, k.services)
			}
		}
		for i, rule := range db.Security.Network.Ingress {
			np := indexPath(p+".security.network.ingress", i)
			for j, peer := range rule.From {
				pp := indexPath(np+".from", j)
				if peer.Service != "" {
					r.ref(pp+".service", "service", peer.Service, k.services)
				}
				if peer.Function != "" {
					r.ref(pp+".function", "function", peer.Function, k.functions)
				}
			}
		}
		refsAlerts(r, p+".monitoring.alerts", db.Monitoring.Alerts, k)
	}
	if es := a.EventStore; es != nil {
		if key := es.Encryption.Key; key != nil && key.Secret != "" {
			r.ref("eventStore.encryption.key.secret", "secret", key.Secret, k.secrets)
		}
		for _, name := range sortedKeys(es.Projections) {
			refTarget(r, joinPath("eventStore.projections", name)+".handler", es.Projections[name].Handler, k, handlerTarget)
		}
		for _, name := range sortedKeys(es.Snapshots) {
			refTarget(r, joinPath("eventStore.snapshots", name)+".handler", es.Snapshots[name].Handler, k, handlerTarget)
		}
	}
}

// The uses of a target: events go to any declared thing or a URL; event-store
// handlers answer calls, so they are functions or services.
const (
	eventTarget   = false
	handlerTarget = true
)

// refTarget checks that a target is of a kind its use allows and names
// something declared. An unset target is the decoder's to report.
func refTarget(r *report, path string, t Target, k known, handler bool) {
	if !t.IsSet() {
		return
	}
	switch {
	case handler && t.Kind != TargetFunction && t.Kind != TargetService:
		r.errorf(path, "a handler is function:NAME or service:NAME/path, not %s", t.Text)
		return
	case t.Kind == TargetDatabase:
		r.errorf(path, "%s cannot receive events: write function:, service:, queue:, topic: or an http(s):// URL", t.Text)
		return
	}
	switch t.Kind {
	case TargetFunction:
		r.ref(path, "function", t.Name, k.functions)
	case TargetService:
		r.ref(path, "service", t.Name, k.services)
	case TargetQueue:
		r.ref(path, "queue", t.Name, k.queues)
	case TargetTopic:
		r.ref(path, "topic", t.Name, k.topics)
	}
}

func refsFunctions(a *App, r *report, k known) {
	for _, name := range k.functions {
		f, p := a.Functions[name], joinPath("functions", name)
		if f.DeadLetter != "" {
			r.ref(p+".deadLetter", "queue", f.DeadLetter, k.queues)
		}
		for i, t := range f.Triggers {
			tp := indexPath(p+".triggers", i)
			if t.Queue != "" {
				r.ref(tp+".queue", "queue", t.Queue, k.queues)
			}
			if t.Topic != "" {
				r.ref(tp+".topic", "topic", t.Topic, k.topics)
			}
		}
		for i, e := range f.VPC.Egress {
			refEgress(r, indexPath(p+".vpc.egress", i), e, k)
		}
	}
}

// refEgress checks one vpc.egress entry: service:, database: and function:
// name declared things; anything else is a host name, optionally with a port.
func refEgress(r *report, path, e string, k known) {
	kind, name, ok := strings.Cut(e, ":")
	if !ok {
		return
	}
	switch kind {
	case "service":
		r.ref(path, "service", name, k.services)
	case "database":
		r.ref(path, "database", name, k.databases)
	case "function":
		r.ref(path, "function", name, k.functions)
	default:
		if isPort(name) {
			return // host:port
		}
		r.errorf(path, "unknown egress kind %q: write service:NAME, database:NAME, function:NAME or a host name%s",
			kind, refHint(kind, []string{"service", "database", "function"}))
	}
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func refsEvents(a *App, r *report, k known) {
	for _, name := range sortedKeys(a.Rules) {
		refTarget(r, joinPath("rules", name)+".target", a.Rules[name].Target, k, eventTarget)
	}
	for _, name := range k.topics {
		p := joinPath("topics", name) + ".subscriptions"
		for i, s := range a.Topics[name].Subscriptions {
			refTarget(r, indexPath(p, i)+".endpoint", s.Endpoint, k, eventTarget)
		}
	}
	for _, name := range sortedKeys(a.Schedules) {
		refTarget(r, joinPath("schedules", name)+".target", a.Schedules[name].Target, k, eventTarget)
	}
	for _, name := range k.queues {
		dl := a.Queues[name].DeadLetter
		if dl == nil || dl.Queue == "" {
			continue
		}
		p := joinPath("queues", name) + ".deadLetter.queue"
		if dl.Queue == name {
			r.errorf(p, "queue %q cannot be its own dead-letter queue", name)
			continue
		}
		r.ref(p, "queue", dl.Queue, k.queues)
	}
}

func refsGateway(a *App, r *report, k known) {
	g := a.Gateway
	if g == nil {
		return
	}
	authorizers, models := sortedKeys(g.Authorizers), sortedKeys(g.Models)
	for _, name := range authorizers {
		au, p := g.Authorizers[name], joinPath("gateway.authorizers", name)
		if au.Function != "" {
			r.ref(p+".function", "function", au.Function, k.functions)
		}
		if au.Keys != nil && au.Keys.Secret != "" {
			r.ref(p+".keys.secret", "secret", au.Keys.Secret, k.secrets)
		}
	}
	for i, rt := range g.Routes {
		p := indexPath("gateway.routes", i)
		if rt.Authorizer != "" {
			r.ref(p+".authorizer", "authorizer", rt.Authorizer, authorizers)
		}
		if rt.Request != nil && rt.Request.Model != "" {
			r.ref(p+".request.model", "model", rt.Request.Model, models)
		}
		in := rt.Integration
		if in.Service != "" {
			refStaged(r, g, p+".integration.service", "service", in.Service, k.services)
		}
		if in.Function != "" {
			refStaged(r, g, p+".integration.function", "function", in.Function, k.functions)
		}
	}
}

// refStaged checks a reference that may be written with stage variables
// (${stage.usersService}): it must name a declared thing in every stage, so
// each stage is resolved in turn. A variable no stage has is reported by
// checkInterpolations.
func refStaged(r *report, g *Gateway, path, what, value string, names []string) {
	if !strings.Contains(value, "${") {
		r.ref(path, what, value, names)
		return
	}
	vars := stageVariables(g)
	for _, stage := range sortedKeys(g.Stages) {
		resolved, missing := expandStage(value, g.Stages[stage].Variables)
		switch {
		case missing != "" && vars[missing]:
			r.errorf(path, "stage %q has no variable %q, which %s uses", stage, missing, value)
		case missing != "":
			return // no stage has it; checkInterpolations says so
		case strings.Contains(resolved, "${"):
			return // other interpolations cannot be resolved before nubo up
		case !contains(names, resolved):
			r.errorf(path, "%s is %q in stage %q: unknown %s%s", value, resolved, stage, what, refHint(resolved, names))
		}
	}
}

// expandStage substitutes ${stage.NAME} in s with vars; it returns the first
// variable vars lacks. Other interpolations are left as written.
func expandStage(s string, vars map[string]string) (string, string) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${stage.")
		if i < 0 {
			b.WriteString(s)
			return b.String(), ""
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String(), ""
		}
		name := s[i+len("${stage.") : i+j]
		v, ok := vars[name]
		if !ok {
			return "", name
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// stageVariables is the set of variable names of all stages.
func stageVariables(g *Gateway) map[string]bool {
	out := map[string]bool{}
	if g == nil {
		return out
	}
	for _, st := range g.Stages {
		for v := range st.Variables {
			out[v] = true
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func refsObservability(a *App, r *report, k known) {
	o := &a.Observability
	refsAlerts(r, "observability.alerts", o.Alerts, k)
	for _, name := range k.escalation {
		p := joinPath("observability.escalation", name) + ".steps"
		for i, st := range o.Escalation[name].Steps {
			for j, c := range st.Channels {
				r.ref(indexPath(indexPath(p, i)+".channels", j), "channel", c, k.channels)
			}
		}
	}
	for _, name := range sortedKeys(o.SLOs) {
		slo, p := o.SLOs[name], joinPath("observability.slos", name)
		for i, ind := range slo.Indicators {
			if ind.Service != "" {
				r.ref(indexPath(p+".indicators", i)+".service", "service", ind.Service, k.services)
			}
		}
		for _, al := range []struct {
			key   string
			alert *SLOAlert
		}{{"page", slo.Alerting.Page}, {"ticket", slo.Alerting.Ticket}} {
			if al.alert == nil {
				continue
			}
			ap := p + ".alerting." + al.key
			if al.alert.Escalation != "" {
				r.ref(ap+".escalation", "escalation policy", al.alert.Escalation, k.escalation)
			}
			for j, c := range al.alert.Channels {
				r.ref(indexPath(ap+".channels", j), "channel", c, k.channels)
			}
		}
	}
	for i, s := range o.Metrics.Scrape {
		if s.Service != "" {
			r.ref(indexPath("observability.metrics.scrape", i)+".service", "service", s.Service, k.services)
		}
	}
	for i, lp := range o.Logs.Parsers {
		p := indexPath("observability.logs.parsers", i) + ".services"
		for j, s := range lp.Services {
			r.ref(indexPath(p, j), "service", s, k.services)
		}
	}
}

func refsAlerts(r *report, path string, alerts []*AlertRule, k known) {
	for i, al := range alerts {
		p := indexPath(path, i)
		if al.Escalation != "" {
			r.ref(p+".escalation", "escalation policy", al.Escalation, k.escalation)
		}
		for j, c := range al.Channels {
			r.ref(indexPath(p+".channels", j), "channel", c, k.channels)
		}
	}
}

// IngressPrincipal is the principal of requests that come through the
// ingress; no workload may take the name.
const IngressPrincipal = "ingress"

// builtinPrincipals are the callers nubo itself runs: the ingress, the API
// gateway and the events dispatcher. Workloads may not take their names.
var builtinPrincipals = map[string]bool{IngressPrincipal: true, "gateway": true, "nubo-events": true}

// policyKeys are the `when` keys of authorization policies nubo evaluates,
// Istio's names.
var policyKeys = []string{"request.method", "request.path", "request.headers[NAME]", "source.namespace"}

func policyKeyValid(k string) bool {
	switch k {
	case "request.method", "request.path", "source.namespace":
		return true
	}
	return strings.HasPrefix(k, "request.headers[") && strings.HasSuffix(k, "]") && len(k) > len("request.headers[]")
}

func hint(s string, candidates []string) string {
	if best := Suggest(s, candidates); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
