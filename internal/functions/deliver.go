package functions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Deliver invokes a function with e as a trigger does: a failed invocation
// (an error status, no answer within the timeout, a crash) is retried
// `retry.attempts` times, waiting `retry.backoff` before the first retry and
// twice as long before each next one. When every attempt failed, the event
// goes to the function's `deadLetter` queue, and the error is a
// *DeliveryError (errors.Is(err, ErrDeadLettered) then holds: the event is
// safe, a queue trigger acks it). Without a deadLetter queue, or when
// dead-lettering fails, the error says so and the caller keeps the event
// (a queue's own redelivery applies).
//
// An unknown function, an invalid event, Stop and ctx end the delivery at
// once, without dead-lettering.
func (f *Functions) Deliver(ctx context.Context, name string, e event.Event) (Result, error) {
	p, err := f.pool(name)
	if err != nil {
		return Result{}, err
	}
	// Filled first, so that a dead-lettered event has the id it was sent
	// with.
	if err := fillEvent(&e); err != nil {
		return Result{}, &Error{Function: name, Kind: ErrBadEvent, Detail: err.Error()}
	}
	pl, err := eventPayload(name, e)
	if err != nil {
		return Result{}, err
	}
	return p.deliver(ctx, pl, []event.Event{e})
}

// DeliverBatch is Deliver for a batch (a queue trigger with batchSize above
// 1): the batch is retried whole, and on failure each of its events is
// dead-lettered.
func (f *Functions) DeliverBatch(ctx context.Context, name string, events []event.Event) (Result, error) {
	p, err := f.pool(name)
	if err != nil {
		return Result{}, err
	}
	events = append([]event.Event(nil), events...)
	pl, err := batchPayload(name, events)
	if err != nil {
		return Result{}, err
	}
	return p.deliver(ctx, pl, events)
}

func (p *pool) deliver(ctx context.Context, pl payload, events []event.Event) (Result, error) {
	fctx, err := p.f.running()
	if err != nil {
		return Result{}, &Error{Function: p.name, Kind: ErrStopped}
	}
	// Backoffs end when the component stops, not only with the caller.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(fctx, cancel)()

	attempts := 1 + p.retries
	backoff := p.backoff
	var (
		res  Result
		last error
		n    int
	)
	for n = 1; ; n++ {
		res, last = p.invoke(ctx, pl)
		if last == nil {
			return res, nil
		}
		if !retryable(last) || ctx.Err() != nil || n == attempts {
			break
		}
		p.m.retries.Inc()
		p.log.Debug("invocation failed, retrying", "attempt", n, "backoff", backoff, "err", last)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		backoff *= 2
	}
	if !retryable(last) || ctx.Err() != nil {
		return res, last
	}
	if p.deadLetter == "" {
		return res, &DeliveryError{Function: p.name, Attempts: n, Last: last}
	}
	if err := p.deadLetterAll(ctx, events, n, last, res.Status); err != nil {
		return res, fmt.Errorf("function %q: failed %d attempts (%w), and dead-lettering to queue %q failed: %w", p.name, n, last, p.deadLetter, err)
	}
	return res, &DeliveryError{Function: p.name, Attempts: n, DeadLetterQueue: p.deadLetter, Last: last}
}

// retryable reports whether another attempt may succeed: not for an
// unknown function, a bad event, or a stopped component.
func retryable(err error) bool {
	return !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadEvent) && !errors.Is(err, ErrStopped) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// deadLetterAll hands each event to the dead-letter sink.
func (p *pool) deadLetterAll(ctx context.Context, events []event.Event, attempts int, last error, status int) error {
	sink := p.f.cfg.DeadLetters
	if sink == nil {
		return errors.New("nubo up has no dead-letter sink (the events component is not running)")
	}
	var fe *Error
	if !errors.As(last, &fe) || fe.Kind != ErrFunction {
		status = 0
	}
	now := time.Now()
	var errs []error
	for _, e := range events {
		err := sink.DeadLetter(ctx, DeadLetter{
			Queue: p.deadLetter, Function: p.name, Event: e, Attempts: attempts,
			Error: last.Error(), Status: status, Time: now,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("event %s: %w", e.ID(), err))
			continue
		}
		p.m.deadLetters.Inc()
	}
	return errors.Join(errs...)
}

// DeliverAsync starts Deliver in the background and returns at once; the
// outcome is logged (and dead-lettered as Deliver does). Stop cancels it.
func (f *Functions) DeliverAsync(name string, e event.Event) error {
	if _, err := f.pool(name); err != nil {
		return err
	}
	f.mu.Lock()
	if f.state != stateRunning {
		f.mu.Unlock()
		return &Error{Function: name, Kind: ErrStopped}
	}
	ctx := f.ctx
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		if _, err := f.Deliver(ctx, name, e); err != nil {
			f.log.Warn("asynchronous invocation failed", "function", name, "event", e.ID(), "err", err)
			f.notify(name, fmt.Sprintf("%s: event %s: %v", name, e.ID(), err))
		}
	}()
	return nil
}

// DeliverToFunction delivers one event, or a batch, to a function for the
// events component (it is the method of its events.FunctionDeliverer): a
// nil error means the function took the events, or that every attempt
// failed and they are safe in the function's dead-letter queue; an error
// leaves them to the caller's own retries and dead letters.
func (f *Functions) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	var err error
	switch len(evs) {
	case 0:
		return nil
	case 1:
		_, err = f.Deliver(ctx, name, *evs[0])
	default:
		batch := make([]event.Event, len(evs))
		for i, e := range evs {
			batch[i] = *e
		}
		_, err = f.DeliverBatch(ctx, name, batch)
	}
	if errors.Is(err, ErrDeadLettered) {
		return nil
	}
	return err
}
