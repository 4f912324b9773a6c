package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// meshConfig maps the spec for the mesh, with the engine's logger, metrics
// and the local CA's folder.
func (e *Engine) meshConfig(app *spec.App) mesh.Config {
	cfg := mesh.ConfigFromSpec(app)
	cfg.Logger = e.log.With("component", "mesh")
	cfg.Metrics = e.metrics.reg
	cfg.CADir = CADir(app)
	cfg.ExtraDurationBuckets = slo.LatencyBuckets(app)
	return cfg
}

// CADir is where nubo up keeps its local certificate authority.
func CADir(app *spec.App) string { return filepath.Join(app.StatePath(), "ca") }

func (e *Engine) startMesh(ctx context.Context, app *spec.App) (*mesh.Mesh, error) {
	m, err := mesh.New(e.meshConfig(app), mesh.EndpointsFunc(e.meshEndpoints))
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	if err := m.Start(ctx); err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	if h, s := m.IngressAddrs(); h != "" || s != "" {
		if h != "" {
			e.out.event("", "ingress on http://"+h)
		}
		if s != "" {
			e.out.event("", fmt.Sprintf("ingress on https://%s (certificates from the local CA: %s)", s, mesh.CACertPath(CADir(app))))
		}
	}
	return m, nil
}

// meshEndpoints tells the mesh where a service's replicas listen and which
// are ready; a retiring replica (being replaced or removed) takes no new
// requests.
func (e *Engine) meshEndpoints(service string) []mesh.Endpoint {
	e.mu.Lock()
	r := e.services[service]
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	st := r.sup.Status()
	out := make([]mesh.Endpoint, 0, len(st.Replicas))
	for _, rep := range st.Replicas {
		if rep.Port == 0 {
			continue
		}
		out = append(out, mesh.Endpoint{
			ID:    strconv.Itoa(rep.ID),
			Addr:  "127.0.0.1:" + strconv.Itoa(rep.Port),
			Ready: rep.Ready && !rep.Retiring,
		})
	}
	return out
}

// endpointsChanged tells the mesh at once when a replica's readiness may
// have changed, rather than at its next periodic refresh.
func (e *Engine) endpointsChanged(ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.EventStarted, supervisor.EventReady, supervisor.EventNotReady, supervisor.EventExited,
		supervisor.EventStopped, supervisor.EventFailed, supervisor.EventKilling:
	default:
		return
	}
	e.mu.Lock()
	m := e.mesh
	e.mu.Unlock()
	if m != nil {
		m.EndpointsChanged(ev.Service)
	}
}

// platformEnv is what the platform gives every process of a workload: its
// mesh proxy (HTTP_PROXY, NUBO_SERVICE_<NAME>_URL) and the platform API.
func (e *Engine) platformEnv(workload string) ([]string, error) {
	e.mu.Lock()
	m, admin, b := e.mesh, e.admin, e.broker
	e.mu.Unlock()
	var env []string
	if admin != nil {
		env = append(env, "NUBO_API=http://"+admin.Addr())
	}
	if b != nil {
		env = append(env, "NUBO_NATS_URL="+b.ClientURL())
	}
	if m != nil {
		menv, err := m.Env(workload)
		if err != nil {
			return nil, err
		}
		env = append(env, menv...)
	}
	return env, nil
}
