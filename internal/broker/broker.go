// Package broker owns the NATS server that carries nubo's queues, topics,
// event bus and event store: an embedded nats-server with JetStream file
// storage under the state directory, or a connection to an existing NATS
// server or cluster (local.broker.url).
//
// # Connections
//
// The engine's own components talk to the embedded server over an
// in-process connection (no socket, about twice the publish rate of TCP);
// user processes reach it over TCP on a free loopback port, which
// ClientURL gives them as NUBO_NATS_URL.
//
// # Durability
//
// JetStream writes every stored message to its file before it acknowledges
// the publish, so an acknowledged publish survives a crash of nubo itself,
// even kill -9: the data is in the operating system's page cache. What the
// disk holds is synced every SyncInterval (1s by default; nats-server's own
// default is 2 minutes), so a power loss or a kernel crash can lose the
// last second of acknowledged publishes. SyncAlways syncs every write
// instead, at a large cost in throughput.
package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSyncInterval is how often the embedded server syncs stored
// messages to disk (see the package doc on durability).
const DefaultSyncInterval = time.Second

// readyTimeout bounds the wait for the embedded server and for the first
// connection to an external one.
const readyTimeout = 10 * time.Second

// Config configures a Broker.
type Config struct {
	// StateDir is the state directory; the embedded server keeps its
	// JetStream files under StateDir/broker. Required for the embedded
	// server, unused with URL.
	StateDir string
	// URL of an existing NATS server or cluster (local.broker.url); empty
	// runs the embedded server. The server must have JetStream enabled.
	URL string
	// Logger receives the broker's diagnostics; nil discards them.
	Logger *slog.Logger
	// SyncInterval is how often the embedded server syncs to disk; zero
	// means DefaultSyncInterval.
	SyncInterval time.Duration
	// SyncAlways syncs every write of the embedded server to disk before
	// acknowledging it.
	SyncAlways bool
	// Name names the connection in the server's monitoring (default "nubo").
	Name string
	// Metrics registers the broker's health series (metrics.go); nil
	// registers nothing.
	Metrics prometheus.Registerer
	// Reserved are subjects (wildcards allowed) on which only the
	// engine's own connection may publish: the embedded server refuses
	// them to every other client, user processes included. Unused with
	// URL, whose server nubo does not configure.
	Reserved []string
}

// The embedded server's users when Config.Reserved is set: the engine's
// connection authenticates with a password made at each start; every
// other client connects without credentials, as before, and is
// clientUser (the server's no_auth_user).
const (
	engineUser = "nubo-engine"
	clientUser = "nubo-client"
)

// Broker is a started NATS server, or a connection to one. Create it with
// New, then Start; Stop ends it. Methods are safe for concurrent use.
type Broker struct {
	cfg Config
	log *slog.Logger

	health *health
	// cur is the embedded server in service: the engine's connection
	// reconnects to it after a restart (inProcess).
	cur atomic.Pointer[server.Server]
	// watched is closed when the health watcher has returned.
	watched chan struct{}

	mu      sync.Mutex // guards the fields below
	srv     *server.Server
	opts    *server.Options // the embedded server's, for a restart
	cancel  context.CancelFunc
	nc      *nats.Conn
	js      jetstream.JetStream
	url     string
	started bool
	stopped bool
}

// New checks cfg and returns a Broker that has not started anything.
func New(cfg Config) (*Broker, error) {
	if cfg.URL == "" && cfg.StateDir == "" {
		return nil, errors.New("broker: no state directory for the embedded server")
	}
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("broker: url %q: not a NATS URL (write nats://host:4222)", Redact(cfg.URL))
		}
	}
	if cfg.SyncInterval < 0 {
		return nil, fmt.Errorf("broker: sync interval %v is negative", cfg.SyncInterval)
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Name == "" {
		cfg.Name = "nubo"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: log.With("component", "broker"), health: newHealth()}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(healthCollector{b.health}); err != nil {
			return nil, fmt.Errorf("broker: metrics: %w", err)
		}
	}
	return b, nil
}

// Embedded reports whether the broker runs its own server.
func (b *Broker) Embedded() bool { return b.cfg.URL == "" }

// Start runs the embedded server and connects to it, or connects to the
// external one, and returns once JetStream answers.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.stopped:
		return errors.New("broker: start: stopped")
	case b.started:
		return errors.New("broker: start: already started")
	}
	var err error
	if b.cfg.URL == "" {
		err = b.startEmbedded(ctx)
	} else {
		err = b.connectExternal(ctx)
	}
	if err != nil {
		b.closeLocked()
		return err
	}
	b.started = true
	if b.srv != nil {
		wctx, cancel := context.WithCancel(context.Background())
		b.cancel, b.watched = cancel, make(chan struct{})
		go func() {
			defer close(b.watched)
			b.watch(wctx)
		}()
	}
	return nil
}

