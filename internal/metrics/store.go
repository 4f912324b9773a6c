package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Dir holds the TSDB's blocks and write-ahead log; created if missing.
	Dir string
	// Retention is how long samples are kept; default 15d, as Prometheus.
	Retention time.Duration
	// LookbackDelta is how far back an instant query looks for a sample;
	// default 5m, as Prometheus.
	LookbackDelta time.Duration
	// QueryTimeout bounds one query; default 2m, as Prometheus.
	QueryTimeout time.Duration
	// EvaluationInterval is the step of a subquery written without one
	// ([1h:]); default 1m, Prometheus' default evaluation_interval.
	EvaluationInterval time.Duration
	// MaxSamples bounds the samples one query may load; default 50 million,
	// as Prometheus.
	MaxSamples int
	// Logger receives the TSDB's and the query engine's diagnostics.
	Logger *slog.Logger
	// Registerer receives the TSDB's and the query engine's own metrics
	// (prometheus_tsdb_*, prometheus_engine_*); nil registers none.
	Registerer prometheus.Registerer
}

// Store is an open Prometheus TSDB and the PromQL engine over it.
type Store struct {
	db     *tsdb.DB
	engine *promql.Engine
	parser parser.Parser
	opts   StoreOptions
	opened time.Time // when the TSDB was open, its write-ahead log replayed
}

// OpenStore opens (or creates) the TSDB in opts.Dir, replaying its
// write-ahead log.
func OpenStore(opts StoreOptions) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("metrics: store: no directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retention <= 0 {
		opts.Retention = 15 * 24 * time.Hour
	}
	if opts.LookbackDelta <= 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 2 * time.Minute
	}
	if opts.EvaluationInterval <= 0 {
		opts.EvaluationInterval = time.Minute
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = 50_000_000
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: store: %w", err)
	}
	topts := tsdb.DefaultOptions()
	topts.RetentionDuration = opts.Retention.Milliseconds()
	db, err := tsdb.Open(opts.Dir, opts.Logger.With("component", "tsdb"), opts.Registerer, topts, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: open TSDB in %s: %w", opts.Dir, err)
	}
	p := parser.NewParser(parser.Options{})
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:                   opts.Logger.With("component", "promql"),
		Reg:                      opts.Registerer,
		MaxSamples:               opts.MaxSamples,
		Timeout:                  opts.QueryTimeout,
		LookbackDelta:            opts.LookbackDelta,
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return opts.EvaluationInterval.Milliseconds() },
		Parser:                   p,
	})
	return &Store{db: db, engine: engine, parser: p, opts: opts, opened: time.Now()}, nil
}

// Close flushes and closes the TSDB; nil-safe.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("metrics: close TSDB: %w", err)
	}
	return nil
}

// Snapshot writes the TSDB's blocks and its head (the samples not yet in
// a block) as blocks into dir, through the TSDB's own snapshot: a
// consistent copy while samples keep coming.
func (s *Store) Snapshot(dir string) error {
	if err := s.db.Snapshot(dir, true); err != nil {
		return fmt.Errorf("metrics: snapshot: %w", err)
	}
	return nil
}

// DB is the TSDB, for appenders and queriers.
func (s *Store) DB() *tsdb.DB { return s.db }

// Engine is the PromQL engine.
func (s *Store) Engine() *promql.Engine { return s.engine }

// Parser is the PromQL parser the store's engine and rules use.
func (s *Store) Parser() parser.Parser { return s.parser }

// Appender starts a transaction of appends.
func (s *Store) Appender(ctx context.Context) storage.AppenderV2 { return s.db.AppenderV2(ctx) }

// Query evaluates expr at ts and returns a vector: a scalar result becomes
// one sample without labels, as the rules package expects.
func (s *Store) Query(ctx context.Context, expr string, ts time.Time) (promql.Vector, error) {
	q, err := s.engine.NewInstantQuery(ctx, s.db, nil, expr, ts)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		// The query's buffers go back to the engine's pools on Close, and a
		// sample's histogram may live in them: the caller gets copies.
		out := make(promql.Vector, len(v))
		for i, smp := range v {
			if smp.H != nil {
				smp.H = smp.H.Copy()
			}
			out[i] = smp
		}
		return out, nil
	case promql.Scalar:
		return promql.Vector{{T: v.T, F: v.V, Metric: labels.EmptyLabels()}}, nil
	default:
		return nil, fmt.Errorf("query %q: result is a %s, not a vector or scalar", expr, res.Value.Type())
	}
}
