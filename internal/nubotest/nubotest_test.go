package nubotest

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	n := 0
	WaitFor(t, 10*time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}

	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		calls := 0
		WaitFor(f, 20*time.Millisecond, func() error {
			calls++
			return fmt.Errorf("attempt %d failed", calls)
		})
	}()
	<-done
	if !strings.Contains(f.msg, "condition not met after 20ms: attempt ") {
		t.Errorf("failure message = %q, want the last error", f.msg)
	}
}

func TestRefusedAddr(t *testing.T) {
	t.Parallel()
	addr := RefusedAddr(t)
	// Connections are refused, every time.
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s: connected, want refused", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
	// Nobody else can listen there while the test holds it.
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("listen on %s: succeeded, want address in use", addr)
	}
}
