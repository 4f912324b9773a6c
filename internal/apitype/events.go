package apitype

import (
	"github.com/cloudevents/sdk-go/v2/event"
	"time"
)

// Queue is a queue's depth.
type Queue struct {
	// Name of the queue.
	Name string `json:"name"`
	// Type is standard or fifo.
	Type string `json:"type"`
	// Messages is the events stored: waiting and in flight.
	Messages uint64 `json:"messages"`
	// Waiting is the events not delivered yet.
	Waiting uint64 `json:"waiting"`
	// InFlight is the events delivered and not yet acknowledged (for
	// fifo, with those held behind their subject's head).
	InFlight int `json:"inFlight"`
	// DeadLetterQueue is where failed events go.
	DeadLetterQueue string `json:"deadLetterQueue,omitempty"`
}

// DeadLetter is an event that failed for good, with where and why.
type DeadLetter struct {
	// ID is the dead letter's place in its stream; list, show and redrive
	// take it.
	ID uint64 `json:"id"`
	// Queue is the dead-letter queue that holds it, for a queue's dead
	// letters; empty for those of topics, rules and schedules.
	Queue string `json:"queue,omitempty"`
	DeadLetterInfo
	// Event is the event as it was published.
	Event *event.Event `json:"event"`
}

// DeadLettersResponse lists dead letters.
type DeadLettersResponse struct {
	DeadLetters []DeadLetter `json:"deadLetters"`
}

// DeliveriesResponse is the answer to a receive.
type DeliveriesResponse struct {
	// Messages are the deliveries; empty when none came within wait.
	Messages []Delivery `json:"messages"`
}

// Delivery is an event handed to a queue's worker. The worker acknowledges
// it with Ack, or gives it back with Nack, by ID; without either, it is
// delivered again once the queue's visibility timeout has passed.
type Delivery struct {
	// ID is the receipt to acknowledge the delivery with; it is valid
	// until the delivery is acknowledged or its visibility ends.
	ID string `json:"id"`
	// Attempt counts the deliveries of the event, from 1.
	Attempt int `json:"attempt"`
	// Event is the CloudEvent.
	Event *event.Event `json:"event"`
	// DeadLetter tells where a dead letter failed, when the queue is a
	// dead-letter queue.
	DeadLetter *DeadLetterInfo `json:"deadLetter,omitempty"`
}

// PublishResponse is the answer to a publish.
type PublishResponse struct {
	// Events are the stored events, in the order they came.
	Events []Published `json:"events"`
}

// RedriveRequest says which dead letters go back, and where.
type RedriveRequest struct {
	// IDs of the dead letters; ignored with All.
	IDs []uint64 `json:"ids,omitempty"`
	// All redrives every dead letter of the name.
	All bool `json:"all,omitempty"`
	// To is a queue that receives them all; empty sends each back where
	// it failed: its queue, or its topic subscription, rule or schedule
	// alone (the other subscriptions of a topic do not get it again).
	To string `json:"to,omitempty"`
}

// RedriveResponse lists the dead letters sent back.
type RedriveResponse struct {
	Redriven []Redriven `json:"redriven"`
}

// NackRequest is the optional body of a nack.
type NackRequest struct {
	// Error says why the worker gave the event back.
	Error string `json:"error,omitempty"`
	// Delay before the event is delivered again, e.g. "5s".
	Delay string `json:"delay,omitempty"`
}

// DeadLetterInfo is what nubo records when it dead-letters an event.
type DeadLetterInfo struct {
	// Origin is where the event failed: queue:NAME, topic:NAME, rule:NAME
	// or schedule:NAME.
	Origin string `json:"origin"`
	// Subscription is the index of the topic subscription that failed.
	Subscription string `json:"subscription,omitempty"`
	// Attempts is the deliveries the event had.
	Attempts int `json:"attempts"`
	// LastError is why the last delivery failed.
	LastError string `json:"lastError"`
	// At is when it was dead-lettered.
	At time.Time `json:"at"`
}

// Published is the receipt of one stored event.
type Published struct {
	// ID is the event's id (filled in when it had none).
	ID string `json:"id"`
	// Sequence is its place in the stream.
	Sequence uint64 `json:"sequence"`
	// Duplicate is set when an event with the same source and id was
	// stored in the last two minutes: it was not stored again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Redriven is one dead letter sent back.
type Redriven struct {
	// ID it had as a dead letter.
	ID uint64 `json:"id"`
	// EventID is the event's id.
	EventID string `json:"eventId"`
	// To says where it went: "queue orders", "topic orders subscription
	// 0", "rule welcome", "schedule nightly".
	To string `json:"to"`
}

// QueuesResponse lists the queues' depths: the answer of GET /v1/queues.
type QueuesResponse struct {
	Queues []Queue `json:"queues"`
}
