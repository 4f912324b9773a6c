package engine

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// The engine is the console's Backend.
var _ console.Backend = (*Engine)(nil)

func (e *Engine) startAdmin(ctx context.Context, addr string, routes []console.Route) (*console.Server, error) {
	e.metrics.reg.MustRegister(statusCollector{statuses: e.supervisorStatuses})
	srv, err := console.New(console.Config{
		Addr:    addr,
		Backend: e,
		Logs:    e.logs,
		Metrics: e.metrics.handler(),
		Logger:  e.log,
		Routes:  routes,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}

// Status implements console.Backend.
func (e *Engine) Status() console.Status {
	e.mu.Lock()
	app := e.app
	runs := make([]*serviceRun, 0, len(e.services))
	for _, r := range e.services {
		runs = append(runs, r)
	}
	st := console.Status{
		App: app.Name, Namespace: app.Namespace, Spec: app.File, PID: os.Getpid(), Started: e.started,
		Skipped: append(skippedSections(app), functionsSkipped(e.fns)...),
	}
	if e.admin != nil {
		st.Console = e.admin.Addr()
	}
	e.mu.Unlock()
	order := map[string]int{}
	for i, n := range sortedServiceNames(app) {
		order[n] = i
	}
	sort.Slice(runs, func(i, j int) bool { return order[runs[i].name] < order[runs[j].name] })
	e.mu.Lock()
	fns, d := e.fns, e.events
	e.mu.Unlock()
	if fns != nil {
		st.Functions = fns.Status()
	}
	if d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if qs, err := d.Queues(ctx); err == nil {
			st.Queues = qs
		}
		cancel()
	}
	for _, r := range runs {
		ss := console.ServiceStatus{ServiceStatus: r.sup.Status(), Kind: console.KindService}
		if r.auto != nil {
			p := r.auto.Policy()
			sc := &console.ScalingStatus{Min: p.MinReplicas, Max: p.MaxReplicas}
			if d, ok := r.auto.LastDecision(); ok {
				sc.LastDecision, sc.LastDecisionTime = d.Reason, d.Time
			}
			ss.Scaling = sc
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// RestartService implements console.Backend: the replicas are replaced one
// by one, each new one ready before an old one stops.
func (e *Engine) RestartService(ctx context.Context, name string) error {
	e.mu.Lock()
	r, ok := e.services[name]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("service %q: %w", name, console.ErrNotFound)
	}
	e.out.event(name, "restarting "+name)
	go func() {
		// The roll outlives the request; it ends with the service's run.
		if err := r.sup.RestartAll(context.WithoutCancel(ctx)); err != nil {
			e.out.event(name, fmt.Sprintf("restart of %s failed: %v", name, err))
		}
	}()
	return nil
}

func (e *Engine) supervisorStatuses() []supervisor.ServiceStatus {
	e.mu.Lock()
	sups := make([]*supervisor.Supervisor, 0, len(e.services))
	for _, r := range e.services {
		sups = append(sups, r.sup)
	}
	e.mu.Unlock()
	out := make([]supervisor.ServiceStatus, len(sups))
	for i, s := range sups {
		out[i] = s.Status()
	}
	return out
}

var _ prometheus.Collector = statusCollector{}
