package tracing

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
)

// recordQueue bounds the spans nubo records itself that wait for the
// store: past it they are dropped and counted, never waited for.
const recordQueue = 16384

// Tracer is the tracing of one nubo up: Record takes the spans nubo makes
// at its hops (cheap: a send on a bounded channel, no lock held by the
// caller), Receive the spans that arrive over OTLP; both go to the store
// and, when export is set, to the exporter. Sample decides about new
// traces.
type Tracer struct {
	store atomic.Pointer[Store]
	log   *slog.Logger
	ch    chan Span

	rate     atomic.Uint64 // float64 bits
	baggage  atomic.Pointer[[]Attr]
	exporter atomic.Pointer[Exporter]

	recorded, dropped atomic.Uint64
}

// NewTracer makes a tracer; spans reach a store once SetStore gave it one
// and Run runs.
func NewTracer(log *slog.Logger) *Tracer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracer{log: log, ch: make(chan Span, recordQueue)}
	t.SetSampleRate(1)
	return t
}

// SetStore sets where spans are kept (nil: nowhere, as before start).
func (t *Tracer) SetStore(st *Store) { t.store.Store(st) }

// Store is where spans are kept, or nil.
func (t *Tracer) Store() *Store { return t.store.Load() }

// SetSampleRate sets the ratio of new traces kept (tracing.sampleRate).
func (t *Tracer) SetSampleRate(r float64) { t.rate.Store(math.Float64bits(r)) }

// SetBaggage sets attributes added to every span nubo records
// (tracing.baggage).
func (t *Tracer) SetBaggage(attrs []Attr) { t.baggage.Store(&attrs) }

// SetExporter sets (or with nil removes) the exporter; the caller runs it.
func (t *Tracer) SetExporter(e *Exporter) { t.exporter.Store(e) }

// Exporter is the current exporter, or nil.
func (t *Tracer) Exporter() *Exporter { return t.exporter.Load() }

// Sample decides about a trace that starts at a hop of nubo's.
func (t *Tracer) Sample(id [16]byte) bool {
	return sampled(id, math.Float64frombits(t.rate.Load()))
}

// Record queues a span nubo made; it never blocks.
func (t *Tracer) Record(sp Span) {
	select {
	case t.ch <- sp:
		t.recorded.Add(1)
	default:
		t.dropped.Add(1)
	}
}

// Receive stores and exports spans received over OTLP, on the caller's
// goroutine (the receiver's request: the sender waits, as it would for
// the collector).
func (t *Tracer) Receive(spans []Span) {
	if st := t.store.Load(); st == nil {
		t.dropped.Add(uint64(len(spans)))
	} else if err := st.Add(spans); err != nil {
		t.log.Warn("tracing: spans not stored", "spans", len(spans), "err", err)
	}
	if e := t.exporter.Load(); e != nil {
		e.Enqueue(spans...)
	}
}

// Dropped counts recorded spans that found the queue full.
func (t *Tracer) Dropped() uint64 { return t.dropped.Load() }

// Run moves recorded spans to the store in batches until ctx ends, then
// stores what is queued.
func (t *Tracer) Run(ctx context.Context) {
	batch := make([]Span, 0, exportBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if b := t.baggage.Load(); b != nil && len(*b) > 0 {
			for i := range batch {
				batch[i].Attrs = append(batch[i].Attrs, *b...)
			}
		}
		t.Receive(batch)
		// The store and the exporter's queue copy what they keep (a span
		// by value, its fields into the index), so the batch is reused:
		// a new one each flush, at a few spans a flush, was a 100 KB
		// allocation per request or two of the mesh and a fifth of its CPU
		// in GC with tracing on.
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case sp := <-t.ch:
					batch = append(batch, sp)
					if len(batch) == exportBatch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		case sp := <-t.ch:
			batch = append(batch, sp)
			// Take what else is queued, then store it in one write.
			for len(batch) < exportBatch {
				select {
				case sp := <-t.ch:
					batch = append(batch, sp)
					continue
				default:
				}
				break
			}
			flush()
		}
	}
}
