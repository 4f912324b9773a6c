package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/nubo-dev/nubo/internal/apitype"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/host"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/tracing"
	"github.com/nubo-dev/nubo/internal/tracing/hopspans"
)

// tracingComponent is the trace store, the OTLP/HTTP receiver on
// local.otlp (traces into the store, logs into the log records, metrics
// into the TSDB) and the
// export of tracing.export.otlp. The mesh and the gateway record their
// spans into its tracer from the moment they are built; what they record
// before Start waits in the tracer's bounded queue.
type tracingComponent struct {
	e   *Engine
	t   *tracing.Tracer
	app *spec.App // what a reload compares with
	// listen is where the receiver listens (local.otlp, or the engine's
	// override); bound is the address it got, empty when it does not run.
	listen string

	mu     sync.Mutex // guards the fields below
	bound  string
	srv    *http.Server
	cancel context.CancelFunc
	runs   sync.WaitGroup
	expRun context.CancelFunc
}

func newTracingComponent(e *Engine, app *spec.App) (*tracingComponent, error) {
	c := &tracingComponent{e: e, t: tracing.NewTracer(e.log.With("component", "tracing")), app: app, listen: app.Local.OTLP}
	if e.opts.OTLPAddr != "" {
		c.listen = e.opts.OTLPAddr
	}
	if _, err := exporterFor(app, e); err != nil {
		return nil, err
	}
	c.configure(app)
	return c, nil
}

// exporterFor builds the exporter tracing.export.otlp asks for, or nil.
func exporterFor(app *spec.App, e *Engine) (*tracing.Exporter, error) {
	tr := app.Observability.Tracing
	if tr.Export.OTLP == "" {
		return nil, nil
	}
	return tracing.NewExporter(tr.Export.OTLP, tr.Headers, e.log.With("component", "tracing"))
}

// configure sets the sample rate and baggage of app.
func (c *tracingComponent) configure(app *spec.App) {
	tr := app.Observability.Tracing
	rate := 1.0
	if tr.SampleRate != nil {
		rate = *tr.SampleRate
	}
	c.t.SetSampleRate(rate)
	keys := make([]string, 0, len(tr.Baggage))
	for k := range tr.Baggage {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]tracing.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, tracing.String(k, tr.Baggage[k]))
	}
	c.t.SetBaggage(attrs)
}

func (c *tracingComponent) Name() string { return "tracing" }

// Start opens the store under the state folder, then listens for OTLP. A
// receiver that cannot listen (another collector on 4318) is said in the
// output and nubo goes on with its own spans.
func (c *tracingComponent) Start(ctx context.Context) error {
	app, _ := c.e.current()
	st, err := tracing.OpenStore(tracing.StoreConfig{Dir: filepath.Join(app.StatePath(), "traces")})
	if err != nil {
		return err
	}
	c.t.SetStore(st)
	runCtx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancel = cancel
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		c.t.Run(runCtx)
	}()
	exp, _ := exporterFor(app, c.e) // checked by newTracingComponent
	c.startExporter(exp)
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		c.e.out.event("", fmt.Sprintf("OTLP receiver off: %v (nubo keeps its own spans; services' OpenTelemetry SDKs send to %s)", err, c.listen))
		return nil
	}
	rc := &tracing.Receiver{Spans: c.t.Receive, Logs: c.e.out.otlpLogs, Logger: c.e.log}
	if c.e.obs != nil {
		rc.Metrics = c.e.obs.metrics.WriteOTLP // into the TSDB, as Prometheus translates them
	}
	c.srv = &http.Server{Handler: rc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	c.bound = ln.Addr().String()
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.e.log.Error("tracing: OTLP receiver", "err", err)
		}
	}()
	c.e.out.event("", "OTLP receiver on http://"+c.bound)
	return nil
}

