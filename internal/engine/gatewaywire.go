package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/slo"
	"github.com/nubo-dev/nubo/internal/spec"
)

// gatewayCaller is the gateway's principal in the mesh, as the nubo-gateway
// Deployment's is in Kubernetes.
const gatewayCaller = "gateway"

// startGateway runs the API gateway on local.gateway when the spec has one,
// and hands it the ingress's `to: gateway` paths.
func (e *Engine) startGateway(ctx context.Context, app *spec.App) (*gateway.Gateway, error) {
	if app.Gateway == nil {
		return nil, nil
	}
	e.mu.Lock()
	vals := e.vals
	e.mu.Unlock()
	r := &envResolver{app: app, getenv: e.opts.Getenv, secrets: secretLookup(vals)}
	g, err := gateway.New(gateway.Config{
		App: app,
		Services: gateway.ServicesFunc(func(name string) (string, error) {
			m := e.meshOf()
			if m == nil {
				return "", errors.New("the mesh is not running")
			}
			return m.ServiceURL(gatewayCaller, name)
		}),
		Functions:       gatewayFunctions{e},
		Secrets:         secretLookup(vals).Get,
		Resolve:         r.lookup,
		Logger:          e.log.With("component", "gateway"),
		Metrics:         e.metrics.reg,
		DurationBuckets: slo.LatencyBuckets(app),
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := g.Start(ctx); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if m := e.meshOf(); m != nil {
		m.SetGateway(g.Handler())
	}
	e.out.event("", "API gateway on http://"+g.Addr())
	return g, nil
}

// gatewayFunctions invokes the functions component running now (a reload
// may replace it).
type gatewayFunctions struct{ e *Engine }

func (g gatewayFunctions) Invoke(ctx context.Context, name string, ev event.Event) (functions.Result, error) {
	g.e.mu.Lock()
	fns := g.e.fns
	g.e.mu.Unlock()
	if fns == nil {
		return functions.Result{}, errors.New("functions are not running")
	}
	return fns.Invoke(ctx, name, ev)
}

// reloadGateway applies a changed spec to the running gateway; one added to
// the spec needs a restart of nubo up.
func (e *Engine) reloadGateway(next *spec.App) {
	e.mu.Lock()
	g := e.gateway
	e.mu.Unlock()
	switch {
	case g == nil && next.Gateway != nil:
		e.out.event("", "a gateway was added: restart nubo up to serve it")
	case g != nil:
		if err := g.Update(next); err != nil {
			e.out.event("", fmt.Sprintf("gateway not reloaded, the running one is kept: %v", err))
		}
	}
}
