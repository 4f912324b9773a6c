// Package eventstore owns nubo's event store: streams of events with
// optimistic concurrency, reads of one stream or of all of them, catch-up
// subscriptions, projections with checkpoints, snapshots, replay of a time
// window, and encryption of event data at rest, all on the broker's
// JetStream. Handlers (functions, services) get events as CloudEvents. `nubo up` hosts it in
// the engine; `nubo serve eventstore` runs the same code against a NATS
// cluster.
//
// # Storage
//
// One JetStream stream, APP-eventstore, holds every event; an event of the
// stream named S is a message on the subject APP.eventstore.S, so:
//
//   - an event's global position is its JetStream sequence (from 1);
//   - its version in its stream (from 0) is in the Nubo-Version header,
//     written by the append that stored it;
//   - an append carries the subject's last sequence as JetStream's
//     expected last subject sequence, so two writers that read the same
//     head cannot both append (optimistic concurrency, enforced by the
//     server, also across the replicas of `nubo serve eventstore`);
//   - several events are one atomic batch: stored all or none, contiguous;
//   - an event's id is its JetStream message id scoped by its stream
//     (S/ID), so a retried append is recognised (see Append).
//
// Reads use JetStream's batched direct gets (no consumer), subscriptions
// and projections ordered consumers from a position; a projection's
// position is checkpointed in a KV bucket rather than held by a durable
// consumer, so that a rebuild is a reset of one key.
//
// Checkpoints live in the KV bucket APP-eventstore-checkpoints and
// snapshots in APP-eventstore-snapshots. These are the names `nubo render`
// gives the JetStream controller's objects (internal/k8s/events.go).
//
// # Durability
//
// JetStream writes a message to its file before it acknowledges it, and
// the store answers an append only after that acknowledgement: an
// acknowledged append survives kill -9 of nubo (the broker's package doc
// says what a power loss can take).
//
// No library gives an event store on JetStream; the mapping above is small
// and uses JetStream's own checks for everything that must be atomic.
package eventstore
