package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// TestScaleFromZeroAndBack: the first invocation starts an instance (a cold
// start), the next one reuses it, the pool goes back to zero after
// idleTimeout, and the next invocation is cold again, on a new process.
func TestScaleFromZeroAndBack(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    scaling: {min: 0, max: 3, idleTimeout: 300ms}
`)
	if st := fx.status(t, "fn"); len(st.Instances) != 0 {
		t.Fatalf("min 0: %d instances before any invocation, want 0", len(st.Instances))
	}
	res, first := fx.invoke(t, "fn", ev("echo", nil))
	if !res.ColdStart || res.InitDuration <= 0 || res.Instance != 1 {
		t.Errorf("first invocation: cold start %v (init %v), instance %d; want a cold start on instance 1", res.ColdStart, res.InitDuration, res.Instance)
	}
	res, second := fx.invoke(t, "fn", ev("echo", nil))
	if res.ColdStart || second.PID != first.PID {
		t.Errorf("second invocation: cold start %v, pid %d; want warm on pid %d", res.ColdStart, second.PID, first.PID)
	}
	if res.Duration <= 0 || res.Status != http.StatusOK {
		t.Errorf("second invocation: duration %v, status %d", res.Duration, res.Status)
	}

	fx.waitInstances(t, "fn", 0)
	if err := syscall.Kill(first.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the idle instance's process %d still exists after scaling to zero (kill 0: %v)", first.PID, err)
	}
	res, third := fx.invoke(t, "fn", ev("echo", nil))
	if !res.ColdStart || third.PID == first.PID || res.Instance != 2 {
		t.Errorf("after scaling to zero: cold start %v, pid %d (was %d), instance %d; want a cold start on instance 2", res.ColdStart, third.PID, first.PID, res.Instance)
	}
	st := fx.status(t, "fn")
	if st.ColdStarts != 2 || st.Invocations != 3 || st.Errors != 0 {
		t.Errorf("status counts %d cold starts, %d invocations, %d errors; want 2, 3, 0", st.ColdStarts, st.Invocations, st.Errors)
	}
	if got := fx.counter(t, "nubo_function_cold_starts_total", map[string]string{"function": "fn"}); got != 2 {
		t.Errorf("nubo_function_cold_starts_total = %v, want 2", got)
	}
	if got := fx.counter(t, "nubo_function_invocations_total", map[string]string{"function": "fn"}); got != 3 {
		t.Errorf("nubo_function_invocations_total = %v, want 3", got)
	}
	if got := fx.counter(t, "nubo_function_duration_seconds", map[string]string{"function": "fn"}); got != 3 {
		t.Errorf("nubo_function_duration_seconds has %v samples, want 3", got)
	}
	if got := fx.counter(t, "nubo_function_gb_seconds_total", map[string]string{"function": "fn"}); got <= 0 {
		t.Errorf("nubo_function_gb_seconds_total = %v, want > 0", got)
	}
	if !strings.Contains(fx.out.String(), "fn-1 stopped (idle for 300ms)") {
		t.Errorf("output does not say the idle instance stopped:\n%s", fx.out)
	}
}

// TestMinInstances: scaling.min instances start with the component and stay
// when idle, so the first invocation is warm.
func TestMinInstances(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    scaling: {min: 2, max: 3, idleTimeout: 100ms}
`)
	fx.waitInstances(t, "fn", 2)
	res, _ := fx.invoke(t, "fn", ev("echo", nil))
	if res.ColdStart {
		t.Error("invocation with scaling.min 2 was a cold start")
	}
	// Idle instances above min would stop by now; those at min must stay.
	time.Sleep(300 * time.Millisecond) // the idle timeout must pass to show nothing happens
	if n := len(fx.status(t, "fn").Instances); n != 2 {
		t.Errorf("%d instances after idling, want scaling.min 2", n)
	}
}