func (b *Broker) startEmbedded(ctx context.Context) error {
	dir := filepath.Join(b.cfg.StateDir, "broker")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("broker: create %s: %w", dir, err)
	}
	opts := &server.Options{
		ServerName:   "nubo",
		Host:         "127.0.0.1",
		Port:         server.RANDOM_PORT,
		JetStream:    true,
		StoreDir:     dir,
		SyncInterval: b.cfg.SyncInterval,
		SyncAlways:   b.cfg.SyncAlways,
		NoSigs:       true,
		// Events carry up to the console's 1 MiB body plus attributes.
		MaxPayload: 8 << 20,
	}
	var auth []nats.Option
	if len(b.cfg.Reserved) > 0 {
		pass := rand.Text()
		opts.Users = []*server.User{
			{Username: engineUser, Password: pass},
			{Username: clientUser, Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Deny: b.cfg.Reserved},
			}},
		}
		opts.NoAuthUser = clientUser
		auth = append(auth, nats.UserInfo(engineUser, pass))
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("broker: embedded server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{b.log, b.health}, false, false, false)
	b.srv, b.opts = srv, opts.Clone()
	b.cur.Store(srv)
	go srv.Start()
	if !waitReady(ctx, srv) {
		return fmt.Errorf("broker: embedded server in %s did not become ready within %v", dir, readyTimeout)
	}
	if !srv.JetStreamEnabled() {
		return fmt.Errorf("broker: embedded server in %s: JetStream did not start (see the log)", dir)
	}
	b.url = srv.ClientURL()
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		b.opts.Port = a.Port // a restart keeps the port
	}
	nc, err := nats.Connect(b.url, append(auth, nats.Name(b.cfg.Name), nats.InProcessServer(inProcess{b}), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("broker: connect to the embedded server: %w", err)
	}
	if err := b.setConn(ctx, nc, "the embedded server"); err != nil {
		return err
	}
	if err := b.guardReserved(ctx, nc, b.js); err != nil {
		return fmt.Errorf("broker: watch the streams for reserved subjects: %w", err)
	}
	// Before any component declares its streams: a restored backup's
	// streams are created from their snapshots, not empty.
	return b.restorePending(ctx)
}

// waitReady waits for the server's listeners, or for ctx.
func waitReady(ctx context.Context, srv *server.Server) bool {
	done := make(chan bool, 1)
	go func() { done <- srv.ReadyForConnections(readyTimeout) }()
	select {
	case ok := <-done:
		return ok
	case <-ctx.Done():
		return false
	}
}

func (b *Broker) connectExternal(ctx context.Context) error {
	shown := Redact(b.cfg.URL)
	log := b.log.With("url", shown)
	nc, err := nats.Connect(b.cfg.URL,
		nats.Name(b.cfg.Name),
		nats.Timeout(readyTimeout),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("reconnected to NATS") }),
	)
	if err != nil {
		return fmt.Errorf("broker: connect to %s: %w", shown, err)
	}
	b.url = b.cfg.URL
	return b.setConn(ctx, nc, shown)
}

// setConn keeps nc and checks that JetStream answers on it.
func (b *Broker) setConn(ctx context.Context, nc *nats.Conn, what string) error {
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("broker: jetstream on %s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("broker: %s has no JetStream: start nats-server with -js (or jetstream {} in its config)", what)
		}
		return fmt.Errorf("broker: jetstream on %s: %w", what, err)
	}
	b.js = js
	if b.srv != nil {
		b.log.Debug("embedded NATS server ready", "url", b.url, "store", filepath.Join(b.cfg.StateDir, "broker"))
	} else {
		b.log.Debug("connected to NATS", "url", what)
	}
	return nil
}

// ClientURL is the URL processes connect to (NUBO_NATS_URL): the embedded
// server's loopback listener, or the external URL as configured. Empty
// before Start.
func (b *Broker) ClientURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.url
}

// Conn is the engine's connection (in-process for the embedded server);
// nil before Start. Components must not close it.
func (b *Broker) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nc
}

// JetStream is the JetStream handle on Conn; nil before Start.
func (b *Broker) JetStream() jetstream.JetStream {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.js
}

// Stop drains the engine's connection (what it has published is flushed)
// and shuts the embedded server down, until ctx is done. It is nil-safe and
// idempotent.
func (b *Broker) Stop(ctx context.Context) error {
	if b == nil {
		return nil
	}
	// The watcher first: it may be restarting the server.
	b.mu.Lock()
	cancel, watched := b.cancel, b.watched
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-watched
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return nil
	}
	b.stopped = true
	var err error
	if b.nc != nil && !b.nc.IsClosed() {
		done := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if derr := b.nc.Drain(); derr == nil {
			select {
			case <-done:
			case <-ctx.Done():
				err = fmt.Errorf("broker: drain: %w", ctx.Err())
			}
		}
	}
	b.closeLocked()
	return err
}

// closeLocked closes the connection and the server without waiting for
// anything. The lock must be held.
func (b *Broker) closeLocked() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.log.Debug("embedded NATS server stopped")
	}
}

// Redact hides the password or token of a NATS URL, for messages and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: hide whatever precedes an @ after the scheme.
		scheme, rest, ok := strings.Cut(raw, "://")
		if at := strings.LastIndex(rest, "@"); ok && at >= 0 {
			return scheme + "://xxxxx" + rest[at:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, hasPass := u.User.Password(); hasPass {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	} else {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

// natsLogger passes nats-server's log to slog. Notices go to Debug: the
// server announces every start-up detail, which `nubo up` does not show.
// A store failure the server logs marks the broker degraded (see
// health.go).
type natsLogger struct {
	log    *slog.Logger
	health *health
}

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any) {
	l.report(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (l natsLogger) Fatalf(format string, v ...any) {
	l.report(slog.LevelError, fmt.Sprintf(format, v...))
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.report(slog.LevelError, fmt.Sprintf(format, v...))
}

func (l natsLogger) report(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
	if isStoreFailure(msg) {
		l.health.degrade(msg)
	}
}
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
