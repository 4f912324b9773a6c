package spec

import "path/filepath"

// The defaults the reference states, in one place. Each is applied only where
// the spec left the value unset.
const (
	DefaultStateDir     = ".nubo"
	DefaultConsole      = "127.0.0.1:4500"
	DefaultGateway      = "127.0.0.1:8000"
	DefaultIngressHTTP  = "127.0.0.1:8080"
	DefaultIngressHTTPS = "127.0.0.1:8443"
	DefaultOTLP         = "127.0.0.1:4318"
)

func applyDefaults(a *App) {
	if a.Namespace == "" {
		a.Namespace = a.Name
	}
	for _, s := range a.Secrets {
		def(&s.Type, "opaque")
		if s.From.Env == nil {
			s.From.Env = ptr(true)
		}
	}
	for _, s := range a.Services {
		serviceDefaults(s)
	}
	def(&a.Mesh.MTLS, "permissive")
	def(&a.Mesh.Enforcement, "enforce")
	for _, db := range a.Databases {
		databaseDefaults(db)
	}
	for _, f := range a.Functions {
		functionDefaults(f)
	}
	for _, r := range a.Rules {
		defBool(&r.Enabled, true)
	}
	for _, q := range a.Queues {
		def(&q.Type, "standard")
		defDur(&q.Visibility, "30s")
		defDur(&q.Retention, "96h")
		if q.DeadLetter != nil && q.DeadLetter.MaxReceive == 0 {
			q.DeadLetter.MaxReceive = 5
		}
	}
	for _, t := range a.Topics {
		for _, sub := range t.Subscriptions {
			defInt(&sub.BatchSize, 1)
			if sub.Protocol == "" {
				sub.Protocol = protocolOf(sub.Endpoint)
			}
		}
	}
	for _, s := range a.Schedules {
		defBool(&s.Enabled, true)
	}
	if a.Gateway != nil {
		gatewayDefaults(a.Gateway)
	}
	if es := a.EventStore; es != nil {
		for _, p := range es.Projections {
			defInt(&p.BatchSize, 100)
			defInt(&p.Checkpoint, 100)
		}
	}
	observabilityDefaults(&a.Observability)
	localDefaults(&a.Local)
	k := &a.Kubernetes
	def(&k.Mesh, "istio")
	def(&k.Functions, "knative")
	def(&k.Ingress, "ingress")
	def(&k.Monitoring, "prometheus-operator")
}

func serviceDefaults(s *Service) {
	if s.Replicas == nil {
		n := 1
		if s.Scaling != nil && s.Scaling.Min > 0 {
			n = s.Scaling.Min
		}
		s.Replicas = &n
	}
	if s.Scaling != nil {
		defInt(&s.Scaling.Min, 1)
	}
	def(&s.Restart, "always")
	defDur(&s.StopGracePeriod, "30s")
	for _, p := range []*Probe{s.Health.Liveness, s.Health.Readiness, s.Health.Startup} {
		if p == nil {
			continue
		}
		defDur(&p.Period, "10s")
		defDur(&p.Timeout, "1s")
		defInt(&p.FailureThreshold, 3)
		defInt(&p.SuccessThreshold, 1)
		if p.HTTP != nil {
			def(&p.HTTP.Path, "/")
		}
	}
	def(&s.Expose.Type, "ClusterIP")
	defInt(&s.Expose.Port, 80)
	lb := &s.Traffic.LoadBalancing
	if lb.Algorithm == "" {
		lb.Algorithm = "round_robin"
		if lb.Sticky != nil {
			lb.Algorithm = "ring_hash"
		}
	}
	if cb := s.Traffic.CircuitBreaker; cb != nil {
		defInt(&cb.ConsecutiveErrors, 5)
		defDur(&cb.Interval, "10s")
		defDur(&cb.Timeout, "30s")
		defInt(&cb.MaxEjectionPercent, 50)
	}
	if r := s.Traffic.Retry; r != nil {
		defInt(&r.Attempts, 2)
		if len(r.On) == 0 {
			r.On = []string{"connect-failure", "reset", "5xx"}
		}
	}
}

func databaseDefaults(db *Database) {
	defInt(&db.Replicas, 1)
	if db.Storage.Size.Text == "" {
		_ = db.Storage.Size.decodeScalar("1Gi")
	}
	def(&db.Storage.AccessMode, "ReadWriteOnce")
	defBool(&db.Storage.Persistent, true)
	defInt(&db.Backup.Retention, 7)
	for _, rule := range db.Security.Network.Ingress {
		for _, p := range rule.Ports {
			def(&p.Protocol, "TCP")
		}
	}
}

