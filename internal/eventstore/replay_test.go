package eventstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestReplayTimeWindow replays a window of append times to a service: it
// gets exactly the matching events stored in [from, to), in order, in
// batches of the asked size, and the summary counts them.
func TestReplayTimeWindow(t *testing.T) {
	t.Parallel()
	m, h := startReadModel(t)
	s := newStore(t, nil, nil, h, "")
	ctx := context.Background()
	appendMix(t, s, 24, 0)
	all, _, err := s.ReadAll(ctx, 1, "", nil, 100)
	if err != nil || len(all) != 24 {
		t.Fatalf("read all: %d events, %v", len(all), err)
	}
	from, to := all[5].Time, all[19].Time
	var want []uint64
	for _, e := range all {
		inWindow := !e.Time.Before(from) && e.Time.Before(to)
		if inWindow && (e.Type == "UserCreated" || e.Type == "UserRenamed") && e.Stream[:5] == "user-" {
			want = append(want, e.Position)
		}
	}
	var progress []ReplayProgress
	sum, err := s.Replay(ctx, ReplayRequest{
		From: from, To: to, Streams: "user-*", Types: []string{"UserCreated", "UserRenamed"},
		Batch: 2, Target: "service:users/replay",
	}, func(p ReplayProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.positions()); got != fmt.Sprint(want) {
		t.Fatalf("replay delivered %s, want %s", got, fmt.Sprint(want))
	}
	if sum.Events != len(want) || sum.Batches != (len(want)+1)/2 || sum.Failed != 0 || !sum.Done || len(progress) != sum.Batches {
		t.Fatalf("summary %+v after %d progress reports; want %d events", sum, len(progress), len(want))
	}
	for _, b := range m.batches {
		if len(b) > 2 {
			t.Fatalf("a batch of %d events, more than 2", len(b))
		}
	}

	// A failing target: every batch counted failed, replay goes on.
	m.setFailing(true)
	sum, err = s.Replay(ctx, ReplayRequest{Batch: 10, Target: "service:users/replay", Types: []string{"UserCreated"}}, func(ReplayProgress) {})
	if err != nil || sum.Failed != sum.Batches || sum.Batches == 0 || sum.Events != 0 || sum.LastError == "" {
		t.Fatalf("replay to a failing target: %+v, %v", sum, err)
	}
	if _, err := s.Replay(ctx, ReplayRequest{Target: "queue:x"}, func(ReplayProgress) {}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("replay to a queue: %v", err)
	}
}
