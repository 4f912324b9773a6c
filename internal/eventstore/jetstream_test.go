package eventstore

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/broker"
)

func testLogger() *slog.Logger {
	if os.Getenv("NUBO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// startBroker runs an embedded broker with its state in dir.
func startBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Config{StateDir: dir, Logger: testLogger()})
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

func msg(subject, id string, expSeq int64) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = []byte(id)
	if id != "" {
		m.Header.Set(hdrMsgID, id)
	}
	if expSeq >= 0 {
		m.Header.Set(hdrExpLastSubjSeq, strconv.FormatInt(expSeq, 10))
	}
	return m
}

// TestJetStreamGuarantees checks, on the embedded server, the JetStream
// behaviour the store relies on: the expected last subject sequence
// (including 0: no message yet) refuses a stale writer and is checked
// before the message id, a message id seen within the window is
// acknowledged as a duplicate with the original sequence, and an atomic
// batch is
// stored all or none, checks the expected sequence on its first message,
// and is refused as a whole when it holds a stored message id.
func TestJetStreamGuarantees(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	ctx := context.Background()
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{
		Name: "g", Subjects: []string{"g.>"}, Storage: jetstream.FileStorage,
		AllowDirect: true, AllowAtomicPublish: true, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	nc := b.Conn()

	// Expected 0 on an empty subject: stored; again 0: refused.
	ack, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a1", 0)})
	if err != nil || ack.Seq != 1 {
		t.Fatalf("first publish with expected 0: %+v, %v", ack, err)
	}
	if _, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a2", 0)}); apiCode(err) != errCodeWrongLastSeq {
		t.Fatalf("second publish with expected 0: %v, want error %d", err, errCodeWrongLastSeq)
	}
	// Another subject's sequence does not count.
	if _, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.b", "b1", 0)}); err != nil {
		t.Fatalf("other subject with expected 0: %v", err)
	}
	// A stale expected sequence is refused even though the stream moved on
	// elsewhere; the right one is taken.
	if _, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a2", 2)}); apiCode(err) != errCodeWrongLastSeq {
		t.Fatalf("publish with another subject's last sequence: %v", err)
	}
	if ack, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a2", 1)}); err != nil || ack.Seq != 3 {
		t.Fatalf("publish with the right expected sequence: %+v, %v", ack, err)
	}
	// The same id again with the expected sequence it had the first time
	// (now stale): JetStream checks the sequence before the id, so this is
	// a wrong sequence, not a duplicate. The store therefore recognises a
	// retried append by reading what follows the version it expected.
	if _, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a2", 1)}); apiCode(err) != errCodeWrongLastSeq {
		t.Fatalf("republish of a2 with a stale sequence: %v, want error %d", err, errCodeWrongLastSeq)
	}
	// With the current sequence it is a duplicate of the original.
	ack, err = publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a2", 3)})
	if err != nil || !ack.Duplicate || ack.Seq != 3 {
		t.Fatalf("republish of a2: %+v, %v; want a duplicate of sequence 3", ack, err)
	}

	// An atomic batch with the right expected sequence on its first
	// message: stored, contiguous, acknowledged with the last sequence.
	ack, err = publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "a3", 3), msg("g.a", "a4", -1), msg("g.a", "a5", -1)})
	if err != nil || ack.Seq != 6 || ack.Count != 3 {
		t.Fatalf("batch: %+v, %v; want sequences 4-6", ack, err)
	}
	// A batch with a stale expected sequence: nothing of it is stored.
	if _, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "x1", 3), msg("g.a", "x2", -1)}); apiCode(err) != errCodeWrongLastSeq {
		t.Fatalf("stale batch: %v", err)
	}
	// A batch holding a stored id: refused as a whole.
	if _, err := publishBatch(ctx, nc, []*nats.Msg{msg("g.a", "y1", 6), msg("g.a", "a5", -1)}); apiCode(err) != errCodeBatchDuplicate {
		t.Fatalf("batch with a stored id: %v, want error %d", err, errCodeBatchDuplicate)
	}
	info, err := b.JetStream().Stream(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if st := info.CachedInfo().State; st.Msgs != 6 || st.LastSeq != 6 {
		t.Fatalf("stream holds %d messages up to %d, want 6 up to 6: a refused batch stored something", st.Msgs, st.LastSeq)
	}

	// Batched direct gets: the messages of one subject from a sequence,
	// and the last message of each subject.
	got, err := getBatch(ctx, nc, "g", directGet{Seq: 2, NextFor: "g.a", Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range got {
		ids = append(ids, string(m.data))
	}
	if want := "a2 a3 a4 a5"; joinStr(ids) != want {
		t.Fatalf("next_by_subj g.a from 2 = %s, want %s", joinStr(ids), want)
	}
	last, err := getBatch(ctx, nc, "g", directGet{MultiFor: []string{"g.>"}, Batch: 100})
	if err != nil || len(last) != 2 || last[0].subject != "g.b" || last[1].seq != 6 {
		t.Fatalf("multi_last g.> = %+v, %v", last, err)
	}
	prev, err := getBatch(ctx, nc, "g", directGet{MultiFor: []string{"g.a"}, UpToSeq: 3, Batch: 1})
	if err != nil || len(prev) != 1 || prev[0].seq != 3 {
		t.Fatalf("multi_last g.a up to 3 = %+v, %v", prev, err)
	}
}

func joinStr(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}