func functionDefaults(f *Function) {
	defDur(&f.Timeout, "30s")
	defInt(&f.Concurrency, 1)
	defInt(&f.Scaling.Max, 10)
	defDur(&f.Scaling.IdleTimeout, "60s")
	defDur(&f.Retry.Backoff, "1s")
	for _, t := range f.Triggers {
		defBool(&t.Enabled, true)
		defInt(&t.BatchSize, 1)
		if t.HTTP != nil {
			def(&t.HTTP.Method, "POST")
		}
	}
}

func gatewayDefaults(g *Gateway) {
	for _, st := range g.Stages {
		if c := st.Cache; c != nil {
			defDur(&c.TTL, "300s")
			if c.Size.Text == "" {
				_ = c.Size.decodeScalar("64Mi")
			}
		}
	}
	for _, a := range g.Authorizers {
		def(&a.IdentitySource, "header.Authorization")
		if a.Type == "jwt" && len(a.Algorithms) == 0 {
			a.Algorithms = []string{"RS256", "ES256"}
		}
		if a.Type == "function" {
			defDur(&a.ResultTTL, "300s")
		}
	}
	for _, m := range g.Models {
		def(&m.ContentType, "application/json")
	}
	for _, r := range g.Routes {
		defDur(&r.Integration.Timeout, "29s")
		if r.Integration.Type == "mock" {
			defInt(&r.Integration.Status, 200)
		}
		if r.Request != nil && r.Request.MaxBodySize.Text == "" {
			_ = r.Request.MaxBodySize.decodeScalar("1Mi")
		}
	}
}

func observabilityDefaults(o *Observability) {
	defDur(&o.Metrics.Interval, "15s")
	defDur(&o.Metrics.Retention, "360h")
	for _, s := range o.Metrics.Scrape {
		def(&s.Path, "/metrics")
	}
	defDur(&o.Logs.Retention, "720h")
	if o.Tracing.SampleRate == nil {
		o.Tracing.SampleRate = ptr(1.0)
	}
	for _, e := range o.Escalation {
		if e.Repeat && e.MaxRepeat == 0 {
			e.MaxRepeat = 3
		}
		for _, st := range e.Steps {
			def(&st.Condition, "always")
		}
	}
	for _, d := range o.Dashboards {
		for _, p := range d.Panels {
			def(&p.Type, "timeseries")
			for _, t := range p.Thresholds {
				def(&t.Op, "gt")
			}
		}
	}
	for _, s := range o.SLOs {
		defDur(&s.Window, "30d")
		for _, ind := range s.Indicators {
			if ind.Weight == nil {
				ind.Weight = ptr(1.0)
			}
		}
	}
	for _, c := range o.Channels {
		if c.SMTP != nil {
			defInt(&c.SMTP.Port, 25)
		}
	}
}

func localDefaults(l *Local) {
	def(&l.StateDir, DefaultStateDir)
	def(&l.Console, DefaultConsole)
	def(&l.Gateway, DefaultGateway)
	def(&l.Ingress.HTTP, DefaultIngressHTTP)
	def(&l.Ingress.HTTPS, DefaultIngressHTTPS)
	def(&l.OTLP, DefaultOTLP)
	sv := &l.Supervisor
	defDur(&sv.Backoff, "10s")
	defDur(&sv.MaxBackoff, "5m")
	defDur(&sv.BackoffReset, "10m")
	defDur(&sv.AutoscaleInterval, "15s")
	defDur(&sv.ScaleDownStabilization, "5m")
	defDur(&sv.SampleInterval, "5s")
	if l.Broker.Embedded == nil {
		l.Broker.Embedded = ptr(l.Broker.URL == "")
	}
}

// StatePath returns the state directory as an absolute or spec-relative path.
func (a *App) StatePath() string {
	if filepath.IsAbs(a.Local.StateDir) {
		return a.Local.StateDir
	}
	return filepath.Join(a.Dir, a.Local.StateDir)
}

func protocolOf(t Target) string {
	switch t.Kind {
	case TargetHTTP:
		return "http"
	case "":
		return ""
	}
	return string(t.Kind)
}

func ptr[T any](v T) *T { return &v }

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func defInt(i *int, v int) {
	if *i == 0 {
		*i = v
	}
}

func defDur(d *Duration, v string) {
	if !d.IsSet() {
		*d = Dur(v)
	}
}

func defBool(b **bool, v bool) {
	if *b == nil {
		*b = ptr(v)
	}
}
