package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Subscription reads the events of a store in order, from a position to
// the end and then as they are appended.
type Subscription struct {
	s    *Store
	f    filter
	cons jetstream.Consumer
	it   jetstream.MessagesContext
	// seen is the position of the last message read, matching or not:
	// a projection's lag is measured from it.
	seen atomic.Uint64
}

// Subscribe starts a subscription at global position from (1 or 0: the
// first event) over the events of streams matching the pattern streams
// and of the given types (none: all). Close it when done.
func (s *Store) Subscribe(ctx context.Context, from uint64, streams string, types []string) (*Subscription, error) {
	f := newFilter(streams, types)
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.subject(s.n)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	cons, err := s.js.OrderedConsumer(ctx, s.n.stream(), cfg)
	if err != nil {
		return nil, fmt.Errorf("subscribe from %d: %w", from, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("subscribe from %d: %w", from, err)
	}
	return &Subscription{s: s, f: f, cons: cons, it: it}, nil
}

// Next returns the next matching event, waiting for one to be appended
// if need be, until ctx is done.
func (sub *Subscription) Next(ctx context.Context) (apitype.RecordedEvent, error) {
	for {
		m, err := sub.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return apitype.RecordedEvent{}, ctx.Err()
			}
			return apitype.RecordedEvent{}, fmt.Errorf("subscription: %w", err)
		}
		ev, ok, err := sub.s.decodeMsg(m, sub.f, &sub.seen)
		if err != nil || ok {
			return ev, err
		}
	}
}

// nextWithin is Next waiting at most wait: a projection fills a batch
// with what has arrived already.
func (sub *Subscription) nextWithin(ctx context.Context, wait time.Duration) (apitype.RecordedEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return sub.Next(ctx)
}

// Close ends the subscription.
func (sub *Subscription) Close() { sub.it.Stop() }

// All iterates over the subscription's events until ctx is done or an
// event cannot be read; the error, if any, is the last pair's.
func (sub *Subscription) All(ctx context.Context) iter.Seq2[apitype.RecordedEvent, error] {
	return func(yield func(apitype.RecordedEvent, error) bool) {
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					yield(ev, err)
				}
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// decodeMsg decodes a consumer's message if it passes f.
func (s *Store) decodeMsg(m jetstream.Msg, f filter, seen *atomic.Uint64) (apitype.RecordedEvent, bool, error) {
	md, err := m.Metadata()
	if err != nil {
		return apitype.RecordedEvent{}, false, fmt.Errorf("subscription: %w", err)
	}
	seen.Store(md.Sequence.Stream)
	return s.decodeMatching(rawMsg{subject: m.Subject(), seq: md.Sequence.Stream, time: md.Timestamp, header: m.Headers(), data: m.Data()}, f)
}
