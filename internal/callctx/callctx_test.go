package callctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

type key struct{}

func TestDeadlineWithoutDone(t *testing.T) {
	t.Parallel()
	c := WithTimeout(context.Background(), time.Millisecond)
	if dl, ok := c.Deadline(); !ok || dl.IsZero() {
		t.Fatalf("Deadline() = %v, %v", dl, ok)
	}
	dl, _ := c.Deadline()
	for time.Now().Before(dl) {
		time.Sleep(time.Millisecond)
	}
	// Err sees the deadline without a Done channel or a timer.
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() after the deadline = %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done() after the deadline is not closed")
	}
	c.Cancel()
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() changed after Cancel: %v", err)
	}
}

func TestDoneAtDeadline(t *testing.T) {
	t.Parallel()
	c := WithTimeout(context.Background(), 5*time.Millisecond)
	if c.Err() != nil {
		t.Fatalf("Err() before the deadline = %v", c.Err())
	}
	<-c.Done() // the timer closes it
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v", c.Err())
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	c := WithTimeout(context.Background(), time.Hour)
	done := c.Done()
	c.Cancel()
	<-done
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err() = %v", c.Err())
	}
	// Cancel before Done: Done is closed at once.
	c2 := WithTimeout(context.Background(), time.Hour)
	c2.Cancel()
	<-c2.Done()
}

func TestParentEnds(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	c := WithTimeout(parent, time.Hour)
	if c.Value(key{}) != "v" {
		t.Fatalf("Value = %v", c.Value(key{}))
	}
	if c.Parent() != parent {
		t.Fatal("Parent is not the parent")
	}
	done := c.Done()
	cancel()
	<-done
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err() = %v", c.Err())
	}
	// Without Done, Err still sees the parent's end.
	parent2, cancel2 := context.WithCancel(context.Background())
	c2 := WithTimeout(parent2, time.Hour)
	cancel2()
	if !errors.Is(c2.Err(), context.Canceled) {
		t.Fatalf("Err() = %v", c2.Err())
	}
}

func TestParentDeadlineFirst(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pd, _ := parent.Deadline()
	c := WithTimeout(parent, time.Hour)
	if dl, _ := c.Deadline(); !dl.Equal(pd) {
		t.Fatalf("Deadline() = %v, want the parent's %v", dl, pd)
	}
}

func TestDerivedContexts(t *testing.T) {
	t.Parallel()
	c := WithTimeout(context.Background(), time.Hour)
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	ran := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(ran) })
	stopped := context.AfterFunc(c, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped() {
		t.Fatal("stop() = false before the end")
	}
	c.Cancel()
	<-child.Done()
	<-ran
	if stop() {
		t.Fatal("stop() = true after the function ran")
	}
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("child Err() = %v", child.Err())
	}
	// Registered after the end, a function runs at once.
	again := make(chan struct{})
	context.AfterFunc(c, func() { close(again) })
	<-again
}