// TestConcurrencyLimit: an instance never runs more than `concurrency`
// invocations at once, and the pool never more than `scaling.max`
// instances; the invocations beyond wait and all succeed.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    timeout: 10s
    concurrency: 2
    scaling: {max: 2}
`)
	const n = 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers []answer
		errs    []error
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := fx.Invoke(context.Background(), "fn", ev("sleep", map[string]int{"ms": 150}))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			var a answer
			if err := json.Unmarshal(res.Body, &a); err != nil {
				errs = append(errs, err)
				return
			}
			answers = append(answers, a)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d invocations failed: %v", len(errs), n, errs)
	}
	pids := map[int]bool{}
	var peak int64
	for _, a := range answers {
		pids[a.PID] = true
		peak = max(peak, a.Peak)
	}
	if len(pids) > 2 {
		t.Errorf("%d instances served, want at most scaling.max 2", len(pids))
	}
	if peak != 2 {
		t.Errorf("the busiest instance ran %d invocations at once, want concurrency 2", peak)
	}
}

// TestQueueFull: with every slot taken and the wait queue full, an
// invocation is refused at once with ErrThrottled (429).
func TestQueueFull(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
    timeout: 10s
    scaling: {max: 1}
`, func(c *Config) { c.QueueDepth = 1 })
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := fx.Invoke(context.Background(), "fn", ev("sleep", map[string]int{"ms": 800}))
		errc <- err
	}()
	nubotest.WaitFor(t, 20*time.Second, func() error {
		if st := fx.status(t, "fn"); st.InFlight != 1 {
			return fmt.Errorf("%d in flight, want 1", st.InFlight)
		}
		return nil
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := fx.Invoke(context.Background(), "fn", ev("echo", nil))
		errc <- err
	}()
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if st := fx.status(t, "fn"); st.Queued != 1 {
			return fmt.Errorf("%d queued, want 1", st.Queued)
		}
		return nil
	})
	_, err := fx.Invoke(context.Background(), "fn", ev("echo", nil))
	if !errors.Is(err, ErrThrottled) || HTTPStatus(err) != http.StatusTooManyRequests {
		t.Errorf("invocation with a full queue: %v (status %d), want ErrThrottled (429)", err, HTTPStatus(err))
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("a running or queued invocation failed: %v", err)
		}
	}
}

