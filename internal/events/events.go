// Package events is nubo's event dispatcher: queues, topics, the event bus,
// rules, schedules and dead letters, on NATS JetStream (package broker),
// with every event a CloudEvent 1.0.
//
// # Overview
//
// Events come in through Publish (and the platform API under /v1/, which
// Handler serves): the dispatcher fills id, time, specversion and source
// when absent, validates data against the JSON Schema of its type
// (events.TYPE.schema), and stores the event in the queue's, topic's or
// bus's stream before it answers. What is acknowledged is on disk.
//
//   - A queue is a work-queue stream with one durable consumer that every
//     worker shares: HTTP workers pull (Receive, then Ack or Nack by id);
//     visibility is the consumer's ack wait; retention the stream's max age;
//     fifo hands out one event per subject at a time, in order; after
//     deadLetter.maxReceive deliveries an event moves to the dead-letter
//     queue with headers naming its origin, attempts and last error.
//   - A route is a durable consumer that delivers to a target: each topic
//     subscription, each rule (on the bus) and each schedule has one.
//     Delivery is an HTTP POST of the CloudEvent in binary mode (a JSON
//     array in structured mode with batchSize > 1), or a publish into a
//     queue or topic; 2xx acknowledges, anything else retries with
//     exponential backoff and, after Retry.Attempts deliveries, moves the
//     event to the app's dead-letter stream.
//   - Rules filter with the CloudEvents subscription dialects (exact,
//     prefix, suffix, all, any, not, sql) and jq, and transform data with jq.
//   - Schedules fire nubo.schedule events on cron expressions while nubo
//     runs; ticks missed while it was down are not replayed.
//
// names.go lists the streams and subjects. Every delivery is at least
// once: an event is acknowledged to JetStream only after its target took
// it, so a crash redelivers instead of losing.
//
// The filter dialects and dead-letter handling are written here because no
// library does them over JetStream; CloudEvents parsing and CESQL come from
// the CloudEvents SDK, jq from gojq, cron from robfig/cron.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Defaults of Config.
const (
	DefaultDeliveryTimeout = 30 * time.Second
	DefaultConcurrency     = 16
	DefaultBatchWait       = 100 * time.Millisecond
)

// Deliverer reaches the targets that the engine owns. The dispatcher
// calls it for every delivery, so that a target's address may change
// (replicas, the mesh) without a restart.
type Deliverer interface {
	// ServiceURL returns the base URL (scheme://host:port) that reaches
	// service name; the target's path is appended to it.
	ServiceURL(name string) (string, error)
}

// FunctionDeliverer is a Deliverer that also reaches functions. With one,
// the dispatcher also runs the functions' triggers (see triggers.go);
// without one, rules, subscriptions and schedules whose target is
// function:NAME are not run and are listed by Skipped.
type FunctionDeliverer interface {
	Deliverer
	// DeliverToFunction invokes function name with evs (one event, or a
	// batch). A nil error means the function took them (or its own retry
	// dead-lettered them: they are safe); an error makes the route retry
	// and, in the end, dead-letter them.
	DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error
}

// Retry is how routes retry a failed delivery.
type Retry struct {
	// Attempts is the deliveries before an event is dead-lettered. Default 5.
	Attempts int
	// Backoff is the delay before the first retry, doubled at each one.
	// Default 1s.
	Backoff time.Duration
	// MaxBackoff caps the delay. Default 1m.
	MaxBackoff time.Duration
}

// delay is the wait after the attempt-th delivery failed.
func (r Retry) delay(attempt int) time.Duration {
	d := r.Backoff
	for i := 1; i < attempt && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

// Config configures a Dispatcher.
type Config struct {
	// App is the validated spec: its events, queues, topics, rules and
	// schedules. Required.
	App *spec.App
	// Broker is the started broker. Required.
	Broker *broker.Broker
	// Deliverer reaches service: (and function:) targets; nil leaves
	// service targets failing, and dead-lettered, with a clear error.
	Deliverer Deliverer
	// Logger receives the dispatcher's diagnostics; nil discards them.
	Logger *slog.Logger
	// Metrics registers the dispatcher's series; nil keeps them on a
	// registry of their own.
	Metrics prometheus.Registerer
	// Client makes HTTP deliveries; nil means a client with DeliveryTimeout.
	Client *http.Client
	// DeliveryTimeout bounds one HTTP delivery. Default 30s.
	DeliveryTimeout time.Duration
	// Retry is the retry policy of routes.
	Retry Retry
	// Concurrency is the deliveries in flight per route. Default 16.
	Concurrency int
	// BatchWait is how long a batch (batchSize > 1) waits to fill. Default 100ms.
	BatchWait time.Duration
	// Tracer records a span per publish through the API; nil makes none.
	Tracer Tracer
}

// Skipped is a part of the spec the dispatcher does not run, and why.
type Skipped struct {
	// What names it: "rule welcome-email", "topic t subscription 0".
	What string `json:"what"`
	// Reason says why.
	Reason string `json:"reason"`
}

// Dispatcher runs an app's queues, topics, bus, rules and schedules.
// Create it with New, then Start; Stop ends it. Its methods are safe for
// concurrent use.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	app     *spec.App
	n       names
	schemas map[string]*jsonschema.Schema
	queues  map[string]*queue
	routes  []*route
	skipped []Skipped
	metrics *metrics
	client  *http.Client
	api     http.Handler
	// functions runs the functions' queue triggers, when the Deliverer
	// reaches functions.
	functions     FunctionDeliverer
	queueTriggers []queueTrigger

	mu            sync.Mutex // guards the fields below
	js            jetstream.JetStream
	nc            *nats.Conn
	started       bool
	stopped       bool
	runCancel     context.CancelFunc // stops fetching
	deliverCancel context.CancelFunc // abandons deliveries in flight
	cron          *cron.Cron
	wg            sync.WaitGroup
}