// startExporter runs exp (replacing the running one); c.mu is held.
func (c *tracingComponent) startExporter(exp *tracing.Exporter) {
	if c.expRun != nil {
		c.expRun() // the old one sends what it has queued and ends
		c.expRun = nil
	}
	c.t.SetExporter(exp)
	if exp == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.expRun = cancel
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		exp.Run(ctx)
	}()
}

// Stop stops the receiver, stores what is queued, sends what the exporter
// holds (bounded) and closes the store.
func (c *tracingComponent) Stop(ctx context.Context) error {
	c.mu.Lock()
	var errs []error
	if c.srv != nil {
		errs = append(errs, c.srv.Shutdown(ctx))
		c.srv, c.bound = nil, ""
	}
	if c.cancel != nil {
		c.cancel()
	}
	if c.expRun != nil {
		c.expRun()
		c.expRun = nil
	}
	c.mu.Unlock()
	c.runs.Wait()
	if st := c.t.Store(); st != nil {
		c.t.SetStore(nil)
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Prepare checks a new export endpoint; Commit applies the sample rate,
// baggage and export. The receiver's address needs a restart.
func (c *tracingComponent) Prepare(_ context.Context, next *spec.App) (host.Change, error) {
	if reflect.DeepEqual(c.app.Observability.Tracing, next.Observability.Tracing) {
		return nil, nil
	}
	exp, err := exporterFor(next, c.e)
	if err != nil {
		return nil, err
	}
	return changeFuncs{commit: func(context.Context) error {
		c.configure(next)
		c.mu.Lock()
		if c.cancel != nil { // running
			c.startExporter(exp)
		}
		c.mu.Unlock()
		c.app = next
		return nil
	}}, nil
}

// routes serves Jaeger's query API on the console, and a trace's log
// records.
func (c *tracingComponent) routes() []console.Route {
	return []console.Route{
		{Pattern: "/jaeger/api/", Handler: tracing.QueryHandler(c.t, "/jaeger")},
		{Pattern: "GET /admin/v1/traces/{id}/logs", Handler: tracing.LogsHandler(c.t, c.findLogs)},
	}
}

// findLogs searches the log records on disk for a trace's.
func (c *tracingComponent) findLogs(traceID string, since, until time.Time, limit int) ([]apitype.LogLine, error) {
	d := c.e.out.disk.Load()
	if d == nil {
		return nil, errors.New("the log records on disk are not open")
	}
	return d.Find(logs.Search{TraceID: traceID, Since: since, Until: until, Limit: limit})
}

// env points a workload's OpenTelemetry SDK at the receiver, as every SDK
// reads it (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES).
func (c *tracingComponent) env(app *spec.App, workload string) []string {
	c.mu.Lock()
	addr := c.bound
	c.mu.Unlock()
	if addr == "" {
		addr = c.listen
	}
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + addr,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=" + workload,
		"OTEL_RESOURCE_ATTRIBUTES=service.namespace=" + app.Name + ",deployment.environment.name=local",
	}
}

// meshTracer records the mesh's hops.
func (c *tracingComponent) meshTracer() mesh.Tracer { return hopspans.MeshTracer(c.t) }

// gatewayTracer records the gateway's requests.
func (c *tracingComponent) gatewayTracer() gateway.Tracer { return hopspans.GatewayTracer(c.t) }

// addr is where the receiver listens; empty when it does not.
func (c *tracingComponent) addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound
}

// status is the store's and the exporter's counts; nil before start.
func (c *tracingComponent) status(app *spec.App) *apitype.TracesStatus {
	st := c.t.Store()
	if st == nil {
		return nil
	}
	s := st.Stats()
	out := &apitype.TracesStatus{Spans: s.Spans, Traces: s.Traces, DiskBytes: s.Bytes, Dropped: c.t.Dropped()}
	if exp := c.t.Exporter(); exp != nil {
		x := exp.Stats()
		out.Export = &apitype.TraceExportStatus{Endpoint: app.Observability.Tracing.Export.OTLP, Sent: x.Sent, Dropped: x.Dropped, Failed: x.Failed, Queued: x.Queued}
	}
	return out
}