// TestTimeout: an invocation without an answer within `timeout` fails with
// ErrTimeout (504). An instance that never answers is killed and replaced;
// one that answers within the recovery grace keeps serving.
func TestTimeout(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  stuck:
    run: FNBIN
    timeout: 400ms
    scaling: {max: 1}
  slow:
    run: FNBIN
    timeout: 300ms
    scaling: {max: 1}
`, func(c *Config) { c.RecoveryGrace = 150 * time.Millisecond })

	t.Run("stuck instance replaced", func(t *testing.T) {
		t.Parallel()
		_, before := fx.invoke(t, "stuck", ev("echo", nil))
		res, err := fx.Invoke(context.Background(), "stuck", ev("hang", nil))
		if !errors.Is(err, ErrTimeout) || HTTPStatus(err) != http.StatusGatewayTimeout {
			t.Fatalf("hanging invocation: %v (status %d), want ErrTimeout (504)", err, HTTPStatus(err))
		}
		if res.Duration < 400*time.Millisecond {
			t.Errorf("timed out after %v, before the 400ms timeout", res.Duration)
		}
		// scaling.max is 1: this waits until the stuck instance is gone.
		_, after := fx.invoke(t, "stuck", ev("echo", nil))
		if after.PID == before.PID {
			t.Errorf("pid %d still serves after it hung; want a new instance", before.PID)
		}
		nubotest.WaitFor(t, 10*time.Second, func() error {
			if err := syscall.Kill(before.PID, 0); !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("the stuck process %d still exists", before.PID)
			}
			return nil
		})
	})
	t.Run("recovered instance kept", func(t *testing.T) {
		t.Parallel()
		_, before := fx.invoke(t, "slow", ev("echo", nil))
		_, err := fx.Invoke(context.Background(), "slow", ev("sleep", map[string]int{"ms": 350}))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("slow invocation: %v, want ErrTimeout", err)
		}
		_, after := fx.invoke(t, "slow", ev("echo", nil))
		if after.PID != before.PID {
			t.Errorf("pid %d replaced by %d though it answered within the recovery grace", before.PID, after.PID)
		}
	})
}

// TestStartFailure: an instance that exits before listening fails the
// invocation with ErrStart and its exit code and last output line; with
// scaling.min, Start itself fails.
func TestStartFailure(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  broken:
    run: FN_START=fail FNBIN
`)
	_, err := fx.Invoke(context.Background(), "broken", ev("echo", nil))
	if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), "exited with code 4") ||
		!strings.Contains(err.Error(), "refusing to start on purpose") {
		t.Errorf("invocation of a function that cannot start: %v; want ErrStart with the exit code and the output", err)
	}
	if st := fx.status(t, "broken"); !strings.Contains(st.LastError, "failed to start") {
		t.Errorf("status last error %q, want the start failure", st.LastError)
	}

	dir := t.TempDir()
	app := loadSpec(t, dir, `
functions:
  broken:
    run: FN_START=fail FNBIN
    scaling: {min: 1}
`)
	f, err := New(Config{App: app, StartTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Start(context.Background())
	defer f.Stop(context.Background())
	if !errors.Is(err, ErrStart) {
		t.Errorf("Start with scaling.min 1 of a function that cannot start: %v, want ErrStart", err)
	}
}

// TestStartTimeout: an instance that never listens fails its cold start
// after StartTimeout and is killed.
func TestStartTimeout(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  deaf:
    run: FN_START=never FNBIN
    timeout: 5s
`, func(c *Config) { c.StartTimeout = 300 * time.Millisecond })
	_, err := fx.Invoke(context.Background(), "deaf", ev("echo", nil))
	if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), "accepted no connection within 300ms") {
		t.Errorf("invocation of a function that never listens: %v, want ErrStart naming the start timeout", err)
	}
	fx.waitInstances(t, "deaf", 0)
}

// TestProcessEvents: the engine's reaper hears of every instance's process
// group when it starts and ends, and the event sink gets the processes'
// starts and exits, named as the output's prefixes are.
func TestProcessEvents(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		tracked = map[int]int{} // pid: +1 per start, -1 per end
		events  []supervisor.Event
	)
	app := loadSpec(t, t.TempDir(), `
functions:
  fn:
    run: FNBIN
`)
	f, err := New(Config{
		App: app,
		Track: func(pgid int, alive bool) {
			mu.Lock()
			defer mu.Unlock()
			if alive {
				tracked[pgid]++
			} else {
				tracked[pgid]--
			}
		},
		Events: supervisor.EventFunc(func(e supervisor.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Invoke(context.Background(), "fn", ev("crash", nil)); !errors.Is(err, ErrCrashed) {
		t.Errorf("crash: %v", err)
	}
	if _, err := f.Invoke(context.Background(), "fn", ev("echo", nil)); err != nil {
		t.Fatal(err)
	}
	if err := f.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tracked) != 2 {
		t.Errorf("%d process groups tracked, want 2 (one per instance)", len(tracked))
	}
	for pid, n := range tracked {
		if n != 0 {
			t.Errorf("process group %d: %d more starts than ends", pid, n)
		}
	}
	var kinds []string
	for _, e := range events {
		if e.Service != "fn" || e.Replica != e.ReplicaID-1 {
			t.Errorf("event %+v: want service fn and replica = instance - 1", e)
		}
		kinds = append(kinds, fmt.Sprintf("%d:%s", e.ReplicaID, e.Kind))
	}
	// The crash is reported; the stop of instance 2 is not an exit worth a line.
	if got := strings.Join(kinds, " "); got != "1:Started 1:Exited 2:Started" {
		t.Errorf("events %q, want the starts and the crash", got)
	}
}