// New compiles what the spec says (schemas, filters, transforms, cron
// expressions, targets) and returns a Dispatcher that has started nothing.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.App == nil {
		return nil, errors.New("events: no spec")
	}
	if cfg.Broker == nil {
		return nil, errors.New("events: no broker")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fd, runsFunctions := cfg.Deliverer.(FunctionDeliverer)
	if runsFunctions {
		cfg.App = withFunctionTriggers(cfg.App)
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry.Attempts = 5
	}
	if cfg.Retry.Backoff <= 0 {
		cfg.Retry.Backoff = time.Second
	}
	if cfg.Retry.MaxBackoff <= 0 {
		cfg.Retry.MaxBackoff = time.Minute
	}
	if cfg.Retry.MaxBackoff < cfg.Retry.Backoff {
		cfg.Retry.MaxBackoff = cfg.Retry.Backoff
	}
	client := cfg.Client
	if client == nil {
		// Keep a connection per delivery in flight: the default two idle
		// connections per host would open and close one for most
		// deliveries to a busy service.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 1024
		tr.MaxIdleConnsPerHost = 256
		client = &http.Client{Timeout: cfg.DeliveryTimeout, Transport: tr}
	}
	d := &Dispatcher{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "events"),
		app:     cfg.App,
		n:       names{app: cfg.App.Name},
		schemas: map[string]*jsonschema.Schema{},
		queues:  map[string]*queue{},
		client:  client,
	}
	if runsFunctions {
		d.functions = fd
		d.queueTriggers = queueTriggers(cfg.App)
	}
	for _, typ := range sortedKeys(cfg.App.Events) {
		ev := cfg.App.Events[typ]
		if ev == nil || ev.Schema == nil {
			continue
		}
		sch, err := spec.CompileSchema("events/"+typ, ev.Schema)
		if err != nil {
			return nil, fmt.Errorf("events: event %q: %w", typ, err)
		}
		d.schemas[typ] = sch
	}
	for _, name := range sortedKeys(cfg.App.Queues) {
		d.queues[name] = newQueue(d, name, cfg.App.Queues[name])
	}
	for name, q := range d.queues {
		if dl := q.spec.DeadLetter; dl != nil {
			if q.dlq = d.queues[dl.Queue]; q.dlq == nil {
				return nil, fmt.Errorf("events: queue %q: deadLetter: no queue %q", name, dl.Queue)
			}
		}
	}
	if err := d.buildRoutes(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, d)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	d.api = d.routesAPI()
	return d, nil
}

// Skipped lists the rules, subscriptions and schedules that are not run,
// each with its reason, so that the engine can say so at start-up.
func (d *Dispatcher) Skipped() []Skipped { return append([]Skipped(nil), d.skipped...) }

// Start creates or updates the streams and consumers the spec needs,
// starts the routes and schedules, and returns once they run. The broker
// must have started.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopped:
		return errors.New("events: start: stopped")
	case d.started:
		return errors.New("events: start: already started")
	}
	js, nc := d.cfg.Broker.JetStream(), d.cfg.Broker.Conn()
	if js == nil || nc == nil {
		return errors.New("events: start: the broker has not started")
	}
	d.js, d.nc = js, nc
	if err := d.setUp(ctx); err != nil {
		d.js, d.nc = nil, nil
		return err
	}
	if err := d.metrics.registerDepth(); err != nil {
		d.js, d.nc = nil, nil
		return err
	}
	runCtx, runCancel := context.WithCancel(context.Background())
	deliverCtx, deliverCancel := context.WithCancel(context.Background())
	d.runCancel, d.deliverCancel = runCancel, deliverCancel
	for _, q := range d.queues {
		if q.fifo {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				q.sweep(runCtx)
			}()
		}
	}
	for _, t := range d.queueTriggers {
		for range t.workers {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.runQueueTrigger(runCtx, deliverCtx, d.functions, t)
			}()
		}
	}
	for _, r := range d.routes {
		for _, src := range r.sources {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				r.run(runCtx, deliverCtx, src)
			}()
		}
	}
	c, err := d.startSchedules()
	if err != nil {
		runCancel()
		deliverCancel()
		d.wg.Wait()
		d.metrics.unregisterDepth()
		return err
	}
	d.cron = c
	d.started = true
	d.log.Debug("events started", "queues", len(d.queues), "routes", len(d.routes))
	return nil
}

// Stop stops the schedules and the routes. Deliveries in flight may finish
// until ctx is done; then they are abandoned, and JetStream delivers their
// events again after the next start. It is nil-safe and idempotent.
func (d *Dispatcher) Stop(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	started := d.started
	c, runCancel, deliverCancel := d.cron, d.runCancel, d.deliverCancel
	d.mu.Unlock()
	if !started {
		return nil
	}
	if c != nil {
		<-c.Stop().Done()
	}
	runCancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("events: stop: deliveries still in flight abandoned: %w", ctx.Err())
		deliverCancel()
		<-done
	}
	deliverCancel()
	d.metrics.unregisterDepth()
	return err
}

// jetStream returns the handles Start set, or an error before Start.
func (d *Dispatcher) jetStream() (jetstream.JetStream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.js == nil {
		return nil, ErrNotStarted
	}
	return d.js, nil
}

// ErrNotStarted is returned by the methods that need a started dispatcher.
var ErrNotStarted = errors.New("events: not started")

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
