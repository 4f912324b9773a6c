package engine

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/console"
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
}

func (c *consoleComponent) build(routes []console.Route) error {
	c.e.metrics.reg.MustRegister(statusCollector{statuses: c.e.supervisorStatuses})
	srv, err := console.New(console.Config{
		Addr:    c.addr,
		Backend: c.e,
		Logs:    c.e.logs,
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
	if err := c.srv.Start(ctx); err != nil {
		return err
	}
	e := c.e
	app, _ := e.current()
	// The lock records the address the console really got (port 0 in tests).
	e.lock.update(LockInfo{PID: os.Getpid(), Console: c.srv.Addr(), Spec: app.File, Started: e.started})
	e.out.event("", fmt.Sprintf("console and admin API on http://%s", c.srv.Addr()))
	return nil
}

func (c *consoleComponent) Stop(ctx context.Context) error { return c.srv.Stop(ctx) }

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
	st.Functions = e.fns.status()
	st.Databases = e.dbs.status()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st.Queues = e.events.queues(ctx)
	return st
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
