// Package apitype holds the JSON types of nubo's admin and platform APIs:
// what the engine answers and what the CLI (and any client) decodes. The
// components declare their status types as aliases of these, so a field is
// renamed only here, where the API's shape is decided, never by accident
// inside a component (the pattern of tailscale's client/tailscale/apitype).
//
// Shapes are stable: fields are added, never renamed or removed.
package apitype

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

// ProbeKind names one of a replica's three probes.
type ProbeKind string

// Probe kinds.
const (
	ProbeStartup   ProbeKind = "startup"
	ProbeLiveness  ProbeKind = "liveness"
	ProbeReadiness ProbeKind = "readiness"
)

// KindService is the Kind of a spec service in Service.
const KindService = "service"
