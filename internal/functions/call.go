package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/nubo-dev/nubo/internal/cebinding"
	"github.com/nubo-dev/nubo/sdk/function"
)

// Result is a function's answer to one invocation.
type Result struct {
	// Status is the function's HTTP status.
	Status int
	// ContentType is the type of Body.
	ContentType string
	// Header holds the answer's headers (without hop-by-hop ones and
	// Content-Length), for http triggers to pass on.
	Header http.Header
	// Body is the result.
	Body []byte
	// Duration is how long the function took: from the request sent to the
	// answer read. Waiting for a slot or a cold start is not in it.
	Duration time.Duration
	// ColdStart says whether the invocation waited for an instance to
	// start.
	ColdStart bool
	// InitDuration is that instance's cold start (process start until its
	// port accepted connections), when ColdStart.
	InitDuration time.Duration
	// Instance is the number of the instance that ran it.
	Instance int
}

// payload is an invocation's request, built once and sent on each attempt.
type payload struct {
	header http.Header
	body   []byte
}

// eventPayload encodes e in binary mode. Missing id and time are filled.
func eventPayload(function string, e event.Event) (payload, error) {
	if err := fillEvent(&e); err != nil {
		return payload{}, &Error{Function: function, Kind: ErrBadEvent, Detail: err.Error()}
	}
	req := &http.Request{Header: make(http.Header, 8)}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return payload{}, &Error{Function: function, Kind: ErrBadEvent, Detail: err.Error()}
	}
	cebinding.EncodeHeaders(req.Header)
	return payload{header: req.Header, body: e.Data()}, nil
}

// batchPayload encodes events as a JSON array in structured mode.
func batchPayload(function string, events []event.Event) (payload, error) {
	if len(events) == 0 {
		return payload{}, &Error{Function: function, Kind: ErrBadEvent, Detail: "empty batch"}
	}
	for i := range events {
		if err := fillEvent(&events[i]); err != nil {
			return payload{}, &Error{Function: function, Kind: ErrBadEvent, Detail: fmt.Sprintf("batch[%d]: %v", i, err)}
		}
	}
	body, err := json.Marshal(events)
	if err != nil {
		return payload{}, &Error{Function: function, Kind: ErrBadEvent, Detail: err.Error()}
	}
	h := http.Header{"Content-Type": {event.ApplicationCloudEventsBatchJSON}}
	return payload{header: h, body: body}, nil
}

// fillEvent fills a missing id and time, as nubo does on publish, and
// validates the event. A filled event is a clone: the caller's is left as
// it was (an Event's context is shared by its copies).
func fillEvent(e *event.Event) error {
	if e.Context == nil {
		return errors.New("the event has no attributes")
	}
	if e.SpecVersion() == "" || e.ID() == "" || e.Time().IsZero() {
		*e = e.Clone()
	}
	if e.SpecVersion() == "" {
		e.SetSpecVersion(event.CloudEventsVersionV1)
	}
	if e.ID() == "" {
		e.SetID(uuid.NewString())
	}
	if e.Time().IsZero() {
		e.SetTime(time.Now())
	}
	return e.Validate()
}

// callResult is what an instance answered, or why it did not.
type callResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// invoke runs one invocation: a slot, the call, the result.
func (p *pool) invoke(ctx context.Context, pl payload) (res Result, err error) {
	p.invocations.Add(1)
	p.m.invocations.Inc()
	pl, span := p.startSpan(pl)
	defer func() { p.endSpan(span, res, err) }()
	for try := 1; ; try++ {
		in, cold, err := p.acquire(ctx)
		if err != nil {
			p.fail(err)
			return Result{}, err
		}
		res, err := p.call(ctx, in, pl)
		if errors.Is(err, errNotSent) && try == 1 {
			// The instance died between taking the slot and the call: the
			// function never saw the event, so another instance may.
			continue
		}
		res.Instance, res.ColdStart = in.id, cold
		if cold {
			res.InitDuration = in.coldStart
		}
		if err != nil {
			p.fail(err)
		}
		return res, err
	}
}

// errNotSent marks a call whose connection was refused: nothing reached the
// function.
var errNotSent = errors.New("the connection was refused")

// fail counts a failed invocation by reason.
func (p *pool) fail(err error) {
	p.failures.Add(1)
	p.m.errorFor(err).Inc()
}

