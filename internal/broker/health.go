package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"
)

// The embedded server cannot undo a failed write on its own: a stream
// whose file store once failed to write ("Critical write error: too many
// open files" when a flood took every descriptor) refuses every later
// publish until the server is restarted, and JetStream disables itself
// after running out of disk. So the broker watches for both (the server's
// error log, and a check of JetStream every healthEvery) and heals: once
// descriptors are free again, it restarts the embedded server on the same
// store directory and port. What JetStream acknowledged is in its files,
// so nothing acknowledged is lost; the engine's connection reconnects
// in-process to the new server and keeps its subscriptions.

// Health states.
const (
	StateOK       = "ok"
	StateDegraded = "degraded"
)

// Health is the broker's state, for `nubo status`.
type Health struct {
	// State is StateOK or StateDegraded.
	State string
	// Reason says why the broker is degraded (the server's error).
	Reason string
	// Since is when the state last changed.
	Since time.Time
	// Recoveries counts the restarts of the embedded server after a
	// failure.
	Recoveries int
	// StoreErrors counts the store failures seen (each logged error and
	// each failed check), degraded already or not.
	StoreErrors int
}

// healthEvery is how often the broker checks JetStream and, when
// degraded, whether it can heal.
const healthEvery = time.Second

// health is the mutable state behind Health.
type health struct {
	mu         sync.Mutex
	state      string
	reason     string
	since      time.Time
	recoveries int
	failures   int
	kick       chan struct{} // wakes the watcher after a reported failure
}

func newHealth() *health {
	return &health{state: StateOK, since: time.Now(), kick: make(chan struct{}, 1)}
}

// degrade records a failure; the first one wins the reason.
func (h *health) degrade(reason string) {
	h.mu.Lock()
	h.failures++
	if h.state == StateOK {
		h.state, h.reason, h.since = StateDegraded, reason, time.Now()
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *health) healed() {
	h.mu.Lock()
	h.state, h.reason, h.since = StateOK, "", time.Now()
	h.recoveries++
	h.mu.Unlock()
}

func (h *health) snapshot() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Health{State: h.state, Reason: h.reason, Since: h.since, Recoveries: h.recoveries, StoreErrors: h.failures}
}

// Health returns the broker's state.
func (b *Broker) Health() Health { return b.health.snapshot() }

// ReportWriteError lets a component that saw JetStream refuse a write
// (a publish answered with a storage error) mark the broker degraded, so
// that it heals without waiting for the next check.
func (b *Broker) ReportWriteError(err error) {
	if b.Embedded() && isStoreFailure(err.Error()) {
		b.health.degrade(err.Error())
	}
}

// isStoreFailure tells a server error that only a restart undoes.
func isStoreFailure(msg string) bool {
	for _, s := range []string{"Critical write error", "too many open files", "no space left on device",
		"JetStream out of resources", "disabling JetStream", "insufficient resources"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// watch checks the embedded server until ctx ends, and heals it.
func (b *Broker) watch(ctx context.Context) {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.health.kick:
		}
		if b.Health().State == StateOK {
			if err := b.check(ctx); err != nil && ctx.Err() == nil {
				b.log.Error("broker: JetStream check failed", "err", err)
				b.health.degrade(err.Error())
			}
			if b.Health().State == StateOK {
				continue
			}
		}
		if !descriptorsFree() {
			continue // restarting now would fail the same way
		}
		if err := b.restart(ctx); err != nil {
			if ctx.Err() == nil {
				b.log.Error("broker: restart of the embedded server failed; trying again", "err", err)
			}
			continue
		}
		b.health.healed()
		b.log.Warn("broker: the embedded server was restarted after a store failure and answers again")
	}
}

// check asks the embedded server whether JetStream runs.
func (b *Broker) check(ctx context.Context) error {
	srv := b.cur.Load()
	if srv == nil {
		return nil
	}
	if !srv.JetStreamEnabled() {
		return errors.New("JetStream is disabled (the server ran out of a resource; see the log)")
	}
	return nil
}

// descriptorsFree reports whether the process has room under its
// open-file limit: at least a tenth of it, and 64.
func descriptorsFree() bool {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return true
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, fs.ErrNotExist) {
		return true // not Linux: try
	}
	if err != nil {
		return false // EMFILE, most likely
	}
	free := int64(r.Cur) - int64(len(ents))
	return free >= 64 && free >= int64(r.Cur)/10
}

// restart replaces the embedded server by a new one on the same store
// directory and port, and waits for JetStream to answer on the engine's
// connection.
func (b *Broker) restart(ctx context.Context) error {
	b.mu.Lock()
	if b.stopped || b.srv == nil {
		b.mu.Unlock()
		return errors.New("stopped")
	}
	old := b.srv
	// The same port (in opts since the first start): processes were
	// given NUBO_NATS_URL.
	opts := b.opts.Clone()
	b.mu.Unlock()

	old.Shutdown()
	old.WaitForShutdown()
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{b.log, b.health}, false, false, false)
	go srv.Start()
	if !waitReady(ctx, srv) {
		srv.Shutdown()
		return fmt.Errorf("the server in %s did not become ready", opts.StoreDir)
	}
	b.mu.Lock()
	b.srv = srv
	js := b.js
	b.mu.Unlock()
	b.cur.Store(srv)
	// The engine's connection reconnects in-process (inProcess looks the
	// current server up); JetStream answering on it is the proof.
	deadline := time.Now().Add(readyTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("JetStream does not answer after the restart: %w", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// inProcess gives the engine's connection the current embedded server,
// on its first connect and on every reconnect after a restart.
type inProcess struct{ b *Broker }

func (p inProcess) InProcessConn() (net.Conn, error) {
	srv := p.b.cur.Load()
	if srv == nil {
		return nil, errors.New("broker: no embedded server")
	}
	return srv.InProcessConn()
}
