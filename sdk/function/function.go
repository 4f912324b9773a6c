// Package function turns a Go func into a nubo function: a process that
// serves HTTP on $PORT and handles each invocation, a CloudEvent POSTed in
// binary or structured mode (the CloudEvents HTTP binding), by calling the
// func. It is the seed's FunctionHandler.
//
//	func main() {
//		function.Start(func(ctx context.Context, e cloudevents.Event) (any, error) {
//			var in struct{ Email string }
//			if err := e.DataAs(&in); err != nil {
//				return nil, function.Errorf(http.StatusBadRequest, "event %s: %v", e.ID(), err)
//			}
//			return map[string]string{"greeted": in.Email}, nil
//		})
//	}
//
// The same program runs under `nubo up` and as a Knative Service: both POST
// CloudEvents to $PORT and take a 2xx answer as success and its body as the
// result.
//
// # Answers
//
// A handler's result is the answer's body: nil is 204 No Content, []byte is
// sent as application/octet-stream, a string as text/plain, a *Response as
// it says, anything else as JSON. An error is 500 with {"error": "..."}, or
// the status of an error made by Errorf. A panic is recovered and answered
// as an error, so one bad event does not take the instance down.
//
// A batch (application/cloudevents-batch+json, as a queue trigger with
// batchSize above 1 delivers) calls the handler once per event, in order;
// the answer is the JSON array of the results, or the first error, which
// fails the whole batch (nubo retries it, then dead-letters every event).
//
// # Deadlines and shutdown
//
// nubo sends the invocation's deadline in the Nubo-Deadline header; the
// handler's context ends then. On SIGTERM (an idle instance being stopped)
// the server stops taking invocations and lets those in flight finish.
package function

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/nubo-dev/nubo/internal/cebinding"
)

// Handler handles one event; its result becomes the invocation's answer
// (see the package documentation for how each type is written).
type Handler func(ctx context.Context, e event.Event) (any, error)

// DeadlineHeader carries the invocation's deadline, in RFC 3339 with
// nanoseconds. nubo sets it; the handler's context ends at that time.
const DeadlineHeader = "Nubo-Deadline"

// DefaultPort is where Start listens when $PORT is unset, as Knative's
// default container port.
const DefaultPort = "8080"

// shutdownGrace bounds how long in-flight invocations may run after SIGTERM.
// nubo sends SIGKILL a little later anyway.
const shutdownGrace = 10 * time.Second

// maxBody bounds an invocation's body: Lambda's limit for a synchronous
// invocation is 6 MB; nubo's engine has its own, this one protects the
// function when it runs elsewhere.
const maxBody = 32 << 20

// Start serves h on $PORT (DefaultPort when unset) until the process gets
// SIGTERM or SIGINT, then lets in-flight invocations finish and returns. A
// server that cannot start ends the process with exit code 1, as a function
// that cannot listen is of no use.
func Start(h Handler) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	port := os.Getenv("PORT")
	if port == "" {
		port = DefaultPort
	}
	if err := Serve(ctx, net.JoinHostPort("", port), h); err != nil {
		fmt.Fprintf(os.Stderr, "function: %v\n", err)
		os.Exit(1)
	}
}

// Serve serves h on addr until ctx is done, then shuts down gracefully. It
// is Start without the environment and signals, for tests and for programs
// that run more than a function.
func Serve(ctx context.Context, addr string, h Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           NewHandler(h),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// NewHandler returns the http.Handler that Serve serves: it reads the
// CloudEvent (or batch) of each POST and answers with h's result.
func NewHandler(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "a function takes CloudEvents by POST")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx := r.Context()
		if d := r.Header.Get(DeadlineHeader); d != "" {
			if t, err := time.Parse(time.RFC3339Nano, d); err == nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, t)
				defer cancel()
			}
		}
		if cehttp.IsHTTPBatch(r.Header) {
			events, err := cehttp.NewEventsFromHTTPRequest(r)
			if err != nil {
				writeError(w, http.StatusBadRequest, "read the batch of CloudEvents: "+err.Error())
				return
			}
			results := make([]any, 0, len(events))
			for _, e := range events {
				res, err := call(ctx, h, e)
				if err != nil {
					writeResult(w, nil, fmt.Errorf("event %s: %w", e.ID(), err))
					return
				}
				results = append(results, resultValue(res))
			}
			writeJSON(w, http.StatusOK, results)
			return
		}
		// The SDK does not undo the HTTP binding's percent-encoding of
		// ce- header values, which nubo writes.
		if err := cebinding.DecodeHeaders(r.Header); err != nil {
			writeError(w, http.StatusBadRequest, "read the CloudEvent: "+err.Error())
			return
		}
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "read the CloudEvent: "+err.Error())
			return
		}
		res, err := call(ctx, h, *e)
		writeResult(w, res, err)
	})
}

// call runs h, turning a panic into an error that names it.
func call(ctx context.Context, h Handler, e event.Event) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("function handler panicked", "event", e.ID(), "panic", p, "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, e)
}

// Response is a result that sets the HTTP answer itself: for functions
// behind an http trigger or the gateway, which need a status or headers.
type Response struct {
	// Status is the HTTP status; zero means 200.
	Status int
	// Header holds headers to send, Content-Type included.
	Header http.Header
	// Body is written as the handler results are: []byte and string as
	// they are, anything else as JSON; nil sends no body.
	Body any
}

// StatusError is an error with the HTTP status its answer gets.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }

// Unwrap returns the error's cause.
func (e *StatusError) Unwrap() error { return e.Err }

// Errorf returns an error answered with status (e.g. 400 for an event the
// function cannot use; any non-2xx status fails the invocation).
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Err: fmt.Errorf(format, args...)}
}

func writeResult(w http.ResponseWriter, res any, err error) {
	if err != nil {
		status := http.StatusInternalServerError
		var se *StatusError
		if errors.As(err, &se) && se.Status >= 400 {
			status = se.Status
		}
		writeError(w, status, err.Error())
		return
	}
	switch v := res.(type) {
	case nil:
		w.WriteHeader(http.StatusNoContent)
	case *Response:
		writeResponse(w, v)
	case Response:
		writeResponse(w, &v)
	default:
		writeBody(w, http.StatusOK, v)
	}
}

func writeResponse(w http.ResponseWriter, r *Response) {
	for k, vs := range r.Header {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	if r.Body == nil {
		w.WriteHeader(status)
		return
	}
	writeBody(w, status, r.Body)
}

func writeBody(w http.ResponseWriter, status int, v any) {
	setType := func(ct string) {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", ct)
		}
	}
	switch b := v.(type) {
	case []byte:
		setType("application/octet-stream")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	case string:
		setType("text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(b))
	case json.RawMessage:
		setType("application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "encode the result as JSON: "+err.Error())
			return
		}
		setType("application/json")
		w.WriteHeader(status)
		_, _ = w.Write(append(data, '\n'))
	}
}

// resultValue is how one result of a batch appears in the answer's array.
func resultValue(v any) any {
	switch b := v.(type) {
	case []byte:
		return b // base64, as encoding/json writes bytes
	case *Response:
		return resultValue(b.Body)
	case Response:
		return resultValue(b.Body)
	case json.RawMessage:
		return b
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode the result as JSON: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	data, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{strings.TrimSpace(msg)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
