package supervisor

import (
	"github.com/nubo-dev/nubo/internal/apitype"
)

// State is a replica's lifecycle state (apitype.State, the wire type).
type State = apitype.State

// Replica states.
const (
	StatePending     = apitype.StatePending
	StateStarting    = apitype.StateStarting
	StateRunning     = apitype.StateRunning
	StateReady       = apitype.StateReady
	StateTerminating = apitype.StateTerminating
	StateBackOff     = apitype.StateBackOff
	StateExited      = apitype.StateExited
	StateFailed      = apitype.StateFailed
	StateStopped     = apitype.StateStopped
)

// terminal reports whether a replica in state s will never become ready
// again on its own.
func terminal(s State) bool {
	return s == StateExited || s == StateFailed || s == StateStopped
}

// ServiceStatus is apitype.ServiceStatus: the wire type lives there, so that the API
// changes only where it is declared.
type ServiceStatus = apitype.ServiceStatus

// ReplicaStatus is apitype.ReplicaStatus: the wire type lives there, so that the API
// changes only where it is declared.
type ReplicaStatus = apitype.ReplicaStatus

// ExitStatus is apitype.ExitStatus: the wire type lives there, so that the API
// changes only where it is declared.
type ExitStatus = apitype.ExitStatus

// ProbeResult is apitype.ProbeResult: the wire type lives there, so that the API
// changes only where it is declared.
type ProbeResult = apitype.ProbeResult
