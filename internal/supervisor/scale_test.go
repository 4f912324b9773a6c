package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func servingConfig(args ...string) ServiceConfig {
	return ServiceConfig{
		Command:         child(append([]string{"-serve"}, args...)...),
		Replicas:        1,
		Port:            8080,
		StopGracePeriod: 5 * time.Second,
	}
}

func pidsOf(st ServiceStatus) []int {
	var pids []int
	for _, r := range st.Replicas {
		pids = append(pids, r.PID)
	}
	return pids
}

func TestScale(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := startSupervisor(t, servingConfig(), rec)
	waitReady(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	if err := s.Scale(ctx, 3); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	st := s.Status()
	if st.Desired != 3 || st.Ready != 3 || len(st.Replicas) != 3 {
		t.Fatalf("after scale up: %+v", st)
	}
	for i, r := range st.Replicas {
		_, body, err := httpGet(r.Port, "/env")
		if err != nil || r.Index != i || !strings.Contains(body, fmt.Sprintf("NUBO_REPLICA=%d", i)) {
			t.Errorf("replica %d: index %d, env %q, %v", i, r.Index, body, err)
		}
	}
	first := st.Replicas[0].PID

	if err := s.Scale(ctx, 1); err != nil {
		t.Fatal(err)
	}
	after := s.Status()
	if after.Desired != 1 || len(after.Replicas) != 1 || after.Replicas[0].PID != first {
		t.Fatalf("after scale down: %+v", after)
	}
	for _, r := range st.Replicas[1:] {
		if alive(r.PID) {
			t.Errorf("removed replica %d (pid %d) still alive", r.Index, r.PID)
		}
	}
	scaled := rec.eventsOf(EventScaled)
	if len(scaled) != 2 || scaled[1].Message != "scaled from 3 to 1 replicas" || scaled[1].Replica != -1 {
		t.Errorf("scaled events = %+v", scaled)
	}

	if err := s.Scale(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Errorf("WaitReady with no replicas: %v", err)
	}
}

func TestRoll(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	cfg := servingConfig("-listen-delay", "300ms")
	cfg.Replicas = 2
	s := startSupervisor(t, cfg, rec)
	waitReady(t, s)
	before := s.Status()

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	after := s.Status()
	if after.Ready != 2 || len(after.Replicas) != 2 {
		t.Fatalf("after roll: %+v", after)
	}
	for i, r := range after.Replicas {
		old := before.Replicas[i]
		if r.Index != i || r.ID == old.ID || r.PID == old.PID || !r.Ready {
			t.Errorf("replica %d not replaced: before %+v after %+v", i, old, r)
		}
		if alive(old.PID) {
			t.Errorf("old replica %d still alive", i)
		}
	}

	// Each old replica was stopped only after its replacement was ready,
	// and never more than one replica was missing... none was: surge 1.
	events := rec.allEvents()
	for i, old := range before.Replicas {
		newID := after.Replicas[i].ID
		ready := slices.IndexFunc(events, func(e Event) bool { return e.Kind == EventReady && e.ReplicaID == newID })
		stopped := slices.IndexFunc(events, func(e Event) bool { return e.Kind == EventStopped && e.ReplicaID == old.ID })
		if ready < 0 || stopped < 0 || stopped < ready {
			t.Errorf("replica %d: new ready at event %d, old stopped at event %d", i, ready, stopped)
		}
	}
}

func TestRollKeepsOldWhenNewNeverReady(t *testing.T) {
	t.Parallel()
	block := filepath.Join(t.TempDir(), "block")
	cfg := servingConfig("-block-file", block)
	cfg.Replicas = 2
	s := startSupervisor(t, cfg, newRecorder(t))
	waitReady(t, s)
	before := s.Status()

	touch(t, block) // new replicas will never listen
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.Roll(ctx)
	if err == nil || !strings.Contains(err.Error(), "replica 0: new replica not ready") {
		t.Fatalf("Roll = %v", err)
	}
	after := s.Status()
	if after.Ready != 2 || !slices.Equal(pidsOf(after), pidsOf(before)) {
		t.Errorf("old replicas not kept: before %v, after %+v", pidsOf(before), after)
	}
}

func TestRestartAll(t *testing.T) {
	t.Parallel()
	cfg := servingConfig()
	cfg.Replicas = 2
	s := startSupervisor(t, cfg, newRecorder(t))
	waitReady(t, s)
	before := s.Status()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.RestartAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	after := s.Status()
	if len(after.Replicas) != 2 {
		t.Fatalf("after restart: %+v", after)
	}
	for i, r := range after.Replicas {
		if r.Index != i || r.PID == before.Replicas[i].PID || r.Restarts != 0 {
			t.Errorf("replica %d: before %+v after %+v", i, before.Replicas[i], r)
		}
		if alive(before.Replicas[i].PID) {
			t.Errorf("old replica %d still alive", i)
		}
	}
}

func TestStopInterruptsRoll(t *testing.T) {
	t.Parallel()
	block := filepath.Join(t.TempDir(), "block")
	s := startSupervisor(t, servingConfig("-block-file", block), newRecorder(t))
	waitReady(t, s)
	touch(t, block)
	errc := make(chan error, 1)
	go func() { errc <- s.Roll(context.Background()) }() // would wait forever
	waitStatus(t, s, func(st ServiceStatus) error {
		if len(st.Replicas) != 2 {
			return fmt.Errorf("%d replicas", len(st.Replicas))
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Error("Roll succeeded after Stop")
	}
	for _, r := range s.Status().Replicas {
		if r.PID != 0 || r.State != StateStopped {
			t.Errorf("after Stop: %+v", r)
		}
	}
}

// TestStopDeadlineWinsOverScaleDown: a replica being removed with a long
// grace period is killed when a later Stop's context ends.
func TestStopDeadlineWinsOverScaleDown(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:         child("-ignore-term", "-say", "armed"),
		Replicas:        2,
		StopGracePeriod: time.Hour,
	}, rec)
	waitFor(t, func() error {
		if n := len(rec.linesOf(Stdout)); n < 2 {
			return fmt.Errorf("%d of 2 replicas armed", n)
		}
		return nil
	})
	doomed := s.Status().Replicas[1].PID

	scaled := make(chan error, 1)
	go func() { scaled <- s.Scale(context.Background(), 1) }()
	waitStatus(t, s, func(st ServiceStatus) error {
		if r := st.Replicas[len(st.Replicas)-1]; !r.Retiring || r.State != StateTerminating {
			return fmt.Errorf("replica 1: %s, retiring %v", r.State, r.Retiring)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = s.Stop(ctx) // may report the deadline
	waitDead(t, doomed)
	if err := <-scaled; err != nil {
		t.Logf("Scale: %v", err)
	}
}
