package eventstore

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Broker is what the store needs of the broker: a connection and
// JetStream on it, both set once the broker has started.
type Broker interface {
	Conn() *nats.Conn
	JetStream() jetstream.JetStream
}

// Config configures a Store.
type Config struct {
	// App is the spec; its name prefixes the JetStream names and its
	// eventStore section is what runs. Required, with an eventStore.
	App *spec.App
	// Broker carries the events; it must have started before Start.
	Broker Broker
	// Handlers delivers to projections' and snapshots' handlers; required
	// when the spec has projections or snapshots.
	Handlers Handlers
	// Key is the value of the encryption key's secret when
	// eventStore.encryption is enabled (see crypto.go).
	Key string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Metrics registers the store's metrics; nil registers none.
	Metrics prometheus.Registerer
	// Tracer records spans of appends and projection deliveries; nil
	// makes none.
	Tracer Tracer
	// SoleWriter says that this store is the only client publishing on
	// its subjects, as under nubo up, whose embedded broker refuses
	// ReservedSubjects to every other connection: the store then checks
	// versions and ids itself instead of asking JetStream to (sole.go).
	// Leave it false where several stores share the stream (the replicas
	// of `nubo serve eventstore`) or the broker lets others publish there.
	SoleWriter bool
}

// ReservedSubjects are the subjects on which only the store of app may
// publish, for a broker that can refuse them to everyone else: its events,
// and the JetStream API calls that would change or empty their stream.
func ReservedSubjects(app string) []string {
	n := names{app: app}
	out := []string{n.allSubjects()}
	for _, op := range []string{"UPDATE", "DELETE", "PURGE", "MSG.DELETE"} {
		out = append(out, "$JS.API.STREAM."+op+"."+n.stream())
	}
	return out
}

// errNotRunning is an append before Start or after Stop.
var errNotRunning = errors.New("event store: not running")

// dupWindow is the JetStream deduplication window of the events stream:
// JetStream's default, written down. Within it an event id is recognised
// by JetStream itself; after it, by the version check of Append.
const dupWindow = 2 * time.Minute

// maxAppend bounds the events of one append: JetStream's default largest
// atomic batch.
const maxAppend = 1000

// Store is the event store of one app. Create it with New, then Start;
// Stop ends it. Methods are safe for concurrent use once started.
type Store struct {
	cfg     Config
	es      *spec.EventStore
	n       names
	log     *slog.Logger
	aead    cipher.AEAD // nil: data is stored as it is
	metrics *metrics

	nc   *nats.Conn
	js   jetstream.JetStream
	http *http.Client // to service handlers

	heads   headCache
	writers streamLocks // a sole writer's appends, per stream
	ids     idWindow    // a sole writer's chosen ids
	// appending is held, shared, by each append under way; Stop takes it
	// whole to wait for them.
	appending sync.RWMutex

	projections *projections
	snapshots   *snapshotter

	// ctx lives from New to Stop: subscriptions served over HTTP and the
	// projections' loops end with it.
	ctx    context.Context
	cancel context.CancelFunc

	running atomic.Bool // between a successful Start and Stop

	mu      sync.Mutex // guards started and stopped
	started bool
	stopped bool
}

