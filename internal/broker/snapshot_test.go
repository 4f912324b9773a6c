package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/broker"
)

// A stream's snapshot, left in the restore folder of another state
// directory, comes back with every message (and a KV bucket's keys) when
// that directory's embedded server starts.
func TestSnapshotRestoredAtNextStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := start(t, broker.Config{StateDir: t.TempDir()})
	js := b.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("orders.%d", i%7), fmt.Appendf(nil, "order %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "prefs"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "theme", "dark"); err != nil {
		t.Fatal(err)
	}
	names, err := b.StreamNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[0] != "KV_prefs" || names[1] != "ORDERS" {
		t.Fatalf("streams = %v, want KV_prefs and ORDERS", names)
	}

	other := t.TempDir()
	dir := filepath.Join(other, broker.RestoreDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var buf bytes.Buffer
		snap, err := b.SnapshotStream(ctx, name, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Config.Name != name || buf.Len() == 0 {
			t.Fatalf("snapshot of %s: config %q, %d bytes", name, snap.Config.Name, buf.Len())
		}
		meta, _ := json.Marshal(snap)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), meta, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".snap"), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	b2 := start(t, broker.Config{StateDir: other})
	js2 := b2.JetStream()
	s, err := js2.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != n {
		t.Fatalf("restored ORDERS holds %d messages, want %d", got, n)
	}
	m, err := s.GetMsg(ctx, n)
	if err != nil || string(m.Data) != fmt.Sprintf("order %d", n-1) {
		t.Fatalf("last message = %v, %v", m, err)
	}
	kv2, err := js2.KeyValue(ctx, "prefs")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv2.Get(ctx, "theme"); err != nil || string(e.Value()) != "dark" {
		t.Fatalf("restored prefs.theme = %v, %v", e, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the restore folder is still there after the restore: %v", err)
	}
}
