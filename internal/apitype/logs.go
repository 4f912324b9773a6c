package apitype

import (
	"time"
)

// LogLine is one line of a process's output.
type LogLine struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Replica int       `json:"replica"`
	Stream  string    `json:"stream"` // stdout, stderr, or nubo for engine events
	Text    string    `json:"text"`
	Seq     uint64    `json:"seq"` // increasing over the whole store, for followers
}
