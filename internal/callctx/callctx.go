// Package callctx is a context for one call to a backend that ends at a
// deadline, at Cancel, or with its parent, as context.WithTimeout's does,
// but that makes its Done channel, its timer and its watch of the parent
// only when something asks for Done. A proxy's upstream client that only
// needs the deadline (it sets it on its connection, and watches the
// parent alone: Parent) then costs one allocation and no timer, where
// context.WithTimeout and a context.AfterFunc on it cost about nine
// allocations and two timer operations per request.
package callctx

import (
	"context"
	"sync"
	"time"
)

// Context ends at its deadline, when Cancel is called, or when its parent
// ends, whichever comes first. Err reports the end at once, the deadline
// included, whether or not Done was asked for. Context implements the
// AfterFunc method context.AfterFunc looks for, so that contexts derived
// from it need no goroutine to watch it.
type Context struct {
	parent   context.Context
	deadline time.Time

	mu         sync.Mutex
	err        error
	done       chan struct{} // made by the first Done
	timer      *time.Timer   // armed with done
	stopParent func() bool   // the watch of the parent, armed with done
	funcs      []afterFunc   // registered with AfterFunc, run at the end
	nextID     uint64
}

type afterFunc struct {
	id uint64
	f  func()
}

// WithTimeout returns a Context of parent that ends after d, or at
// parent's deadline if that is earlier.
func WithTimeout(parent context.Context, d time.Duration) *Context {
	dl := time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(dl) {
		dl = pd
	}
	return &Context{parent: parent, deadline: dl}
}

// Parent is the context c was made from: with c's deadline, the only
// other end of c until Cancel.
func (c *Context) Parent() context.Context { return c.parent }

// Deadline is c's deadline.
func (c *Context) Deadline() (time.Time, bool) { return c.deadline, true }

// Value is parent's value for key.
func (c *Context) Value(key any) any { return c.parent.Value(key) }

// Err is nil while c lasts, then why it ended: context.DeadlineExceeded
// from the deadline on, context.Canceled after Cancel, or the parent's
// error.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	return c.err
}

// checkLocked ends c if its parent has ended or its deadline has passed.
func (c *Context) checkLocked() {
	if c.err != nil {
		return
	}
	if err := c.parent.Err(); err != nil {
		c.endLocked(err)
	} else if !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
}

// Done is closed when c ends. The first call arms a timer for the
// deadline and a watch of the parent.
func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	c.checkLocked()
	if c.err != nil {
		close(c.done)
		return c.done
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	if c.parent.Done() != nil {
		c.stopParent = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
	}
	return c.done
}

// Cancel ends c, if it has not ended, with context.Canceled. It does not
// wait for what watches c to notice, and a client that watches only the
// deadline and the parent (the upstream client) is not interrupted by it:
// call it when the call is over.
func (c *Context) Cancel() { c.end(context.Canceled) }

func (c *Context) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(err)
}

func (c *Context) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stopParent != nil {
		c.stopParent()
	}
	for _, a := range c.funcs {
		go a.f()
	}
	c.funcs = nil
}

// AfterFunc runs f in its own goroutine once c ends (at once if it has),
// unless stop is called first; stop reports whether it stopped f. It is
// what context.AfterFunc and the contexts derived from c use.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	c.Done() // arms the timer and the parent's watch
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	c.nextID++
	id := c.nextID
	c.funcs = append(c.funcs, afterFunc{id: id, f: f})
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.funcs {
			if a.id == id {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// String names c, as the context package's contexts do.
func (c *Context) String() string { return "callctx.WithTimeout" }
