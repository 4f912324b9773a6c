package supervisor

import (
	"fmt"
	"time"
)

// EventKind says what happened to a replica or a service.
type EventKind string

// Event kinds. They follow the kubelet's event reasons where one exists.
const (
	// EventStarted: a replica's process started (PID, Port set).
	EventStarted EventKind = "Started"
	// EventStartFailed: a replica's process could not be started (Message).
	EventStartFailed EventKind = "StartFailed"
	// EventReady: a replica became ready.
	EventReady EventKind = "Ready"
	// EventNotReady: a ready replica's readiness probe failed
	// FailureThreshold times.
	EventNotReady EventKind = "NotReady"
	// EventUnhealthy: a probe failed (Probe, Message). Reported for each
	// consecutive failure up to the probe's FailureThreshold, then no more
	// until it succeeds again.
	EventUnhealthy EventKind = "Unhealthy"
	// EventKilling: a replica is being killed because a probe failed.
	EventKilling EventKind = "Killing"
	// EventExited: a replica's process exited (ExitCode, Signal).
	EventExited EventKind = "Exited"
	// EventBackOff: a replica will be restarted after Delay.
	EventBackOff EventKind = "BackOff"
	// EventFailed: a replica exited and its restart policy does not restart
	// it.
	EventFailed EventKind = "Failed"
	// EventStopped: a replica was stopped by the supervisor.
	EventStopped EventKind = "Stopped"
	// EventScaled: the service's replica count changed (Replica is -1).
	EventScaled EventKind = "Scaled"
	// EventAutoscaled: the autoscaler decided on a replica count; Message
	// says why (Replica is -1).
	EventAutoscaled EventKind = "Autoscaled"
)

// Event is one thing that happened, as a structured value, so that the
// engine can print it in the log stream and the console can list it.
type Event struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Service names the service.
	Service string `json:"service"`
	// Replica is the replica's index, or -1 for a service-level event.
	Replica int `json:"replica"`
	// ReplicaID tells apart two replicas with the same index, as during a
	// roll; IDs are unique within a Supervisor.
	ReplicaID int `json:"replicaID,omitempty"`
	// Kind says what happened; the fields below are set as it says.
	Kind EventKind `json:"kind"`
	// PID is the replica's process id, when it has one.
	PID int `json:"pid,omitempty"`
	// Port is the replica's $PORT (EventStarted).
	Port int `json:"port,omitempty"`
	// Probe names the probe of an EventUnhealthy.
	Probe ProbeKind `json:"probe,omitempty"`
	// ExitCode is set on EventExited and EventFailed: the exit status, or
	// 128+signal as Kubernetes reports it.
	ExitCode int `json:"exitCode,omitempty"`
	// Signal names the signal that killed the process, if one did.
	Signal string `json:"signal,omitempty"`
	// Delay is set on EventBackOff.
	Delay time.Duration `json:"delay,omitempty"`
	// Failures and Threshold count an EventUnhealthy's consecutive failures
	// against the probe's FailureThreshold.
	Failures  int `json:"failures,omitempty"`
	Threshold int `json:"threshold,omitempty"`
	// Message is a human-readable detail.
	Message string `json:"message,omitempty"`
}

// String formats e for a log line, without the time and service.
func (e Event) String() string {
	switch e.Kind {
	case EventStarted:
		return fmt.Sprintf("started (pid %d, port %d)", e.PID, e.Port)
	case EventStartFailed:
		return "failed to start: " + e.Message
	case EventReady:
		return "ready"
	case EventNotReady:
		return "not ready: " + e.Message
	case EventUnhealthy:
		if e.Threshold > 0 {
			return fmt.Sprintf("%s probe failed (%d/%d): %s", e.Probe, e.Failures, e.Threshold, e.Message)
		}
		return fmt.Sprintf("%s probe failed: %s", e.Probe, e.Message)
	case EventKilling:
		return "killing: " + e.Message
	case EventExited:
		if e.Signal != "" {
			return fmt.Sprintf("exited with code %d (%s)", e.ExitCode, e.Signal)
		}
		return fmt.Sprintf("exited with code %d", e.ExitCode)
	case EventBackOff:
		return fmt.Sprintf("restarting in %v", e.Delay)
	case EventFailed:
		return "not restarting: " + e.Message
	case EventStopped:
		return "stopped"
	case EventScaled:
		return e.Message
	case EventAutoscaled:
		return "autoscaler: " + e.Message
	default:
		return string(e.Kind) + ": " + e.Message
	}
}

// EventSink receives events. It is called synchronously from the
// supervisor's goroutines, never with a lock held, so it may call Status;
// it should return quickly.
type EventSink interface {
	Event(Event)
}

// EventFunc adapts a function to an EventSink.
type EventFunc func(Event)

// Event calls f.
func (f EventFunc) Event(e Event) { f(e) }

type discardEvents struct{}

func (discardEvents) Event(Event) {}
