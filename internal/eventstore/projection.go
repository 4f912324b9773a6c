package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Projection states.
const (
	stateRunning    = "running"
	stateFailing    = "failing"
	stateRebuilding = "rebuilding"
	stateStopped    = "stopped"
)

// Backoff of a failing handler: doubling from retryMin to retryMax. The
// batch is retried until it succeeds; nothing after it is delivered.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 30 * time.Second
)

// batchFill is how long a projection waits for more events to fill a
// batch once it has one: enough to take what is already buffered, short
// enough not to add latency.
const batchFill = time.Millisecond

// projections runs the spec's projections, each in its own goroutine.
type projections struct {
	s     *Store
	list  []*projection // sorted by name
	kv    jetstream.KeyValue
	group sync.WaitGroup
}

// projection feeds the events its query selects to its handler, in
// order, batch by batch, and stores its position in the checkpoint bucket
// every Checkpoint events and when it stops. Delivery is at least once: a
// restart resumes after the last checkpoint, so a handler sees again the
// events after it.
type projection struct {
	ps   *projections
	name string
	spec *spec.Projection
	log  *slog.Logger
	// sub is the running subscription; what it has read counts towards
	// the lag when no batch is in flight.
	sub atomic.Pointer[Subscription]

	mu         sync.Mutex // guards the fields below
	busy       bool       // a batch is being delivered
	position   uint64     // the last position the handler took
	checkpoint uint64     // the last position stored
	seen       uint64     // the last position read, matching or not
	state      string
	lastErr    string
	failures   int
	cancelRun  context.CancelFunc
	rebuild    bool // asked for; taken by run
	rebuildTo  uint64
}

func newProjections(s *Store, specs map[string]*spec.Projection) (*projections, error) {
	ps := &projections{s: s}
	for name, p := range specs {
		if !p.Handler.IsSet() {
			return nil, fmt.Errorf("eventstore: projection %q: no handler", name)
		}
		if p.Handler.Kind != spec.TargetFunction && p.Handler.Kind != spec.TargetService {
			return nil, fmt.Errorf("eventstore: projection %q: handler %s: want function:NAME or service:NAME/path", name, p.Handler)
		}
		if s.cfg.Handlers == nil {
			return nil, fmt.Errorf("eventstore: projection %q: no way to reach handlers", name)
		}
		ps.list = append(ps.list, &projection{ps: ps, name: name, spec: p, log: s.log.With("projection", name), state: stateStopped})
	}
	slices.SortFunc(ps.list, func(a, b *projection) int { return cmpString(a.name, b.name) })
	return ps, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// start opens the checkpoint bucket and starts every projection's loop.
func (ps *projections) start(ctx context.Context) error {
	kv, err := ps.s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: ps.s.n.checkpoints(), History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("eventstore: checkpoint bucket %s: %w", ps.s.n.checkpoints(), err)
	}
	ps.kv = kv
	for _, p := range ps.list {
		cp, err := p.loadCheckpoint(ctx)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.position, p.checkpoint, p.seen, p.state = cp, cp, cp, stateRunning
		p.mu.Unlock()
	}
	ps.s.metrics.projections.set(ps)
	for _, p := range ps.list {
		ps.group.Go(func() { p.run(ps.s.ctx) })
	}
	return nil
}

// stop waits for the loops, which end with the store's context and
// checkpoint where they are.
func (ps *projections) stop(ctx context.Context) error {
	ps.s.cancel()
	done := make(chan struct{})
	go func() {
		ps.group.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("eventstore: projections did not stop: %w", ctx.Err())
	}
}

