package functions

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors of an invocation; callers branch on them with errors.Is,
// and the platform API answers each with its HTTPStatus.
var (
	// ErrNotFound: no function has that name (404).
	ErrNotFound = errors.New("no such function")
	// ErrBadEvent: the event is not a valid CloudEvent (400).
	ErrBadEvent = errors.New("invalid event")
	// ErrThrottled: the function's wait queue is full, or no instance was
	// free before the invocation's timeout (429).
	ErrThrottled = errors.New("too many invocations")
	// ErrTimeout: no answer within the function's timeout (504).
	ErrTimeout = errors.New("timed out")
	// ErrFunction: the function answered with a non-2xx status (its own
	// status is passed on).
	ErrFunction = errors.New("function failed")
	// ErrCrashed: the instance exited, or its connection broke, before it
	// answered (502).
	ErrCrashed = errors.New("instance failed mid-invocation")
	// ErrOOMKilled: the instance went over its memory limit and the kernel
	// killed it (502).
	ErrOOMKilled = errors.New("OOMKilled")
	// ErrStart: no instance could be started (502).
	ErrStart = errors.New("instance failed to start")
	// ErrTooLarge: the function's answer is larger than the engine keeps
	// (502).
	ErrTooLarge = errors.New("result too large")
	// ErrStopped: the functions component is not running (503).
	ErrStopped = errors.New("functions not running")
	// ErrDeadLettered: every attempt of a delivery failed and the event went
	// to the function's dead-letter queue. The delivery's last error is
	// wrapped too.
	ErrDeadLettered = errors.New("dead-lettered")
)

// Error is a failed invocation: which function and instance, what kind of
// failure (one of the sentinels, for errors.Is) and the detail.
type Error struct {
	// Function names the function.
	Function string
	// Instance is the instance's number, 0 when none was involved.
	Instance int
	// Kind is one of the sentinel errors above.
	Kind error
	// Status is the function's own HTTP status, for ErrFunction.
	Status int
	// Detail says what happened, in a few words.
	Detail string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "function %q", e.Function)
	if e.Instance > 0 {
		fmt.Fprintf(&b, ": instance %d", e.Instance)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the error's kind.
func (e *Error) Unwrap() error { return e.Kind }

// HTTPStatus is the status the platform API answers err with: the
// function's own status when it answered one, else one that says what went
// wrong.
func HTTPStatus(err error) int {
	var fe *Error
	if errors.As(err, &fe) && errors.Is(fe.Kind, ErrFunction) && fe.Status >= 300 {
		return fe.Status
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadEvent):
		return http.StatusBadRequest
	case errors.Is(err, ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrStopped):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrCrashed), errors.Is(err, ErrOOMKilled), errors.Is(err, ErrStart),
		errors.Is(err, ErrTooLarge), errors.Is(err, ErrFunction):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// DeliveryError is a delivery (Deliver, DeliverBatch) whose every attempt
// failed. errors.Is sees both ErrDeadLettered, when the event went to the
// dead-letter queue, and the last attempt's error.
type DeliveryError struct {
	// Function names the function.
	Function string
	// Attempts is the number of invocations tried.
	Attempts int
	// DeadLetterQueue is the queue the events went to, "" when none.
	DeadLetterQueue string
	// Last is the last attempt's error.
	Last error
}

func (e *DeliveryError) Error() string {
	s := fmt.Sprintf("function %q: failed %d attempts", e.Function, e.Attempts)
	if e.DeadLetterQueue != "" {
		s += fmt.Sprintf(", dead-lettered to queue %q", e.DeadLetterQueue)
	}
	return s + ": " + e.Last.Error()
}

// Unwrap returns ErrDeadLettered (when dead-lettered) and the last error.
func (e *DeliveryError) Unwrap() []error {
	if e.DeadLetterQueue != "" {
		return []error{ErrDeadLettered, e.Last}
	}
	return []error{e.Last}
}
