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
//   - its version in its stream (from 0), id and type are in the envelope
//     before its data (codec.go), written by the append that stored it;
//   - several events are one atomic batch: stored all or none, contiguous;
//   - optimistic concurrency and idempotent appends are checked either by
//     the store itself, when it is the only writer (nubo up, whose broker
//     reserves the subjects to it; sole.go), or by JetStream: the
//     subject's last sequence as the expected last subject sequence, the
//     event's id scoped by its stream (S/ID) as the message id, which
//     holds across the replicas of `nubo serve eventstore` (see Append).
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
// No library gives an event store on JetStream; the mapping above is small,
// and where the store is not the only writer it uses JetStream's own checks
// for everything that must be atomic.
package eventstore
