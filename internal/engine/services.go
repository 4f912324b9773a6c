package engine

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// serviceDir is a service's working directory: its dir, relative to the spec's
// folder, or that folder.
func serviceDir(app *spec.App, dir string) string {
	if dir == "" {
		return app.Dir
	}
	if filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(app.Dir, dir)
}

// supervisorConfig maps a spec service to what the supervisor runs. env is the
// service's resolved environment.
func supervisorConfig(app *spec.App, name string, s *spec.Service, env []string) supervisor.ServiceConfig {
	sv := app.Local.Supervisor
	replicas := 1
	if s.Replicas != nil {
		replicas = *s.Replicas
	}
	if s.Scaling != nil {
		replicas = max(replicas, s.Scaling.Min)
	}
	return supervisor.ServiceConfig{
		Name:            name,
		Command:         s.Run,
		Dir:             serviceDir(app, s.Dir),
		Env:             env,
		Replicas:        replicas,
		Port:            s.Port,
		Restart:         restartPolicy(s.Restart),
		StopGracePeriod: s.StopGracePeriod.Duration,
		Liveness:        probe(s.Health.Liveness, s.Port),
		Readiness:       probe(s.Health.Readiness, s.Port),
		Startup:         probe(s.Health.Startup, s.Port),
		Backoff: supervisor.Backoff{
			Base:  sv.Backoff.Duration,
			Max:   sv.MaxBackoff.Duration,
			Reset: sv.BackoffReset.Duration,
		},
	}
}

func restartPolicy(r string) supervisor.RestartPolicy {
	switch r {
	case "on-failure":
		return supervisor.RestartOnFailure
	case "never":
		return supervisor.RestartNever
	}
	return supervisor.RestartAlways
}

func probe(p *spec.Probe, servicePort int) *supervisor.Probe {
	if p == nil {
		return nil
	}
	out := &supervisor.Probe{
		InitialDelay:     p.InitialDelay.Duration,
		Period:           p.Period.Duration,
		Timeout:          p.Timeout.Duration,
		FailureThreshold: p.FailureThreshold,
		SuccessThreshold: p.SuccessThreshold,
	}
	// A probe port equal to the service's port means the replica's $PORT
	// locally, as each replica listens on its own.
	switch {
	case p.HTTP != nil:
		out.HTTP = &supervisor.HTTPProbe{Path: p.HTTP.Path, Port: localPort(p.HTTP.Port, servicePort), Headers: p.HTTP.Headers}
	case p.TCP != nil:
		out.TCP = &supervisor.TCPProbe{Port: localPort(p.TCP.Port, servicePort)}
	case p.Exec != nil:
		out.Exec = &supervisor.ExecProbe{Command: p.Exec.Command}
	}
	return out
}

func localPort(port, servicePort int) int {
	if port == servicePort {
		return 0
	}
	return port
}

// autoscalePolicy maps spec scaling to the HPA policy, or nil without scaling.
func autoscalePolicy(app *spec.App, s *spec.Service) *supervisor.AutoscalePolicy {
	if s.Scaling == nil {
		return nil
	}
	sv := app.Local.Supervisor
	p := &supervisor.AutoscalePolicy{
		MinReplicas:             s.Scaling.Min,
		MaxReplicas:             s.Scaling.Max,
		TargetCPUUtilization:    float64(s.Scaling.TargetCPU),
		TargetMemoryUtilization: float64(s.Scaling.TargetMemory),
		ScaleDownStabilization:  sv.ScaleDownStabilization.Duration,
		Period:                  sv.AutoscaleInterval.Duration,
	}
	if s.Resources.CPU.IsSet() {
		p.CPURequest = float64(s.Resources.CPU.MilliValue()) / 1000
	}
	if s.Resources.Memory.IsSet() {
		p.MemoryRequest = uint64(s.Resources.Memory.Value())
	}
	return p
}

// envResolver resolves ${...} for the local run. Values of parts nubo up does
// not run yet resolve to "" and are reported once through notYet.
type envResolver struct {
	app     *spec.App
	getenv  func(string) string
	secrets interface {
		Get(name, key string) (string, bool)
	}
	notYet func(expr string)
	// workload names who the values are for: a database's URL carries
	// the credentials of the workload's role.
	workload  string
	databases func(name, attr, workload string) (string, error)
}

func (r *envResolver) lookup(expr string) (string, error) {
	return spec.Refs{App: r.app, Getenv: r.getenv, Secret: r.secrets.Get, Other: func(expr string, parts []string) (string, error) {
		if parts[0] == "databases" && len(parts) == 3 && r.databases != nil {
			return r.databases(parts[1], parts[2], r.workload)
		}
		if r.notYet != nil {
			r.notYet(expr)
		}
		return "", nil
	}}.Lookup(expr)
}

// serviceEnv builds a service's environment: every key of its envFrom config
// maps and secrets, then env, which wins; ${...} resolved. Sorted, so that
// equal specs give equal configs and reload can compare them.
func serviceEnv(app *spec.App, name string, env map[string]string, from spec.EnvFrom, r *envResolver) ([]string, error) {
	vars := map[string]string{
		"NUBO_APP":       app.Name,
		"NUBO_NAMESPACE": app.Namespace,
	}
	for _, c := range from.Config {
		for k, v := range app.Config[c] {
			vars[k] = v
		}
	}
	for _, sname := range from.Secrets {
		sec := app.Secrets[sname]
		if sec == nil {
			continue
		}
		for _, k := range sec.Keys {
			v, ok := r.secrets.Get(sname, k)
			if !ok {
				return nil, fmt.Errorf("service %q: secret %q has no value for key %q", name, sname, k)
			}
			vars[k] = v
		}
	}
	for k, v := range env {
		val, err := spec.Interpolate(v, r.lookup)
		if err != nil {
			return nil, fmt.Errorf("service %q: env %s: %w", name, k, err)
		}
		vars[k] = val
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}
