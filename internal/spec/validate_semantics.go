package spec

import (
	"net/url"
	"strings"
)

// checkSemantics reports values that are well-formed but mean nothing: ports
// out of range, weights that do not sum to 100, a probe with two actions, a
// workload nubo up cannot start, a secret written into the spec.
func checkSemantics(a *App, r *report) {
	for _, name := range sortedKeys(a.Services) {
		serviceSemantics(r, joinPath("services", name), a.Services[name])
	}
	meshSemantics(a, r)
	for _, name := range sortedKeys(a.Databases) {
		databaseSemantics(r, joinPath("databases", name), a.Databases[name])
	}
	for _, name := range sortedKeys(a.Functions) {
		functionSemantics(r, joinPath("functions", name), a.Functions[name])
	}
	eventSemantics(a, r)
	if a.Gateway != nil {
		gatewaySemantics(r, a.Gateway)
	}
	observabilitySemantics(r, &a.Observability)
}

// checkPort reports a port out of 1..65535; 0 is an unset optional port.
func checkPort(r *report, path string, port int) {
	if port != 0 {
		checkRequiredPort(r, path, port)
	}
}

func checkRequiredPort(r *report, path string, port int) {
	if port < 1 || port > 65535 {
		r.errorf(path, "port %d is out of range 1..65535", port)
	}
}

// checkAtLeast reports an integer below min. Defaults have replaced the zeros
// of unset fields already, so a value below min was written.
func checkAtLeast(r *report, path, field string, v, min int) {
	if v < min {
		r.errorf(path, "%s must be at least %d, not %d", field, min, v)
	}
}

func checkPercent(r *report, path string, v float64) {
	if v < 0 || v > 100 {
		r.errorf(path, "percent %g is not within 0..100", v)
	}
}

// exactlyOne reports a mapping that sets none or several of a choice of fields.
func exactlyOne(r *report, path, what string, names []string, set []bool) {
	var chosen []string
	for i, n := range names {
		if set[i] {
			chosen = append(chosen, n)
		}
	}
	switch len(chosen) {
	case 0:
		r.objectErrorf(path, "%s needs one of %s", what, joinWords(names, "or"))
	case 1:
	default:
		r.objectErrorf(path, "%s sets %s: set only one", what, joinWords(chosen, "and"))
	}
}

// joinWords joins "a", "b", "c" as "a, b or c".
func joinWords(words []string, last string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + last + " " + words[len(words)-1]
}

// needsRun reports a workload nubo up cannot start: with an image it still
// renders for Kubernetes, so that is only a warning.
func needsRun(r *report, path, run, image string) {
	switch {
	case run != "":
	case image != "":
		r.objectWarnf(path, "no run: nubo up cannot start it; it is rendered for Kubernetes only")
	default:
		r.objectErrorf(path, "needs run (what nubo up starts) or image (what Kubernetes runs)")
	}
}

const inlineSecretMessage = "looks like a secret written inline; declare it under secrets and use ${secrets.NAME.KEY}"

// secretWords in a variable's name mark its value as a secret.
var secretWords = []string{"PASSWORD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY"}

// checkInlineSecrets warns about env values that look like secrets: the spec
// goes into git and into rendered manifests, secrets must not.
func checkInlineSecrets(r *report, path string, env map[string]string) {
	for _, k := range sortedKeys(env) {
		upper := strings.ToUpper(k)
		for _, w := range secretWords {
			if strings.Contains(upper, w) && isInlineValue(env[k]) {
				r.warnf(joinPath(path, k), inlineSecretMessage)
				break
			}
		}
	}
}

// isInlineValue reports a non-empty value that takes nothing from elsewhere.
func isInlineValue(v string) bool { return v != "" && !strings.Contains(v, "${") }

// checkURLCredentials warns about user:password@ written into a URL.
func checkURLCredentials(r *report, path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return
	}
	if pw, ok := u.User.Password(); ok && isInlineValue(pw) {
		r.warnf(path, inlineSecretMessage)
	}
}

