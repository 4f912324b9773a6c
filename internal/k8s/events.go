package k8s

import (
	"fmt"
)

// nack is the API version of the NATS JetStream controller's objects.
const nack = "jetstream.nats.io/v1beta2"

// The JetStream names of the app's streams, buckets and subjects. nubo's
// components (`nubo serve events|eventstore`) publish and consume under the
// same names; docs/kubernetes.md lists them. The app's name prefixes each,
// so that several apps can share one NATS cluster.

func queueStream(app, q string) string  { return app + "-queue-" + q }
func queueSubject(app, q string) string { return app + ".queue." + q + ".>" }
func topicStream(app, t string) string  { return app + "-topic-" + t }
func topicSubject(app, t string) string { return app + ".topic." + t + ".>" }
func busStream(app string) string       { return app + "-events" }
func busSubject(app string) string      { return app + ".events.>" }
func storeStream(app string) string     { return app + "-eventstore" }
func storeSubject(app string) string    { return app + ".eventstore.>" }

// hasEvents reports whether the app needs the event dispatcher: anything
// that publishes, routes, schedules or triggers.
func (b *builder) hasEvents() bool {
	a := b.app
	if len(a.Events)+len(a.Rules)+len(a.Queues)+len(a.Topics)+len(a.Schedules) > 0 {
		return true
	}
	for _, f := range a.Functions {
		if len(f.Triggers) > 0 {
			return true
		}
	}
	return false
}

// events renders the JetStream streams and consumers of queues, topics, the
// event bus and the event store. Filters, transforms, targets, retries and
// dead letters are the dispatcher's work, from the spec it reads.
func (b *builder) events() error {
	app := b.app.Name
	for _, name := range sortedKeys(b.app.Queues) {
		q := b.app.Queues[name]
		b.stream("queue-"+name, map[string]any{
			"name":      queueStream(app, name),
			"subjects":  []string{queueSubject(app, name)},
			"retention": "workqueue",
			"maxAge":    dur(q.Retention.Duration),
			"storage":   "file",
		})
		consumer := map[string]any{
			"streamName":    queueStream(app, name),
			"durableName":   "dispatcher",
			"deliverPolicy": "all",
			"ackPolicy":     "explicit",
			"ackWait":       dur(q.Visibility.Duration),
		}
		if q.DeadLetter != nil {
			consumer["maxDeliver"] = q.DeadLetter.MaxReceive
		}
		if q.Type == "fifo" {
			// JetStream orders a consumer, not a subject: one event in
			// flight keeps the order, at the cost of parallelism.
			consumer["maxAckPending"] = 1
			b.warnf(pathOf("queues", name)+".type", "fifo is rendered as one event in flight for the whole queue, not per subject")
		}
		b.consumer("queue-"+name, consumer)
	}
	for _, name := range sortedKeys(b.app.Topics) {
		t := b.app.Topics[name]
		b.stream("topic-"+name, map[string]any{
			"name":      topicStream(app, name),
			"subjects":  []string{topicSubject(app, name)},
			"retention": "interest",
			"storage":   "file",
		})
		for i := range t.Subscriptions {
			durable := fmt.Sprintf("subscription-%d", i)
			b.consumer(fmt.Sprintf("topic-%s-%d", name, i), b.pullConsumer(topicStream(app, name), durable, "new"))
		}
	}
	bus := len(b.app.Events)+len(b.app.Rules) > 0
	for _, fname := range sortedKeys(b.app.Functions) {
		for i, tr := range b.app.Functions[fname].Triggers {
			durable := fmt.Sprintf("function-%s-%d", fname, i)
			switch {
			case tr.Topic != "":
				b.consumer(fmt.Sprintf("topic-%s-%s", tr.Topic, durable), b.pullConsumer(topicStream(app, tr.Topic), durable, "new"))
			case tr.Event != nil:
				bus = true
				b.consumer("events-"+durable, b.pullConsumer(busStream(app), durable, "new"))
			}
		}
	}
	if bus {
		b.stream("events", map[string]any{
			"name":      busStream(app),
			"subjects":  []string{busSubject(app)},
			"retention": "interest",
			"storage":   "file",
		})
		for _, name := range sortedKeys(b.app.Rules) {
			b.consumer("events-rule-"+name, b.pullConsumer(busStream(app), "rule-"+name, "new"))
		}
	}
	if es := b.app.EventStore; es != nil {
		stream := map[string]any{
			"name":       storeStream(app),
			"subjects":   []string{storeSubject(app)},
			"retention":  "limits",
			"storage":    "file",
			"denyDelete": true,
			"denyPurge":  true,
		}
		if es.Retention.Duration > 0 {
			stream["maxAge"] = dur(es.Retention.Duration)
		}
		if es.Compression {
			stream["compression"] = "s2"
		}
		// The event store reads with direct gets and appends several
		// events as one atomic batch (internal/eventstore). Projections
		// need no durable consumer: each reads with an ordered consumer
		// from its checkpoint in the KeyValue bucket.
		stream["allowDirect"] = true
		stream["allowAtomicPublish"] = true
		b.stream("eventstore", stream)
		b.keyValue("eventstore-checkpoints", map[string]any{"bucket": app + "-eventstore-checkpoints", "history": 1, "storage": "file"})
		if len(es.Snapshots) > 0 {
			b.keyValue("eventstore-snapshots", map[string]any{"bucket": app + "-eventstore-snapshots", "history": 1, "storage": "file", "compression": es.Compression})
		}
	}
	return nil
}

// pullConsumer is a durable pull consumer the dispatcher acknowledges
// event by event.
func (b *builder) pullConsumer(stream, durable, deliver string) map[string]any {
	return map[string]any{
		"streamName":    stream,
		"durableName":   durable,
		"deliverPolicy": deliver,
		"ackPolicy":     "explicit",
	}
}

func (b *builder) stream(name string, spec map[string]any) {
	b.addCustom(nack, "Stream", name, "events", map[string]any{"spec": spec})
}

func (b *builder) consumer(name string, spec map[string]any) {
	b.addCustom(nack, "Consumer", name, "events", map[string]any{"spec": spec})
}

func (b *builder) keyValue(name string, spec map[string]any) {
	b.addCustom(nack, "KeyValue", name, "eventstore", map[string]any{"spec": spec})
}
