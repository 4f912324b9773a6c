// Package nubotest holds the helpers nubo's tests share. It depends on
// nothing but the standard library, so that any package can use it.
package nubotest

import (
	"bytes"
	"sync"
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

// Buffer is a bytes.Buffer that goroutines under test write to while the
// test reads it: a command's or an engine's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
