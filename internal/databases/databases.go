// Package databases runs the spec's databases for `nubo up`: real
// PostgreSQL and Redis servers from the system's packages, as supervised
// processes (restarts, the reaper and the output stream apply as to
// services), their data under local.stateDir/databases/NAME, their
// credentials generated once and kept in the secrets store, and the
// connection details workloads get through ${databases.NAME.*}.
//
// # Overview
//
// New checks the spec's databases and allocates. Start finds each server's
// binaries, prepares its data folder (initdb once for PostgreSQL), starts
// it under a supervisor and waits until it answers a query (SELECT 1, PING);
// then it creates the database, the roles and their grants. A database that
// cannot start (its server is not installed, say) is marked failed with a
// one-line reason; the rest of the system runs, and workloads that depend
// on it wait for it and say why (Ready, Failure). Stop stops the servers
// with their fast shutdown (SIGINT for PostgreSQL, SIGTERM for Redis).
//
// # Why hand-written
//
// No library runs the system's own servers under Kubernetes-like
// supervision; embedded-postgres libraries download their own binaries and
// run them outside any supervisor. The clients (pgx, go-redis) are
// libraries.
package databases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// DefaultReadyTimeout bounds how long Start waits for a server to answer
// its first query: initdb and a first start take a few seconds, a cold disk
// more.
const DefaultReadyTimeout = 2 * time.Minute

// Store keeps the generated passwords: the secrets store, encrypted at rest.
type Store interface {
	Get(name, key string) (secrets.Value, bool, error)
	Set(name, key string, value secrets.Value) error
}

// Config is what the databases component needs.
type Config struct {
	// App is the spec; its Databases are run.
	App *spec.App
	// StateDir is the state directory; data goes under StateDir/databases.
	StateDir string
	// Store keeps the generated passwords; required.
	Store Store
	// Finder finds the servers' binaries; the zero value searches the
	// system.
	Finder Finder
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Lines receives the servers' output, as a service's.
	Lines supervisor.LineSink
	// Events receives the servers' lifecycle events (started, exited).
	Events supervisor.EventSink
	// Notify reports one line about a database (ready, failed, backed up).
	Notify func(db, msg string)
	// Backoff is the restart schedule of a crashed server.
	Backoff supervisor.Backoff
	// ReadyTimeout bounds the wait for a server's first answer; zero means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Secret reads a secret's value (the backups' encryption key); nil
	// when there are none.
	Secret func(name, key string) (string, bool)
	// CADir is nubo's local CA, which issues the servers' certificates
	// (encryption.inTransit).
	CADir string
	// Metrics registers the databases' metrics; nil registers nowhere.
	Metrics prometheus.Registerer
	// Tracer records a span per connection through an allow-list
	// listener; nil makes none.
	Tracer Tracer
}

// Databases runs the spec's databases. Its methods are safe for concurrent
// use.
type Databases struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	dbs     map[string]*Database
	list    []*Database // sorted by name

	// bgCtx bounds the scheduled backups; Stop cancels it.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	cron     *cron.Cron // nil without scheduled backups; set by Start
}

// New checks cfg and allocates; nothing runs and nothing is read.
func New(cfg Config) (*Databases, error) {
	if cfg.App == nil {
		return nil, errors.New("databases: no spec")
	}
	if cfg.Store == nil && len(cfg.App.Databases) > 0 {
		return nil, errors.New("databases: no secrets store for the generated passwords")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string, string) {}
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	d := &Databases{cfg: cfg, log: cfg.Logger, dbs: map[string]*Database{}, metrics: newMetrics(cfg.Metrics)}
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	names := make([]string, 0, len(cfg.App.Databases))
	for n := range cfg.App.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		db, err := newDatabase(d, n, cfg.App.Databases[n])
		if err != nil {
			return nil, err
		}
		d.dbs[n] = db
		d.list = append(d.list, db)
	}
	return d, nil
}

// Name implements host.Component.
func (d *Databases) Name() string { return "databases" }

// Start starts every database at once and returns when each is ready or
// has failed; a failed database does not fail Start (see the package
// doc). It fails only when ctx ends first.
func (d *Databases) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, db := range d.list {
		wg.Go(func() { db.start(ctx) })
	}
	wg.Wait()
	err := ctx.Err()
	if err == nil {
		err = d.schedule()
	}
	if err != nil {
		_ = d.Stop(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// Stop stops every server, each with its fast shutdown, and waits for
// them. It is idempotent.
func (d *Databases) Stop(ctx context.Context) error {
	d.stopSchedule(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(d.list))
	for i, db := range d.list {
		wg.Go(func() { errs[i] = db.stop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Get returns the named database, or nil.
func (d *Databases) Get(name string) *Database { return d.dbs[name] }

// Names returns the databases' names, sorted.
func (d *Databases) Names() []string {
	out := make([]string, len(d.list))
	for i, db := range d.list {
		out[i] = db.name
	}
	return out
}

// Status returns a snapshot of every database, sorted by name.
func (d *Databases) Status() []apitype.Database {
	out := make([]apitype.Database, len(d.list))
	for i, db := range d.list {
		out[i] = db.Status()
	}
	return out
}

// Lookup resolves ${databases.NAME.ATTR} for workload: its role's
// credentials when a role lists it, else the admin's.
func (d *Databases) Lookup(name, attr, workload string) (string, error) {
	db := d.dbs[name]
	if db == nil {
		return "", fmt.Errorf("unknown database %q", name)
	}
	return db.lookup(attr, workload)
}
