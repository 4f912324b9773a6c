package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker"
)

// StartEmbedded starts nubo's embedded NATS server with JetStream, its store
// in a temporary directory, and stops it when the test ends.
func StartEmbedded(t testing.TB) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.New(broker.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b
}
