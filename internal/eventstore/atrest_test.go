package eventstore

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// filesContaining lists the files under dir that hold needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEncryptionKeepsPlaintextOffDisk appends the same event to a store
// with encryption and to one without, each on its own state directory:
// the plaintext is in the second one's files (so the search can find it)
// and nowhere in the first one's, which still reads it back.
func TestEncryptionKeepsPlaintextOffDisk(t *testing.T) {
	t.Parallel()
	secret := []byte("correct horse battery staple 42!")
	plain := fmt.Sprintf(`{"card":"4111-1111-1111-%d"}`, time.Now().UnixNano())
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := startBroker(t, dir)
			es := &spec.EventStore{}
			key := ""
			if encrypted {
				es.Encryption = spec.EventStoreEncryption{Enabled: true, Key: &spec.SecretRef{Secret: "k"}}
				key = string(secret)
			}
			s := newStore(t, b, es, nil, key)
			mustAppend(t, s, "payment-1", apitype.ExpectNoStream, apitype.EventData{ID: "p1", Type: "Charged", Data: []byte(plain), Metadata: []byte(plain)})
			got, _, err := s.ReadStream(context.Background(), "payment-1", 0, false, 10)
			if err != nil || len(got) != 1 || string(got[0].Data) != plain || string(got[0].Metadata) != plain {
				t.Fatalf("read back: %+v, %v", got, err)
			}
			found := filesContaining(t, dir, []byte("4111-1111-1111"))
			switch {
			case encrypted && len(found) > 0:
				t.Fatalf("the plaintext is in %v", found)
			case encrypted && len(filesContaining(t, dir, secret)) > 0:
				t.Fatalf("the key's secret is in the state directory")
			case !encrypted && len(found) == 0:
				t.Fatalf("the plaintext of an unencrypted store is not found under %s: the search proves nothing", dir)
			}
		})
	}
}

func TestEncryptionNeedsTheKey(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	enc := &spec.EventStore{Encryption: spec.EventStoreEncryption{Enabled: true, Key: &spec.SecretRef{Secret: "k"}}}
	if _, err := New(Config{App: &spec.App{Name: "shop", EventStore: enc}, Broker: b, Key: "short"}); err == nil {
		t.Fatal("a 5-byte key was taken")
	}
	s := newStore(t, b, enc, nil, "the first key, long enough")
	mustAppend(t, s, "a", apitype.ExpectAny, ev("x", "T", `{"v":1}`))
	// Another key cannot read what the first sealed; no key cannot either.
	other := newStore(t, b, enc, nil, "another key, long enough too")
	if _, _, err := other.ReadStream(context.Background(), "a", 0, false, 10); err == nil {
		t.Fatal("a store with another key read the event")
	}
	plainStore := newStore(t, b, nil, nil, "")
	if _, _, err := plainStore.ReadStream(context.Background(), "a", 0, false, 10); err == nil {
		t.Fatal("a store without encryption read an encrypted event")
	}
}

func TestCompressionAndRetentionConfigureTheStream(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	s := newStore(t, b, &spec.EventStore{Compression: true, Retention: spec.Duration{Duration: time.Second, Text: "1s"}}, nil, "")
	info, err := b.JetStream().Stream(context.Background(), s.n.stream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.CachedInfo().Config
	if cfg.Compression != jetstream.S2Compression || cfg.MaxAge != time.Second {
		t.Fatalf("stream config: compression %v, max age %v; want s2 and 1s", cfg.Compression, cfg.MaxAge)
	}
	mustAppend(t, s, "old", apitype.ExpectAny, ev("o", "T", `{}`))
	// Retention drops the event once it is older than 1s.
	nubotest.WaitFor(t, 30*time.Second, func() error {
		got, _, err := s.ReadAll(context.Background(), 1, "", nil, 10)
		if err != nil {
			return err
		}
		if len(got) > 0 {
			return fmt.Errorf("%d events still stored", len(got))
		}
		return nil
	})
	// A stream whose events all expired starts again, for the writer that
	// appended them too, and their ids are free again (the window of ids
	// is no longer than the retention).
	if res := mustAppend(t, s, "old", apitype.ExpectNoStream, ev("o", "T", `{}`)); res.FirstVersion != 0 || res.Duplicate {
		t.Fatalf("append after the stream expired: %+v, want version 0, stored", res)
	}
}
