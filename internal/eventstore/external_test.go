package eventstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestOldServerRefused starts the store on the system's nats-server: one
// older than 2.12 is refused at Start with its version and what is
// missing; a new enough one runs the store.
func TestOldServerRefused(t *testing.T) {
	t.Parallel()
	ext := brokertest.StartExternal(t)
	b, err := broker.New(broker.Config{URL: ext.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: &spec.EventStore{}}, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(ctx)
	if versionAtLeast(ext.Version, minServer) {
		if err != nil {
			t.Fatalf("nats-server %s: %v", ext.Version, err)
		}
		_ = s.Stop(ctx)
		return
	}
	if err == nil || !strings.Contains(err.Error(), "needs 2.12 or newer") || !strings.Contains(err.Error(), strings.TrimPrefix(ext.Version, "v")) {
		t.Fatalf("nats-server %s: start: %v, want a refusal naming the version", ext.Version, err)
	}
}

func TestVersionAtLeast(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"2.12.0": true, "v2.15.3": true, "3.0.0": true, "2.11.9": false, "2.9.10": false, "": false, "x.y": false} {
		if got := versionAtLeast(v, minServer); got != want {
			t.Errorf("versionAtLeast(%q) = %v, want %v", v, got, want)
		}
	}
}
