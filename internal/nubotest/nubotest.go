// Package nubotest holds the helpers nubo's tests share. It depends on
// nothing but the standard library, so that any package can use it.
package nubotest

import (
	"testing"
	"time"
)

// WaitFor calls cond until it returns nil or timeout passes, and then fails
// the test with cond's last error. It polls quickly at first and backs off
// to 100ms, so that fast conditions are fast and slow ones do not spin.
// Use it instead of sleeping whenever a condition can be observed.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}
