package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Scale sets the number of replicas to n: new replicas get the next
// indexes and Scale returns once they have started; surplus replicas are
// the highest indexes, stopped gracefully (ctx bounds the grace period).
func (s *Supervisor) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return s.errorf("scale: replicas %d is negative", n)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.running("scale"); err != nil {
		return err
	}
	s.mu.Lock()
	active := s.activeLocked()
	from := len(active)
	s.desired = n
	s.mu.Unlock()

	var err error
	switch {
	case n > from:
		indexes := make([]int, 0, n-from)
		for i := from; i < n; i++ {
			indexes = append(indexes, i)
		}
		_, err = s.addReplicas(ctx, indexes)
	case n < from:
		err = s.retire(ctx, active[n:])
	default:
		return nil
	}
	if err != nil {
		return s.errorf("scale %d -> %d: %w", from, n, err)
	}
	s.log.Info("scaled", "from", from, "to", n)
	s.emit(Event{Kind: EventScaled, Replica: -1, Message: fmt.Sprintf("scaled from %d to %d replicas", from, n)})
	return nil
}

// Roll replaces the replicas one at a time, as a Deployment's rolling
// update with maxSurge 1 and maxUnavailable 0: it starts a new replica with
// the same index, waits until it is ready, then stops the old one. If a new
// replica does not become ready before ctx is done (or exits for good), Roll
// stops it, keeps the old one and returns an error.
func (s *Supervisor) Roll(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.running("roll"); err != nil {
		return err
	}
	s.mu.Lock()
	olds := s.activeLocked()
	s.mu.Unlock()
	for _, old := range olds {
		rs, err := s.addReplicas(ctx, []int{old.index})
		if err != nil {
			return s.errorf("roll: %w", err)
		}
		nr := rs[0]
		if err := s.waitReplicaReady(ctx, nr); err != nil {
			_ = s.retire(context.WithoutCancel(ctx), rs)
			return s.errorf("roll: replica %d: new replica not ready: %w", old.index, err)
		}
		if err := s.retire(ctx, []*replica{old}); err != nil {
			return s.errorf("roll: %w", err)
		}
	}
	return nil
}

// RestartAll stops every replica gracefully and starts fresh ones (with new
// ports and restart counts), as `docker compose restart` does; Roll is the
// variant without downtime. It returns once the new processes have
// started.
func (s *Supervisor) RestartAll(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.running("restart"); err != nil {
		return err
	}
	s.mu.Lock()
	olds := s.activeLocked()
	s.mu.Unlock()
	indexes := make([]int, len(olds))
	for i, r := range olds {
		indexes[i] = r.index
	}
	if err := s.retire(ctx, olds); err != nil {
		return s.errorf("restart: %w", err)
	}
	if _, err := s.addReplicas(ctx, indexes); err != nil {
		return s.errorf("restart: %w", err)
	}
	return nil
}

// retire stops replicas gracefully (ctx bounds the grace period), all at
// once, and removes them from the set. s.opMu must be held.
func (s *Supervisor) retire(ctx context.Context, rs []*replica) error {
	s.mu.Lock()
	for _, r := range rs {
		r.retiring = true
	}
	s.notifyLocked()
	s.mu.Unlock()

	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.stop(ctx) })
	}
	wg.Wait()

	s.mu.Lock()
	s.replicas = slices.DeleteFunc(s.replicas, func(r *replica) bool { return slices.Contains(rs, r) })
	s.notifyLocked()
	s.mu.Unlock()
	return errors.Join(errs...)
}
