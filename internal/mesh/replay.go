package mesh

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// errBodyGone is what an attempt reads when the request body it needs was
// consumed by an earlier attempt beyond the retry buffer.
var errBodyGone = errors.New("mesh: request body no longer available for this attempt")

// errAttemptOver is what a superseded attempt reads: the Transport of a
// failed attempt may still be sending the body when the next one starts.
var errAttemptOver = errors.New("mesh: attempt superseded by a retry")

// replayBody streams a request body to the first attempt while keeping
// what passed in a buffer, up to limit bytes, so that a retry can send it
// again: Envoy's bounded retry buffer. A body larger than limit is still
// streamed, but can no longer be retried.
type replayBody struct {
	limit    int
	gen      atomic.Int32 // current attempt; older views fail
	overflow atomic.Bool

	mu  sync.Mutex // guards the fields below; held while reading src
	src io.Reader
	buf []byte
	pos int // bytes read from src
	eof bool
	err error
}

// view returns the body of a new attempt, reading from the start.
func (rb *replayBody) view() io.ReadCloser {
	return &replayView{rb: rb, gen: rb.gen.Load()}
}

// rewind prepares the next attempt, reporting false if the body cannot be
// replayed. It does not wait for an earlier attempt still reading.
func (rb *replayBody) rewind() bool {
	if rb.overflow.Load() {
		return false
	}
	rb.gen.Add(1)
	return true
}

type replayView struct {
	rb     *replayBody
	gen    int32
	off    int
	closed atomic.Bool
}

func (v *replayView) Read(p []byte) (int, error) {
	rb := v.rb
	if v.closed.Load() || rb.gen.Load() != v.gen {
		return 0, errAttemptOver
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if v.off < len(rb.buf) {
		n := copy(p, rb.buf[v.off:])
		v.off += n
		return n, nil
	}
	if v.off != rb.pos {
		return 0, errBodyGone
	}
	if rb.eof {
		return 0, io.EOF
	}
	if rb.err != nil {
		return 0, rb.err
	}
	n, err := rb.src.Read(p)
	if n > 0 {
		if !rb.overflow.Load() && len(rb.buf)+n <= rb.limit {
			rb.buf = append(rb.buf, p[:n]...)
		} else {
			rb.overflow.Store(true)
		}
		rb.pos += n
		v.off += n
	}
	switch {
	case err == io.EOF:
		rb.eof = true
	case err != nil:
		rb.err = err
	}
	return n, err
}

// Close ends this view only: the caller's body belongs to the server.
func (v *replayView) Close() error {
	v.closed.Store(true)
	return nil
}