func (ps *projections) get(name string) *projection {
	for _, p := range ps.list {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (p *projection) loadCheckpoint(ctx context.Context) (uint64, error) {
	e, err := p.ps.kv.Get(ctx, p.name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("eventstore: projection %q: read checkpoint: %w", p.name, err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("eventstore: projection %q: checkpoint %q is not a position", p.name, e.Value())
	}
	return n, nil
}

// saveCheckpoint stores the position if it moved since the last one.
func (p *projection) saveCheckpoint() {
	p.mu.Lock()
	pos, cp := p.position, p.checkpoint
	p.mu.Unlock()
	if pos == cp {
		return
	}
	p.storeCheckpoint(pos)
}

func (p *projection) storeCheckpoint(pos uint64) {
	// A checkpoint is stored even while the store stops: it is what a
	// restart resumes from.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.ps.kv.Put(ctx, p.name, []byte(strconv.FormatUint(pos, 10))); err != nil {
		p.log.Warn("cannot store the checkpoint; a restart will deliver again from the previous one", "position", pos, "err", err)
		return
	}
	p.mu.Lock()
	p.checkpoint = pos
	p.mu.Unlock()
}

// run follows the store until ctx ends, starting again after a rebuild
// or a broken subscription.
func (p *projection) run(ctx context.Context) {
	defer func() {
		p.mu.Lock()
		p.state = stateStopped
		p.mu.Unlock()
	}()
	wait := retryMin
	for ctx.Err() == nil {
		runCtx, cancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.cancelRun = cancel
		rebuild := p.rebuild
		p.rebuild = false
		if rebuild {
			p.position, p.seen, p.state = 0, 0, stateRebuilding
		}
		p.mu.Unlock()
		if rebuild {
			p.storeCheckpoint(0)
		}
		err := p.follow(runCtx)
		cancel()
		p.saveCheckpoint()
		if ctx.Err() != nil || err == nil {
			continue
		}
		p.fail(err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// follow delivers from the checkpoint on; it returns nil when runCtx is
// cancelled (a rebuild, a stop) and an error when reading fails.
func (p *projection) follow(ctx context.Context) error {
	p.mu.Lock()
	from := p.position + 1
	p.mu.Unlock()
	q := p.spec.Query
	sub, err := p.ps.s.Subscribe(ctx, from, q.Streams, q.Types)
	if err != nil {
		return err
	}
	defer sub.Close()
	p.sub.Store(sub)
	defer p.sub.Store(nil)
	since := 0
	for {
		first, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		batch := []apitype.RecordedEvent{first}
		for len(batch) < p.spec.BatchSize {
			ev, err := sub.nextWithin(ctx, batchFill)
			if err != nil {
				break
			}
			batch = append(batch, ev)
		}
		p.mu.Lock()
		p.busy = true
		p.mu.Unlock()
		ok := p.deliver(ctx, batch)
		p.mu.Lock()
		p.busy = false
		p.mu.Unlock()
		if !ok {
			return nil // stopped or rebuilding while retrying
		}
		last := batch[len(batch)-1].Position
		p.mu.Lock()
		p.position = last
		p.seen = max(p.seen, sub.seen.Load())
		if p.state != stateRebuilding || last >= p.rebuildTo {
			p.state = stateRunning
		}
		p.mu.Unlock()
		since += len(batch)
		if since >= p.spec.Checkpoint {
			p.storeCheckpoint(last)
			since = 0
		}
	}
}

// deliver hands batch to the handler until it takes it, backing off
// between failures; false means ctx ended first.
func (p *projection) deliver(ctx context.Context, batch []apitype.RecordedEvent) bool {
	wait := retryMin
	for {
		dctx, span := p.deliverySpan(ctx, batch)
		err := p.ps.s.deliver(dctx, p.spec.Handler, batch)
		p.ps.s.endSpan(span, err)
		if err == nil {
			p.ps.s.metrics.deliveries.WithLabelValues(p.name, "ok").Inc()
			p.mu.Lock()
			p.failures, p.lastErr = 0, ""
			p.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.ps.s.metrics.deliveries.WithLabelValues(p.name, "failed").Inc()
		p.fail(fmt.Errorf("batch of %d events from position %d: %w", len(batch), batch[0].Position, err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

func (p *projection) fail(err error) {
	p.mu.Lock()
	p.state, p.lastErr = stateFailing, err.Error()
	p.failures++
	n := p.failures
	p.mu.Unlock()
	if n == 1 || n%10 == 0 {
		p.log.Warn("projection handler failing; retrying the same batch", "handler", p.spec.Handler.String(), "failures", n, "err", err)
	}
}

// status is the projection's state against the store's last position.
func (p *projection) status(last uint64) apitype.Projection {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := apitype.Projection{
		Name: p.name, Handler: p.spec.Handler.String(), Position: p.position, Checkpoint: p.checkpoint,
		State: p.state, LastError: p.lastErr, Failures: p.failures,
	}
	seen := max(p.seen, p.position)
	if sub := p.sub.Load(); sub != nil && !p.busy {
		seen = max(seen, sub.seen.Load())
	}
	if last > seen && p.state != stateStopped {
		st.Lag = last - seen
	} else if last > p.position && p.state == stateStopped {
		st.Lag = last - p.position
	}
	return st
}

// Projections returns the projections' states, by name.
func (s *Store) Projections(ctx context.Context) []apitype.Projection {
	if len(s.projections.list) == 0 {
		return nil
	}
	var last uint64
	if s.running.Load() {
		if st, err := s.state(ctx); err == nil {
			last = st.LastSeq
		}
	}
	out := make([]apitype.Projection, 0, len(s.projections.list))
	for _, p := range s.projections.list {
		out = append(out, p.status(last))
	}
	return out
}

// Rebuild sets projection name back to the start: its handler gets every
// matching event again, from the first.
func (s *Store) Rebuild(ctx context.Context, name string) error {
	p := s.projections.get(name)
	if p == nil {
		return fmt.Errorf("%w: no projection %q", ErrNotFound, name)
	}
	st, err := s.state(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.rebuild, p.rebuildTo = true, st.LastSeq
	p.state = stateRebuilding
	cancel := p.cancelRun
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// projectionCollector reports the projections' position, lag and whether
// they fail, read at scrape time from the store that runs (a reload
// switches it).
type projectionCollector struct {
	mu sync.Mutex // guards ps
	ps *projections
}

var (
	projPositionDesc = prometheus.NewDesc("nubo_eventstore_projection_position", "The last global position a projection's handler took.", []string{"projection"}, nil)
	projLagDesc      = prometheus.NewDesc("nubo_eventstore_projection_lag", "Positions between a projection and the end of the store.", []string{"projection"}, nil)
	projFailingDesc  = prometheus.NewDesc("nubo_eventstore_projection_failing", "1 while a projection's handler fails (the projection waits and retries).", []string{"projection"}, nil)
)

func (c *projectionCollector) set(ps *projections) {
	c.mu.Lock()
	c.ps = ps
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- projPositionDesc
	ch <- projLagDesc
	ch <- projFailingDesc
}

// Collect implements prometheus.Collector.
func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	ps := c.ps
	c.mu.Unlock()
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, st := range ps.s.Projections(ctx) {
		failing := 0.0
		if st.State == stateFailing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(projPositionDesc, prometheus.GaugeValue, float64(st.Position), st.Name)
		ch <- prometheus.MustNewConstMetric(projLagDesc, prometheus.GaugeValue, float64(st.Lag), st.Name)
		ch <- prometheus.MustNewConstMetric(projFailingDesc, prometheus.GaugeValue, failing, st.Name)
	}
}