func serviceSemantics(r *report, p string, s *Service) {
	needsRun(r, p, s.Run, s.Image)
	checkPort(r, p+".port", s.Port)
	checkPort(r, p+".expose.port", s.Expose.Port)
	if s.Replicas != nil {
		checkAtLeast(r, p+".replicas", "replicas", *s.Replicas, 0)
	}
	if sc := s.Scaling; sc != nil {
		sp := p + ".scaling"
		checkAtLeast(r, sp+".min", "min", sc.Min, 0)
		if sc.Max < 1 {
			checkAtLeast(r, sp+".max", "max", sc.Max, 1)
		} else if sc.Min > sc.Max {
			r.errorf(sp+".min", "min %d is more than max %d", sc.Min, sc.Max)
		}
		checkAtLeast(r, sp+".targetCPU", "targetCPU", sc.TargetCPU, 0)
		checkAtLeast(r, sp+".targetMemory", "targetMemory", sc.TargetMemory, 0)
		if sc.TargetCPU > 0 && !s.Resources.CPU.IsSet() {
			r.errorf(sp+".targetCPU", "targetCPU is a percent of resources.cpu, which is not set")
		}
		if sc.TargetMemory > 0 && !s.Resources.Memory.IsSet() {
			r.errorf(sp+".targetMemory", "targetMemory is a percent of resources.memory, which is not set")
		}
		if sc.TargetCPU == 0 && sc.TargetMemory == 0 {
			r.objectErrorf(sp, "scaling needs a target: set targetCPU or targetMemory")
		}
	}
	for _, pr := range []struct {
		name  string
		probe *Probe
	}{{"liveness", s.Health.Liveness}, {"readiness", s.Health.Readiness}, {"startup", s.Health.Startup}} {
		if pr.probe != nil {
			probeSemantics(r, p+".health."+pr.name, pr.probe)
		}
	}
	trafficSemantics(r, p+".traffic", &s.Traffic)
	checkInlineSecrets(r, p+".env", s.Env)
}

func probeSemantics(r *report, p string, pr *Probe) {
	exactlyOne(r, p, "a probe", []string{"http", "tcp", "exec"}, []bool{pr.HTTP != nil, pr.TCP != nil, pr.Exec != nil})
	if pr.HTTP != nil {
		checkPort(r, p+".http.port", pr.HTTP.Port)
	}
	if pr.TCP != nil {
		checkPort(r, p+".tcp.port", pr.TCP.Port)
	}
	checkAtLeast(r, p+".failureThreshold", "failureThreshold", pr.FailureThreshold, 1)
	checkAtLeast(r, p+".successThreshold", "successThreshold", pr.SuccessThreshold, 1)
}

func trafficSemantics(r *report, p string, t *Traffic) {
	lb := &t.LoadBalancing
	if st := lb.Sticky; st != nil {
		exactlyOne(r, p+".loadBalancing.sticky", "sticky", []string{"header", "cookie"}, []bool{st.Header != "", st.Cookie != nil})
		// Sticky sessions hash a key onto the replicas, which only ring_hash
		// does. This is a warning, not an error: the reference spec shows
		// sticky beside least_request, and nubo honours sticky (ring_hash).
		if lb.Algorithm != "ring_hash" {
			r.warnf(p+".loadBalancing.algorithm", "sticky sessions use ring_hash; %s is ignored while sticky is set", lb.Algorithm)
		}
	}
	if cb := t.CircuitBreaker; cb != nil {
		checkAtLeast(r, p+".circuitBreaker.consecutiveErrors", "consecutiveErrors", cb.ConsecutiveErrors, 1)
		checkPercent(r, p+".circuitBreaker.maxEjectionPercent", float64(cb.MaxEjectionPercent))
	}
	if rt := t.Retry; rt != nil {
		checkAtLeast(r, p+".retry.attempts", "attempts", rt.Attempts, 0)
	}
	if f := t.Fault; f != nil {
		if f.Delay != nil {
			checkPercent(r, p+".fault.delay.percent", f.Delay.Percent)
		}
		if ab := f.Abort; ab != nil {
			checkPercent(r, p+".fault.abort.percent", ab.Percent)
			if ab.Status < 200 || ab.Status > 599 {
				r.errorf(p+".fault.abort.status", "status %d is not within 200..599", ab.Status)
			}
		}
	}
}

