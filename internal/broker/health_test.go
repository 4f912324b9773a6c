package broker_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/broker"
)

// TestHealsAfterWriteError takes every file descriptor from the process,
// as a flood of connections did, while the embedded server needs a new
// block file: the write fails ("too many open files"), the stream refuses
// publishes from then on, and Health says degraded. Once the descriptors
// are back, the broker restarts the embedded server by itself: publishes
// succeed again on the same connection, and every publish acknowledged
// before, during or after is in the stream.
//
// Not parallel: it lowers the whole process's open-file limit for a while.
func TestHealsAfterWriteError(t *testing.T) {
	b := start(t, broker.Config{StateDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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

	// The flood ends.
	restore()
	waitHealth(t, b, broker.StateOK)
	if h := b.Health(); h.Recoveries != 1 {
		t.Errorf("recoveries %d, want 1", h.Recoveries)
	}
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
