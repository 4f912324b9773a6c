package broker_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nubo-dev/nubo/internal/alerting"
	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/metrics"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/rulegroups"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestHealsAfterWriteError takes every file descriptor from the process,
// as a flood of connections did, while the embedded server needs a new
// block file: the write fails ("too many open files"), the stream refuses
// publishes from then on, and Health says degraded. Once the descriptors
// are back, the broker restarts the embedded server by itself: publishes
// succeed again on the same connection, and every publish acknowledged
// before, during or after is in the stream.
//
// The broker's metrics are scraped into nubo's metrics store, which
// evaluates the built-in rules all along: nubo_broker_degraded is 1 and
// the broker_degraded alert pending while the store refuses writes, then
// 0 and no alert after the restart, which the restart counter shows.
//
// Not parallel: it lowers the whole process's open-file limit for a while.
func TestHealsAfterWriteError(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Reserved subjects, as nubo up has: the engine's connection must
	// authenticate again to the restarted server.
	b := start(t, broker.Config{StateDir: t.TempDir(), Metrics: reg, Reserved: []string{"app.eventstore.>"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := startMetrics(t, reg)
	js := b.JetStream()
	// MaxBytes below 128 KB gives the smallest blocks, 32 KB: a new block
	// file every 130 or so messages of 200 bytes (and 260 fit).
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FLOOD", Subjects: []string{"flood.>"}, MaxBytes: 120000}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 200))
	acked := map[uint64]string{}
	publish := func(i int) error {
		id := fmt.Sprintf("m%d", i)
		// A publish the failed store does not answer times out.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ack, err := js.Publish(pctx, "flood.a", append([]byte(id+":"), payload...))
		if err == nil {
			acked[ack.Sequence] = id
		}
		return err
	}
	for i := range 10 {
		if err := publish(i); err != nil {
			t.Fatal(err)
		}
	}

	// Take every descriptor: a soft limit below the lowest free
	// descriptor number fails every open with EMFILE, even of a
	// descriptor just closed (the store closes the full block's file
	// before it opens the next).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	orig := lim
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Fatal(err)
		}
	}
	defer restore()
	lim.Cur = 3
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var failed error
	for i := 10; i < 200 && failed == nil; i++ {
		failed = publish(i)
	}
	if failed == nil {
		t.Fatal("200 publishes with no descriptor left all succeeded: the test cannot see a store failure")
	}
	waitHealth(t, b, broker.StateDegraded)
	if h := b.Health(); !strings.Contains(h.Reason, "too many open files") {
		t.Errorf("degraded for %q, want the write error", h.Reason)
	}
	// While no descriptor is free: scraping and evaluating need none.
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if v := query(ctx, m, broker.MetricDegraded); v != 1 {
			return fmt.Errorf("%s is %v, want 1", broker.MetricDegraded, v)
		}
		return alertState(m, alerting.StatePending)
	})
	if v := query(ctx, m, broker.MetricStoreErrors); v < 1 {
		t.Errorf("%s is %v while degraded, want at least 1", broker.MetricStoreErrors, v)
	}

	// The flood ends.
	restore()
	waitHealth(t, b, broker.StateOK)
	if h := b.Health(); h.Recoveries != 1 {
		t.Errorf("recoveries %d, want 1", h.Recoveries)
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if v := query(ctx, m, broker.MetricDegraded); v != 0 {
			return fmt.Errorf("%s is %v after healing, want 0", broker.MetricDegraded, v)
		}
		if v := query(ctx, m, broker.MetricRestarts); v != 1 {
			return fmt.Errorf("%s is %v after healing, want 1", broker.MetricRestarts, v)
		}
		return alertState(m, "")
	})
	for i := 200; i < 260; i++ { // past the next block
		if err := publish(i); err != nil {
			t.Fatalf("publish %d after healing: %v", i, err)
		}
	}
	for seq, id := range acked {
		m, err := func() (*jetstream.RawStreamMsg, error) {
			s, err := js.Stream(ctx, "FLOOD")
			if err != nil {
				return nil, err
			}
			return s.GetMsg(ctx, seq)
		}()
		if err != nil {
			t.Errorf("acknowledged %s (seq %d): %v", id, seq, err)
			continue
		}
		if !strings.HasPrefix(string(m.Data), id+":") {
			t.Errorf("seq %d holds %.10q, want %s", seq, m.Data, id)
		}
	}
}

// startMetrics runs nubo's metrics component on reg, scraped in process
// every 50ms, with the rules `nubo up` evaluates for an empty spec: the
// built-in ones.
func startMetrics(t *testing.T, reg *prometheus.Registry) *metrics.Metrics {
	t.Helper()
	app, err := spec.Parse("nubo.yaml", []byte("name: heal\n"))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := rulegroups.Build(app)
	if err != nil {
		t.Fatal(err)
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m, err := metrics.New(metrics.Config{
		Dir: t.TempDir(), Interval: 50 * time.Millisecond, Rules: groups,
		Targets: metrics.TargetFunc(func() []metrics.Target { return []metrics.Target{metrics.EngineTarget(h, "nubo")} }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m
}

// query is the value of expr now, or -1 when it has none.
func query(ctx context.Context, m *metrics.Metrics, expr string) float64 {
	v, err := m.Query(ctx, expr, time.Now())
	if err != nil || len(v) != 1 {
		return -1
	}
	return v[0].F
}

// alertState checks the broker_degraded alert is in state want, or absent
// for "".
func alertState(m *metrics.Metrics, want alerting.State) error {
	var got alerting.State
	for _, a := range m.Alerts() {
		if a.Labels["alertname"] == rulegroups.BrokerDegradedAlert {
			got = a.State
		}
	}
	if got != want {
		return fmt.Errorf("alert %s is %q, want %q", rulegroups.BrokerDegradedAlert, got, want)
	}
	return nil
}

func waitHealth(t *testing.T, b *broker.Broker, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.Health().State != state {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the broker is %+v, want %s", b.Health(), state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
