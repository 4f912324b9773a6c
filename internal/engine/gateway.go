package engine

import (
	"context"
	"reflect"

	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// gatewayCaller is the gateway's principal in the mesh, as the nubo-gateway
// Deployment's is in Kubernetes.
const gatewayCaller = "gateway"

// gatewayComponent is the API gateway on local.gateway; the ingress hands
// it its `to: gateway` paths. A gateway added to or removed from the spec
// needs a restart of nubo up.
type gatewayComponent struct {
	e    *Engine
	g    *gateway.Gateway
	mesh *mesh.Mesh
	// app is the spec the gateway runs: what a reload compares with.
	app *spec.App
}

// newGatewayComponent builds the gateway of app, or returns nil when the
// spec has none.
func newGatewayComponent(e *Engine, app *spec.App, vals secrets.Values, env *envSource, m *mesh.Mesh, fns gateway.Functions) (*gatewayComponent, error) {
	if app.Gateway == nil {
		return nil, nil
	}
	g, err := gateway.New(gateway.Config{
		App: app,
		Services: gateway.ServicesFunc(func(name string) (string, error) {
			return m.ServiceURL(gatewayCaller, name)
		}),
		// Service integrations enter the mesh in process, not over a
		// loopback connection to the URLs above.
		ServiceTransport: m.Transport(gatewayCaller),
		Functions:        fns,
		// The spec being compiled: a reload's Check and Update see the new
		// spec's secrets and config, the running gateway the running one's.
		Secrets: func(name, key string) (string, bool) {
			_, vals := e.compiling()
			return secretLookup(vals).Get(name, key)
		},
		Resolve: func(expr string) (string, error) {
			app, vals := e.compiling()
			return env.resolver(app, vals, "", "").lookup(expr)
		},
		Logger:          e.log.With("component", "gateway"),
		Metrics:         e.metrics.reg,
		DurationBuckets: slo.LatencyBuckets(app),
		Tracer:          e.tracing.gatewayTracer(),
	})
	if err != nil {
		return nil, err // gateway.New names the gateway
	}
	return &gatewayComponent{e: e, g: g, mesh: m, app: app}, nil
}

func (c *gatewayComponent) Name() string { return "gateway" }

func (c *gatewayComponent) Start(ctx context.Context) error {
	if err := c.g.Start(ctx); err != nil {
		return err
	}
	c.mesh.SetGateway(c.g.Handler())
	c.e.out.event("", "API gateway on http://"+c.g.Addr())
	return nil
}

func (c *gatewayComponent) Stop(ctx context.Context) error {
	c.mesh.SetGateway(nil)
	return c.g.Stop(ctx)
}

// Prepare compiles the new stages, routes and authorizers; Commit swaps
// them in.
func (c *gatewayComponent) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	if next.Gateway == nil {
		c.e.out.event("", "the gateway was removed from the spec: restart nubo up to stop it")
		return nil, nil
	}
	if reflect.DeepEqual(c.app.Gateway, next.Gateway) {
		return nil, nil
	}
	if err := c.g.Check(next); err != nil {
		return nil, err
	}
	return changeFuncs{commit: func(context.Context) error {
		if err := c.g.Update(next); err != nil {
			return err
		}
		c.app = next
		return nil
	}}, nil
}
