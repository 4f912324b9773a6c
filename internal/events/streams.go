package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retention of the streams the spec has no field for (see names.go).
const (
	topicMaxAge    = 96 * time.Hour
	busMaxAge      = 24 * time.Hour
	busMaxBytes    = 1 << 30
	scheduleMaxAge = 24 * time.Hour
	deadMaxAge     = 14 * 24 * time.Hour
	// dedupWindow is JetStream's default, written down: a publish with
	// the Nats-Msg-Id of one stored this recently is not stored again.
	dedupWindow = 2 * time.Minute
	// fifoMaxAckPending lets a fifo queue hold many events of a blocked
	// subject (they count as pending) while other subjects move on.
	fifoMaxAckPending = 10000
)

// setUp creates or updates every stream and consumer of the spec, and
// deletes the route consumers the spec no longer has (a removed rule or
// subscription must not keep a topic's events forever). Streams of removed
// queues and topics are kept: they may hold events.
func (d *Dispatcher) setUp(ctx context.Context) error {
	js := d.js
	stream := func(cfg jetstream.StreamConfig) error {
		cfg.Storage = jetstream.FileStorage
		cfg.AllowDirect = true
		cfg.Duplicates = dedupWindow
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("events: stream %s: %w", cfg.Name, err)
		}
		return nil
	}
	if err := stream(jetstream.StreamConfig{
		Name: d.n.busStream(), Subjects: []string{d.n.busSubject()},
		Retention: jetstream.LimitsPolicy, MaxAge: busMaxAge, MaxBytes: busMaxBytes, Discard: jetstream.DiscardOld,
	}); err != nil {
		return err
	}
	if err := stream(jetstream.StreamConfig{
		Name: d.n.deadStream(), Subjects: []string{d.n.deadSubject(">")},
		Retention: jetstream.LimitsPolicy, MaxAge: deadMaxAge,
	}); err != nil {
		return err
	}
	if err := stream(jetstream.StreamConfig{
		Name: d.n.redriveStream(), Subjects: []string{d.n.redriveSubject(">")},
		Retention: jetstream.WorkQueuePolicy, MaxAge: deadMaxAge,
	}); err != nil {
		return err
	}
	if len(d.app.Schedules) > 0 {
		if err := stream(jetstream.StreamConfig{
			Name: d.n.scheduleStream(), Subjects: []string{d.n.scheduleSubject(">")},
			Retention: jetstream.InterestPolicy, MaxAge: scheduleMaxAge,
		}); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(d.queues) {
		q := d.queues[name]
		if err := stream(jetstream.StreamConfig{
			Name: q.streamName, Subjects: []string{d.n.queueSubjects(name)},
			Retention: jetstream.WorkQueuePolicy, MaxAge: q.spec.Retention.Duration,
		}); err != nil {
			return fmt.Errorf("queue %q: %w", name, err)
		}
		if err := q.setUp(ctx, js); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(d.app.Topics) {
		if err := stream(jetstream.StreamConfig{
			Name: d.n.topicStream(name), Subjects: []string{d.n.topicSubject(name)},
			Retention: jetstream.InterestPolicy, MaxAge: topicMaxAge,
		}); err != nil {
			return fmt.Errorf("topic %q: %w", name, err)
		}
	}
	want := map[string]map[string]bool{}
	for _, r := range d.routes {
		for _, src := range r.sources {
			if err := r.setUp(ctx, js, src); err != nil {
				return err
			}
			if want[src.stream] == nil {
				want[src.stream] = map[string]bool{}
			}
			want[src.stream][src.consumer] = true
		}
	}
	owned := map[string]string{d.n.busStream(): "rule-", d.n.redriveStream(): "redrive-", d.n.scheduleStream(): "schedule-"}
	for name := range d.app.Topics {
		owned[d.n.topicStream(name)] = "topic-"
	}
	for streamName, prefix := range owned {
		if err := d.removeStaleConsumers(ctx, streamName, prefix, want[streamName]); err != nil {
			return err
		}
	}
	return nil
}

// removeStaleConsumers deletes the consumers of a stream that carry a
// route prefix and are not wanted.
func (d *Dispatcher) removeStaleConsumers(ctx context.Context, streamName, prefix string, want map[string]bool) error {
	s, err := d.js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("events: stream %s: %w", streamName, err)
	}
	lister := s.ConsumerNames(ctx)
	var stale []string
	for name := range lister.Name() {
		if strings.HasPrefix(name, prefix) && !want[name] {
			stale = append(stale, name)
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("events: stream %s: list consumers: %w", streamName, err)
	}
	for _, name := range stale {
		if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("events: stream %s: delete consumer %s: %w", streamName, name, err)
		}
		d.log.Info("removed the consumer of a route the spec no longer has", "stream", streamName, "consumer", name)
	}
	return nil
}
