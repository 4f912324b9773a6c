package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

func testLogger() *slog.Logger {
	if os.Getenv("NUBO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	cfg.Logger = testLogger()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  broker.Config
		want string
	}{
		{"no state dir", broker.Config{}, "no state directory"},
		{"bad url", broker.Config{URL: "::nope"}, `url "::nope": not a NATS URL`},
		{"password hidden", broker.Config{URL: "nats://u:secret@%zz"}, "not a NATS URL"},
		{"negative sync", broker.Config{StateDir: "x", SyncInterval: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := broker.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":         "nats://127.0.0.1:4222",
		"nats://user:pw@host:4222":      "nats://user:xxxxx@host:4222",
		"nats://s3cr3t-token@host:4222": "nats://xxxxx@host:4222",
	} {
		if got := broker.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// publishAndRead stores a message in a fresh stream and reads it back.
func publishAndRead(t *testing.T, js jetstream.JetStream, stream, body string) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, stream+".x", []byte(body)); err != nil {
		t.Fatal(err)
	}
	readBack(t, js, stream, body)
}

func readBack(t *testing.T, js jetstream.JetStream, stream, body string) {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != body {
		t.Fatalf("stream %s message 1 = %q, want %q", stream, m.Data, body)
	}
}

func TestEmbeddedKeepsMessagesAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := start(t, broker.Config{StateDir: dir})
	if !b.Embedded() {
		t.Fatal("Embedded() = false without a URL")
	}
	url := b.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL() = %q, want a loopback URL with a real port", url)
	}
	publishAndRead(t, b.JetStream(), "KEEP", "hello")

	// A process reaches the server over TCP, as NUBO_NATS_URL says.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect over TCP to %s: %v", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	readBack(t, js, "KEEP", "hello")
	nc.Close()

	if _, err := os.Stat(filepath.Join(dir, "broker", "jetstream")); err != nil {
		t.Fatalf("no JetStream store under the state dir: %v", err)
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := b.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}

	b2 := start(t, broker.Config{StateDir: dir})
	readBack(t, b2.JetStream(), "KEEP", "hello")
}

func TestStopIsNilSafe(t *testing.T) {
	t.Parallel()
	var b *broker.Broker
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestExternalServer(t *testing.T) {
	t.Parallel()
	ext := brokertest.StartExternal(t)
	b := start(t, broker.Config{URL: ext.URL})
	if b.Embedded() {
		t.Fatal("Embedded() = true with a URL")
	}
	if got := b.ClientURL(); got != ext.URL {
		t.Errorf("ClientURL() = %q, want the external URL %q", got, ext.URL)
	}
	publishAndRead(t, b.JetStream(), "EXT", "over "+ext.Version)
}

func TestExternalServerDown(t *testing.T) {
	t.Parallel()
	b, err := broker.New(broker.Config{URL: "nats://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connect to nats://127.0.0.1:1") {
		t.Fatalf("Start = %v, want a connect error naming the URL", err)
	}
	if !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("Start = %v, want it to wrap nats.ErrNoServers", err)
	}
}

// TestReservedSubjects: a client connecting as user processes do (no
// credentials) cannot publish on a reserved subject, even through
// JetStream, while it can elsewhere; the engine's connection can.
func TestReservedSubjects(t *testing.T) {
	t.Parallel()
	b := start(t, broker.Config{StateDir: t.TempDir(), Reserved: []string{"shop.eventstore.>", "$JS.API.STREAM.DELETE.EVENTS"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := b.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"shop.eventstore.>", "shop.other.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "shop.eventstore.user-1", []byte("engine")); err != nil {
		t.Fatalf("the engine's publish on a reserved subject: %v", err)
	}

	nc, err := nats.Connect(b.ClientURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect as a user process: %v", err)
	}
	defer nc.Close()
	ujs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := ujs.Publish(short, "shop.eventstore.user-1", []byte("forged")); err == nil {
		t.Fatal("a user process published on a reserved subject")
	}
	if err := ujs.DeleteStream(short, "EVENTS"); err == nil {
		t.Fatal("a user process deleted a reserved stream")
	}
	if _, err := ujs.Publish(ctx, "shop.other.x", []byte("fine")); err != nil {
		t.Fatalf("a user process's publish elsewhere: %v", err)
	}
	// Reading stays open to everyone.
	if _, err := ujs.Stream(ctx, "EVENTS"); err != nil {
		t.Fatalf("stream info for a user process: %v", err)
	}

	// Nor through a stream of its own that republishes there: the broker
	// strips the republish as soon as the stream is created.
	side, err := ujs.CreateStream(ctx, jetstream.StreamConfig{Name: "SIDE", Subjects: []string{"side.*"},
		RePublish: &jetstream.RePublish{Source: "side.*", Destination: "shop.eventstore.{{wildcard(1)}}"}})
	if err != nil {
		t.Fatal(err)
	}
	nubotest.WaitFor(t, 10*time.Second, func() error {
		info, err := side.Info(ctx)
		if err != nil {
			return err
		}
		if info.Config.RePublish != nil {
			return fmt.Errorf("SIDE still republishes to %s", info.Config.RePublish.Destination)
		}
		return nil
	})
	if _, err := ujs.Publish(ctx, "side.user-1", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	// A republish elsewhere is left as it is.
	other, err := ujs.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.*"},
		RePublish: &jetstream.RePublish{Source: "other.*", Destination: "copy.{{wildcard(1)}}"}})
	if err != nil {
		t.Fatal(err)
	}

	str, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if n := str.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("the stream holds %d messages, want the engine's and the unreserved one", n)
	}
	if info, err := other.Info(ctx); err != nil || info.Config.RePublish == nil {
		t.Fatalf("a republish outside the reserved subjects was changed: %+v, %v", info, err)
	}
}
