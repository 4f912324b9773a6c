package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// consoleComponent is the console's HTTP server: the admin API, the
// platform API and the Prometheus-compatible API on local.console. Its
// routes are fixed when it is built; the components behind them swap their
// handlers on reload.
type consoleComponent struct {
	e    *Engine
	addr string
	srv  *console.Server
	// token is this run's console token (console/token.go), written to
	// the state directory once the engine holds it.
	token string
}

func (c *consoleComponent) build(routes []console.Route) error {
	c.e.metrics.reg.MustRegister(statusCollector{statuses: c.e.supervisorStatuses})
	tok, err := console.NewToken()
	if err != nil {
		return err
	}
	c.token = tok
	srv, err := console.New(console.Config{
		Token: tok,
		App: func() *spec.App {
			app, _ := c.e.current()
			return app
		},
		Addr:    c.addr,
		Backend: c.e,
		Logs:    c.e.logs,
		History: logHistory{c.e.out},
		Audit:   c.e.audit,
		Metrics: c.e.metrics.handler(),
		Logger:  c.e.log,
		Routes:  routes,
	})
	if err != nil {
		return err
	}
	c.srv = srv
	return nil
}

func (c *consoleComponent) Name() string { return "console" }

func (c *consoleComponent) Start(ctx context.Context) error {
	e := c.e
	app, _ := e.current()
	// After the state component: this engine holds the state directory,
	// so the file is its own and not another running engine's.
	if err := console.WriteToken(app.StatePath(), c.token); err != nil {
		return err
	}
	if err := c.srv.Start(ctx); err != nil {
		return err
	}
	// The lock records the address the console really got (port 0 in tests).
	e.lock.update(LockInfo{PID: os.Getpid(), Console: c.srv.Addr(), Spec: app.File, Started: e.started})
	e.out.event("", fmt.Sprintf("console and admin API on http://%s", c.srv.Addr()))
	return nil
}

func (c *consoleComponent) Stop(ctx context.Context) error {
	err := c.srv.Stop(ctx)
	app, _ := c.e.current()
	_ = os.Remove(filepath.Join(app.StatePath(), console.TokenFile))
	return err
}

// ConsoleToken is the token state-changing requests to the console carry
// (console.TokenHeader): for tests and tools in the engine's process.
func (e *Engine) ConsoleToken() string {
	if e.admin == nil {
		return ""
	}
	return e.admin.token
}

// logHistory searches the records on disk of the running engine.
type logHistory struct{ out *output }

func (h logHistory) Find(s logs.Search) ([]logs.Line, error) {
	d := h.out.disk.Load()
	if d == nil {
		return nil, nil
	}
	return d.Find(s)
}

// Addr is where the console listens; empty before it does.
func (c *consoleComponent) Addr() string {
	if c == nil || c.srv == nil {
		return ""
	}
	return c.srv.Addr()
}

// The engine is the console's Backend.
var _ console.Backend = (*Engine)(nil)

// Status implements console.Backend.
func (e *Engine) Status() console.Status {
	app, _ := e.current()
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	st := console.Status{
		App: app.Name, Namespace: app.Namespace, Spec: app.File, PID: os.Getpid(), Started: started,
		Console:  e.admin.Addr(),
		Skipped:  append(skippedSections(app), e.fns.skipped()...),
		Services: e.services.status(),
	}
	st.Addresses = e.addresses()
	st.StateDir = app.StatePath()
	st.Functions = e.fns.status()
	st.Databases = e.dbs.status()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st.Queues = e.events.queues(ctx)
	st.EventStore = e.eventStore.status(ctx)
	if e.broker != nil {
		st.Broker = e.broker.health()
	}
	st.Traces = e.tracing.status(app)
	return st
}

// addresses are every address the engine serves now.
func (e *Engine) addresses() map[string]string {
	out := map[string]string{"console": e.admin.Addr()}
	if u := e.broker.clientURL(); u != "" {
		out["broker"] = u
	}
	if a := e.tracing.addr(); a != "" {
		out["otlp"] = "http://" + a
	}
	if e.gateway != nil {
		out["gateway"] = "http://" + e.gateway.g.Addr()
	}
	if h, s := e.mesh.m.IngressAddrs(); h != "" || s != "" {
		if h != "" {
			out["ingress"] = "http://" + h
		}
		if s != "" {
			out["ingress-tls"] = "https://" + s
		}
	}
	return out
}

// ScaleService implements console.Scaler.
func (e *Engine) ScaleService(ctx context.Context, name string, replicas int) error {
	return e.services.scale(ctx, name, replicas)
}

// RestartService implements console.Backend: the replicas are replaced one
// by one, each new one ready before an old one stops.
func (e *Engine) RestartService(ctx context.Context, name string) error {
	return e.services.restart(ctx, name)
}

func (e *Engine) supervisorStatuses() []supervisor.ServiceStatus {
	if e.services == nil {
		return nil
	}
	return e.services.supervisorStatuses()
}

var _ prometheus.Collector = statusCollector{}

// ServiceURL returns the URL through which caller (a principal of the
// mesh's policies) reaches a service or a mesh route, as a process of the
// system does through its proxy: for tests and tools outside the system.
func (e *Engine) ServiceURL(caller, service string) (string, error) {
	if e.mesh == nil {
		return "", errors.New("engine: not started")
	}
	return e.mesh.m.ServiceURL(caller, service)
}
