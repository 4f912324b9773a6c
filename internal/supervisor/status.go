package supervisor

import "time"

// State is a replica's lifecycle state.
type State string

// Replica states.
const (
	// StatePending: allocated, its process not started yet.
	StatePending State = "Pending"
	// StateStarting: the process runs and its startup probe has not
	// succeeded yet.
	StateStarting State = "Starting"
	// StateRunning: started (startup probe passed or absent), not ready.
	StateRunning State = "Running"
	// StateReady: started and ready.
	StateReady State = "Ready"
	// StateTerminating: SIGTERM sent, waiting for the process to exit.
	StateTerminating State = "Terminating"
	// StateBackOff: exited, waiting for NextRestart (CrashLoopBackOff).
	StateBackOff State = "BackOff"
	// StateExited: exited with code 0 and not restarted (OnFailure, Never).
	StateExited State = "Exited"
	// StateFailed: exited non-zero, or could not start, and not restarted
	// (Never).
	StateFailed State = "Failed"
	// StateStopped: stopped by the supervisor.
	StateStopped State = "Stopped"
)

// terminal reports whether a replica in state s will never become ready
// again on its own.
func (s State) terminal() bool {
	return s == StateExited || s == StateFailed || s == StateStopped
}

// ServiceStatus is a snapshot of a service.
type ServiceStatus struct {
	// Name names the service.
	Name string `json:"name"`
	// Desired is the number of replicas the supervisor keeps.
	Desired int `json:"desired"`
	// Ready is the number of ready replicas.
	Ready int `json:"ready"`
	// Replicas are ordered by index; during a roll or a scale-down a
	// replica being replaced or removed is listed too, with Retiring set.
	Replicas []ReplicaStatus `json:"replicas"`
}

// ReplicaStatus is a snapshot of one replica.
type ReplicaStatus struct {
	// Index is the replica's ordinal ($NUBO_REPLICA), 0-based.
	Index int `json:"index"`
	// ID is unique within the Supervisor: a replacement keeps the index of
	// the replica it replaces but gets a new ID.
	ID int `json:"id"`
	// Retiring is set on a replica that is being stopped for a scale-down,
	// roll or restart.
	Retiring bool `json:"retiring,omitempty"`
	// State is the lifecycle state.
	State State `json:"state"`
	// Ready says whether the replica should receive traffic.
	Ready bool `json:"ready"`
	// PID is the process (and process group) id, 0 when not running.
	PID int `json:"pid,omitempty"`
	// Port is the replica's $PORT.
	Port int `json:"port"`
	// Restarts counts restarts of this replica (not of earlier ones at the
	// same index).
	Restarts int `json:"restarts"`
	// StartedAt is when the current (or last) process started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// NextRestart is set in StateBackOff.
	NextRestart time.Time `json:"nextRestart,omitzero"`
	// LastExit is the last process exit, nil before the first.
	LastExit *ExitStatus `json:"lastExit,omitempty"`
	// LastError is the last start failure, if any.
	LastError string `json:"lastError,omitempty"`
	// Probes holds the last result of each configured probe that has run.
	Probes map[ProbeKind]ProbeResult `json:"probes,omitempty"`
	// Usage is the last resource sample, nil until two samples exist.
	Usage *ResourceUsage `json:"usage,omitempty"`
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code, or 128+signal if a signal killed the process,
	// as Kubernetes reports it.
	Code int `json:"code"`
	// Signal names the signal that killed the process, if one did.
	Signal string `json:"signal,omitempty"`
	// Time is when the process was reaped.
	Time time.Time `json:"time"`
}

// ProbeResult is the last result of one probe.
type ProbeResult struct {
	// OK says whether the probe succeeded.
	OK bool `json:"ok"`
	// Message says why a probe failed, or what it checked.
	Message string `json:"message,omitempty"`
	// Time is when the probe finished.
	Time time.Time `json:"time"`
	// ConsecutiveFailures counts failures since the last success.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
}