// call sends the invocation to the instance holding the caller's slot and
// gives the slot back. At the timeout the caller gets ErrTimeout at once
// while the instance keeps RecoveryGrace to answer after all; if it does
// not, it is stuck and replaced.
func (p *pool) call(ctx context.Context, in *instance, pl payload) (Result, error) {
	reqCtx, cancelReq := context.WithCancel(context.Background())
	h := make(http.Header, len(pl.header)+1)
	for k, v := range pl.header {
		h[k] = v
	}
	start := time.Now()
	h[function.DeadlineHeader] = []string{start.Add(p.timeout).Format(time.RFC3339Nano)}
	// Built by hand: the URL is parsed once per instance, not per call.
	req := (&http.Request{
		Method: http.MethodPost, URL: in.url, Host: in.url.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		ContentLength: int64(len(pl.body)),
	}).WithContext(reqCtx)
	if len(pl.body) > 0 {
		body := pl.body
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	done := make(chan callResult, 1)
	go func() { done <- p.do(req) }()

	t := time.NewTimer(p.timeout)
	select {
	case r := <-done:
		t.Stop()
		cancelReq()
		dur := time.Since(start)
		p.release(in)
		return p.result(in, r, dur)
	case <-ctx.Done():
		t.Stop()
		cancelReq()
		<-done
		p.release(in)
		return Result{Duration: time.Since(start)}, fmt.Errorf("function %q: instance %d: %w", p.name, in.id, ctx.Err())
	case <-t.C:
	}
	dur := time.Since(start)
	p.observe(dur)
	awaitRecovery := func() {
		g := time.NewTimer(p.f.cfg.RecoveryGrace)
		defer g.Stop()
		select {
		case <-done:
		case <-g.C:
			p.markStuck(in, fmt.Sprintf("gave no answer within its timeout %s and %s more", p.timeout, p.f.cfg.RecoveryGrace))
			cancelReq()
			<-done
		}
		cancelReq()
		p.release(in)
	}
	if !p.spawn(awaitRecovery) {
		cancelReq()
		<-done
		p.release(in)
	}
	return Result{Duration: dur}, &Error{Function: p.name, Instance: in.id, Kind: ErrTimeout, Detail: "no answer within " + p.timeout.String()}
}

// do sends the request and reads the whole answer, up to MaxResultBytes.
func (p *pool) do(req *http.Request) callResult {
	resp, err := p.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			err = fmt.Errorf("%w: %w", errNotSent, err)
		}
		return callResult{err: err}
	}
	defer resp.Body.Close()
	limit := p.f.cfg.MaxResultBytes
	var body []byte
	if n := resp.ContentLength; n > limit {
		err = ErrTooLarge
	} else if n >= 0 {
		body = make([]byte, n)
		_, err = io.ReadFull(resp.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err == nil && int64(len(body)) > limit {
			err = ErrTooLarge
		}
	}
	if errors.Is(err, ErrTooLarge) {
		return callResult{status: resp.StatusCode, err: err}
	}
	if err != nil {
		return callResult{err: err}
	}
	return callResult{status: resp.StatusCode, header: resp.Header, body: body}
}

// result turns what the instance answered into the invocation's outcome.
func (p *pool) result(in *instance, r callResult, dur time.Duration) (Result, error) {
	if r.err != nil {
		if errors.Is(r.err, ErrTooLarge) {
			p.observe(dur)
			return Result{Status: r.status, Duration: dur}, &Error{Function: p.name, Instance: in.id, Kind: ErrTooLarge,
				Detail: fmt.Sprintf("the answer is larger than %d bytes", p.f.cfg.MaxResultBytes)}
		}
		err := p.crashError(in, r.err)
		if errors.Is(r.err, errNotSent) {
			err = fmt.Errorf("%w (%w)", err, errNotSent)
		}
		return Result{Duration: dur}, err
	}
	p.observe(dur)
	res := Result{Status: r.status, ContentType: r.header.Get("Content-Type"), Header: answerHeader(r.header), Body: r.body, Duration: dur}
	if !statusOK(r.status) {
		return res, &Error{Function: p.name, Instance: in.id, Kind: ErrFunction, Status: r.status,
			Detail: fmt.Sprintf("answered %d: %s", r.status, errorText(r.body))}
	}
	return res, nil
}

// observe records an invocation's duration and its GB-seconds.
func (p *pool) observe(dur time.Duration) {
	p.m.duration.Observe(dur.Seconds())
	mem := p.memory
	if mem <= 0 {
		mem = DefaultMemory
	}
	p.m.gbSeconds.Add(float64(mem) / (1 << 30) * dur.Seconds())
}

// crashWait bounds how long a broken call waits to learn whether the
// instance died.
const crashWait = time.Second

// crashError explains a call whose connection broke: the process died
// (OOMKilled when its cgroup says so), or something else went wrong.
func (p *pool) crashError(in *instance, err error) error {
	t := time.NewTimer(crashWait)
	defer t.Stop()
	select {
	case <-in.exited:
	case <-t.C:
		return &Error{Function: p.name, Instance: in.id, Kind: ErrCrashed, Detail: "the connection failed: " + unwrapURLError(err).Error()}
	}
	if in.oom {
		return &Error{Function: p.name, Instance: in.id, Kind: ErrOOMKilled,
			Detail: fmt.Sprintf("over its memory limit of %s, killed by the kernel (exit code %d)", p.memoryText, in.exit.Code)}
	}
	return &Error{Function: p.name, Instance: in.id, Kind: ErrCrashed, Detail: in.exitError("mid-invocation").Error()}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorText is the message of a function's error answer: its JSON "error"
// field, else the start of its body.
func errorText(body []byte) string {
	var doc struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Error != "" {
		return doc.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(no body)"
	}
	return s
}

// hopHeaders are not passed on from a function's answer.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer", "Content-Length", "Date"}

// answerHeader drops the hop-by-hop headers of an answer, in place: the
// response's header map is the caller's once read.
func answerHeader(h http.Header) http.Header {
	for _, k := range hopHeaders {
		delete(h, k)
	}
	return h
}

// durationMs writes a duration in milliseconds for headers.
func durationMs(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}
