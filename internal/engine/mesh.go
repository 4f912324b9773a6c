package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// meshComponent is the mesh's proxies and the ingress.
type meshComponent struct {
	e *Engine
	m *mesh.Mesh
	// app is the spec the mesh runs: what a reload compares with.
	app *spec.App
}

func newMeshComponent(e *Engine, app *spec.App, eps mesh.Endpoints) (*meshComponent, error) {
	m, err := mesh.New(e.meshConfig(app), eps)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	return &meshComponent{e: e, m: m, app: app}, nil
}

// meshConfig maps the spec for the mesh, with the engine's logger, metrics
// and the local CA's folder.
func (e *Engine) meshConfig(app *spec.App) mesh.Config {
	cfg := mesh.ConfigFromSpec(app)
	cfg.Logger = e.log.With("component", "mesh")
	cfg.Metrics = e.metrics.reg
	cfg.CADir = CADir(app)
	// The replicas' cgroups say which workload a process belongs to: a
	// replica cannot use another's proxy listener.
	cfg.Workloads = func() map[int]string { return e.cgroups.Members() }
	cfg.ExtraDurationBuckets = slo.LatencyBuckets(app)
	cfg.IdentityCallers = identityCallers(app)
	if e.tracing != nil {
		cfg.Tracer = e.tracing.meshTracer()
	}
	return cfg
}

// identityCallers are the mesh callers trusted with identity headers: the
// gateway, which sets them from what its authorizers verified and calls
// services through the mesh. A workload of the same name would share its
// listeners, so then nobody is trusted.
func identityCallers(app *spec.App) []string {
	_, svc := app.Services[gatewayCaller]
	_, fn := app.Functions[gatewayCaller]
	if app.Gateway == nil || svc || fn {
		return nil
	}
	return []string{gatewayCaller}
}

// CADir is where nubo up keeps its local certificate authority.
func CADir(app *spec.App) string { return filepath.Join(app.StatePath(), "ca") }

func (c *meshComponent) Name() string { return "mesh" }

func (c *meshComponent) Start(ctx context.Context) error {
	if err := c.m.Start(ctx); err != nil {
		return err
	}
	app, _ := c.e.current()
	if h, s := c.m.IngressAddrs(); h != "" || s != "" {
		if h != "" {
			c.e.out.event("", "ingress on http://"+h)
		}
		if s != "" {
			c.e.out.event("", fmt.Sprintf("ingress on https://%s (certificates from the local CA: %s)", s, mesh.CACertPath(CADir(app))))
		}
	}
	return nil
}

func (c *meshComponent) Stop(ctx context.Context) error { return c.m.Stop(ctx) }

// Prepare compiles the new routes, policies and ingress; Commit swaps them
// in, as mesh.Update does.
func (c *meshComponent) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	old := c.app
	if reflect.DeepEqual(mesh.ConfigFromSpec(old), mesh.ConfigFromSpec(next)) &&
		slices.Equal(identityCallers(old), identityCallers(next)) {
		return nil, nil
	}
	cfg := c.e.meshConfig(next)
	if err := mesh.Check(cfg); err != nil {
		return nil, err
	}
	return changeFuncs{commit: func(context.Context) error {
		if err := c.m.Update(cfg); err != nil {
			return err
		}
		c.app = next
		return nil
	}}, nil
}

// changeFuncs is a host.Change made of functions.
type changeFuncs struct {
	commit func(context.Context) error
	abort  func(context.Context)
}

func (f changeFuncs) Commit(ctx context.Context) error { return f.commit(ctx) }

func (f changeFuncs) Abort(ctx context.Context) {
	if f.abort != nil {
		f.abort(ctx)
	}
}
