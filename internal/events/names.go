package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// names gives the JetStream streams, subjects and consumers of one app.
// Everything carries the app's name so that several apps can share one
// external NATS server. App, queue, topic, rule and schedule names are DNS
// labels (lower-case letters, digits and '-'), so '_' and '.' separate
// them unambiguously.
//
//	stream                subjects                              retention
//	nubo_APP_queue_Q      nubo.APP.queue.Q.m (standard)         work queue, MaxAge = retention
//	                      nubo.APP.queue.Q.f.HASH (fifo: per event subject)
//	nubo_APP_topic_T      nubo.APP.topic.T                      interest, 96h
//	nubo_APP_bus          nubo.APP.bus                          limits, 24h, 1 GiB
//	nubo_APP_schedules    nubo.APP.schedule.S                   interest, 24h
//	nubo_APP_dead         nubo.APP.dead.ROUTE                   limits, 14 days
//	nubo_APP_redrive      nubo.APP.redrive.ROUTE                work queue, 14 days
//
// ROUTE is a route's key: rule.R, topic.T.N (subscription N), schedule.S.
// The dead letters of queues go to their deadLetter queue, not to dead.
type names struct{ app string }

func (n names) queueStream(q string) string   { return "nubo_" + n.app + "_queue_" + q }
func (n names) queueSubjects(q string) string { return "nubo." + n.app + ".queue." + q + ".>" }
func (n names) topicStream(t string) string   { return "nubo_" + n.app + "_topic_" + t }
func (n names) topicSubject(t string) string  { return "nubo." + n.app + ".topic." + t }
func (n names) busStream() string             { return "nubo_" + n.app + "_bus" }
func (n names) busSubject() string            { return "nubo." + n.app + ".bus" }
func (n names) scheduleStream() string        { return "nubo_" + n.app + "_schedules" }
func (n names) scheduleSubject(s string) string {
	return "nubo." + n.app + ".schedule." + s
}
func (n names) deadStream() string                 { return "nubo_" + n.app + "_dead" }
func (n names) deadSubject(route string) string    { return "nubo." + n.app + ".dead." + route }
func (n names) redriveStream() string              { return "nubo_" + n.app + "_redrive" }
func (n names) redriveSubject(route string) string { return "nubo." + n.app + ".redrive." + route }

// queueSubject is where an event with the CloudEvents subject ceSubject is
// stored in queue q. A fifo queue gives each event subject a NATS subject
// of its own, so that the first message of a subject still in the stream
// can be found with one direct get (see queue.isHead).
func (n names) queueSubject(q string, fifo bool, ceSubject string) string {
	if !fifo {
		return "nubo." + n.app + ".queue." + q + ".m"
	}
	sum := sha256.Sum256([]byte(ceSubject))
	return "nubo." + n.app + ".queue." + q + ".f." + hex.EncodeToString(sum[:16])
}

// consumerName turns a route key (rule.x, topic.t.0) into a consumer name,
// which may not contain dots.
func consumerName(routeKey string) string {
	return strings.ReplaceAll(routeKey, ".", "-")
}

// queueConsumer is the one durable consumer of every queue: HTTP workers
// and (later) functions share it, as SQS consumers share a queue.
const queueConsumer = "nubo"