func meshSemantics(a *App, r *report) {
	for _, host := range sortedKeys(a.Mesh.Routes) {
		p := joinPath("mesh.routes", host)
		sum := 0
		for i, d := range a.Mesh.Routes[host] {
			checkAtLeast(r, indexPath(p, i)+".weight", "weight", d.Weight, 0)
			sum += d.Weight
		}
		if sum != 100 {
			r.objectErrorf(p, "the weights of route %q sum to %d, not 100", host, sum)
		}
	}
	for i, in := range a.Ingress {
		for j, ip := range in.Paths {
			checkPort(r, indexPath(indexPath("ingress", i)+".paths", j)+".port", ip.Port)
		}
	}
}

func databaseSemantics(r *report, p string, db *Database) {
	checkAtLeast(r, p+".replicas", "replicas", db.Replicas, 0)
	if db.Backup.Enabled && db.Backup.Schedule == "" {
		r.objectErrorf(p+".backup", "enabled backups need a schedule")
	}
	checkAtLeast(r, p+".backup.retention", "retention", db.Backup.Retention, 1)
	for i, rule := range db.Security.Network.Ingress {
		np := indexPath(p+".security.network.ingress", i)
		for j, peer := range rule.From {
			exactlyOne(r, indexPath(np+".from", j), "a peer", []string{"service", "function"},
				[]bool{peer.Service != "", peer.Function != ""})
		}
		for j, port := range rule.Ports {
			checkRequiredPort(r, indexPath(np+".ports", j)+".port", port.Port)
		}
	}
}

func functionSemantics(r *report, p string, f *Function) {
	needsRun(r, p, f.Run, f.Image)
	checkAtLeast(r, p+".concurrency", "concurrency", f.Concurrency, 1)
	checkAtLeast(r, p+".scaling.min", "min", f.Scaling.Min, 0)
	if f.Scaling.Max < 1 {
		checkAtLeast(r, p+".scaling.max", "max", f.Scaling.Max, 1)
	} else if f.Scaling.Min > f.Scaling.Max {
		r.errorf(p+".scaling.min", "min %d is more than max %d", f.Scaling.Min, f.Scaling.Max)
	}
	checkAtLeast(r, p+".retry.attempts", "attempts", f.Retry.Attempts, 0)
	for i, t := range f.Triggers {
		tp := indexPath(p+".triggers", i)
		exactlyOne(r, tp, "a trigger", []string{"queue", "topic", "schedule", "http", "event"},
			[]bool{t.Queue != "", t.Topic != "", t.Schedule != "", t.HTTP != nil, t.Event != nil})
		checkAtLeast(r, tp+".batchSize", "batchSize", t.BatchSize, 1)
	}
	checkInlineSecrets(r, p+".env", f.Env)
}

func eventSemantics(a *App, r *report) {
	for _, name := range sortedKeys(a.Queues) {
		if dl := a.Queues[name].DeadLetter; dl != nil {
			checkAtLeast(r, joinPath("queues", name)+".deadLetter.maxReceive", "maxReceive", dl.MaxReceive, 1)
		}
	}
	for _, name := range sortedKeys(a.Topics) {
		p := joinPath("topics", name) + ".subscriptions"
		for i, s := range a.Topics[name].Subscriptions {
			checkAtLeast(r, indexPath(p, i)+".batchSize", "batchSize", s.BatchSize, 1)
		}
	}
	es := a.EventStore
	if es == nil {
		return
	}
	for _, name := range sortedKeys(es.Projections) {
		p, pr := joinPath("eventStore.projections", name), es.Projections[name]
		checkAtLeast(r, p+".batchSize", "batchSize", pr.BatchSize, 1)
		checkAtLeast(r, p+".checkpoint", "checkpoint", pr.Checkpoint, 1)
	}
	for _, name := range sortedKeys(es.Snapshots) {
		p, sn := joinPath("eventStore.snapshots", name), es.Snapshots[name]
		checkAtLeast(r, p+".every", "every", sn.Every, 0)
		if sn.Every == 0 && !sn.Frequency.IsSet() {
			r.objectErrorf(p, "a snapshot needs every or frequency")
		}
	}
}
