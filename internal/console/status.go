package console

import (
	"context"
	"errors"
	"time"

	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Backend is what the admin API needs from a running engine. internal/engine
// implements it; the console only reads and asks, it never owns the parts.
type Backend interface {
	// Status returns a snapshot of the running system.
	Status() Status
	// RestartService replaces every replica of the named service, one by one
	// as a roll does, and returns once the restart has begun. An unknown
	// name gives an error wrapping ErrNotFound, which the API answers with
	// 404.
	RestartService(ctx context.Context, name string) error
	// Shutdown asks the engine to stop and returns at once; the engine stops
	// the console last, so the answer to the request still goes out.
	Shutdown()
}

// ErrNotFound is wrapped by a Backend's error when the thing named does not
// exist.
var ErrNotFound = errors.New("not found")

// Status is the document of GET /admin/v1/status and `nubo status --output
// json`. Its shape is stable: fields are added, never renamed or removed.
type Status struct {
	// App is the application's name.
	App string `json:"app"`
	// Namespace is the spec's namespace (a label locally).
	Namespace string `json:"namespace"`
	// Spec is the spec file the engine runs, as the user named it.
	Spec string `json:"spec"`
	// PID is the engine's process id.
	PID int `json:"pid"`
	// Started is when the engine started.
	Started time.Time `json:"started"`
	// Console is the address the console listens on.
	Console string `json:"console"`
	// Services are the spec's services, in the engine's start order.
	Services []ServiceStatus `json:"services"`
	// Functions are the spec's functions and their instance pools.
	Functions []functions.Status `json:"functions,omitempty"`
	// Queues are the queues' depths.
	Queues []events.QueueStatus `json:"queues,omitempty"`
	// Skipped lists the sections of the spec nubo up does not run (yet),
	// so that nothing is silently dropped.
	Skipped []Skipped `json:"skipped"`
}

// ServiceStatus is one service: the supervisor's snapshot (name, desired
// and ready counts, replicas) with what the engine knows around it.
type ServiceStatus struct {
	supervisor.ServiceStatus
	// Kind is what runs: "service" today; functions and databases will add
	// their own kinds.
	Kind string `json:"kind"`
	// Scaling is set when the service autoscales.
	Scaling *ScalingStatus `json:"scaling,omitempty"`
}

// KindService is the Kind of a spec service.
const KindService = "service"

// ScalingStatus is a service's autoscaler.
type ScalingStatus struct {
	// Min and Max bound the replica count.
	Min int `json:"min"`
	Max int `json:"max"`
	// LastDecision says what the last decision was and why, e.g. "cpu 140%
	// of 70% target: 2 -> 4"; empty before the first one.
	LastDecision string `json:"lastDecision,omitempty"`
	// LastDecisionTime is when it was taken.
	LastDecisionTime time.Time `json:"lastDecisionTime,omitzero"`
}

// Skipped is a section of the spec that the engine does not run.
type Skipped struct {
	// Section is the spec's top-level key, e.g. "functions".
	Section string `json:"section"`
	// Reason says why and what is left out.
	Reason string `json:"reason"`
}