// New checks cfg and builds the store; nothing runs until Start.
func New(cfg Config) (*Store, error) {
	if cfg.App == nil || cfg.App.EventStore == nil {
		return nil, errors.New("eventstore: the spec has no eventStore section")
	}
	if cfg.Broker == nil {
		return nil, errors.New("eventstore: no broker")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		cfg:   cfg,
		es:    cfg.App.EventStore,
		n:     names{app: cfg.App.Name},
		log:   log.With("component", "eventstore"),
		heads: headCache{m: map[string]head{}},
	}
	s.ids.window = dupWindow
	if r := s.es.Retention.Duration; r > 0 && r < dupWindow {
		s.ids.window = r
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // service URLs are the mesh's own listeners
	s.http = &http.Client{Transport: tr}
	if s.es.Encryption.Enabled {
		aead, err := newAEAD(cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("eventstore: encryption: %w", err)
		}
		s.aead = aead
	}
	s.metrics = newMetrics(cfg.Metrics)
	p, err := newProjections(s, s.es.Projections)
	if err != nil {
		return nil, err
	}
	s.projections = p
	sn, err := newSnapshotter(s, s.es.Snapshots)
	if err != nil {
		return nil, err
	}
	s.snapshots = sn
	return s, nil
}

// Start creates or updates the events stream and the buckets, then starts
// the projections and snapshots; it returns once they run.
func (s *Store) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("eventstore: start: already started or stopped")
	}
	s.nc, s.js = s.cfg.Broker.Conn(), s.cfg.Broker.JetStream()
	if s.nc == nil || s.js == nil {
		return errors.New("eventstore: start: the broker has not started")
	}
	if v := s.nc.ConnectedServerVersion(); !versionAtLeast(v, minServer) {
		return fmt.Errorf("eventstore: the NATS server is version %s; the event store needs %d.%d or newer (batched direct gets, atomic batch publish)", v, minServer[0], minServer[1])
	}
	cfg := jetstream.StreamConfig{
		Name:               s.n.stream(),
		Subjects:           []string{s.n.allSubjects()},
		Retention:          jetstream.LimitsPolicy,
		Storage:            jetstream.FileStorage,
		MaxAge:             s.es.Retention.Duration,
		Duplicates:         dupWindow,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	}
	if cfg.MaxAge > 0 && cfg.MaxAge < cfg.Duplicates {
		cfg.Duplicates = cfg.MaxAge // JetStream's rule: no longer than the max age
	}
	if s.es.Compression {
		cfg.Compression = jetstream.S2Compression
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("eventstore: stream %s: %w", cfg.Name, err)
	}
	if err := s.projections.start(ctx); err != nil {
		return err
	}
	if err := s.snapshots.start(ctx); err != nil {
		s.projections.stop(ctx)
		return err
	}
	s.started = true
	s.running.Store(true)
	return nil
}

// Stop stops the projections (each checkpoints where it is) and the
// snapshots. It is idempotent and nil-safe.
func (s *Store) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.running.Store(false)
	s.waitAppends(ctx)
	s.cancel()
	if !s.started {
		return nil
	}
	s.snapshots.stop(ctx)
	return s.projections.stop(ctx)
}

// waitAppends waits, until ctx is done, for the appends under way to end:
// a sole writer's successor must not append beside them.
func (s *Store) waitAppends(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.appending.Lock()
		s.appending.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("stopped with appends still under way", "err", ctx.Err())
	}
}

// minServer is the oldest nats-server the store runs on: batched direct
// gets came in 2.11, atomic batch publishes in 2.12.
var minServer = [2]int{2, 12}

// versionAtLeast reports whether the server version v ("2.12.1") is at
// least min.
func versionAtLeast(v string, min [2]int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > min[0] || (major == min[0] && minor >= min[1])
}

// head is a stream's last event: its JetStream sequence and version.
type head struct {
	seq     uint64    // 0: no event
	version int64     // -1: no event
	at      time.Time // when the event was stored
}

// maxHeads bounds the cache of stream heads; past it the cache starts
// over (a miss costs one direct get).
const maxHeads = 100_000

// headCache remembers the heads this store appended, so that an append
// needs no read first. A stale head is harmless: JetStream refuses the
// append (wrong last subject sequence) and the store reads the head again.
type headCache struct {
	mu sync.Mutex // guards m
	m  map[string]head
}

func (c *headCache) get(stream string) (head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[stream]
	return h, ok
}

func (c *headCache) set(stream string, h head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[stream]; ok && cur.seq > h.seq {
		return // a newer head is known already
	}
	if len(c.m) >= maxHeads {
		c.m = map[string]head{}
	}
	c.m[stream] = h
}

func (c *headCache) drop(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, stream)
}
