package apitype

import (
	"time"
)

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
	// Addresses are every address the engine serves, by what: console,
	// gateway, ingress (http), ingress-tls (https), broker (the NATS URL).
	Addresses map[string]string `json:"addresses,omitempty"`
	// StateDir is the state directory: data, lock, metrics, secrets.
	StateDir string `json:"stateDir,omitempty"`
	// Services are the spec's services, in the engine's start order.
	Services []Service `json:"services"`
	// Functions are the spec's functions and their instance pools.
	Functions []Function `json:"functions,omitempty"`
	// Databases are the spec's databases, sorted by name.
	Databases []Database `json:"databases,omitempty"`
	// Queues are the queues' depths.
	Queues []Queue `json:"queues,omitempty"`
	// EventStore is the event store's streams, events and projections;
	// absent when the spec has none.
	EventStore *EventStoreStatus `json:"eventStore,omitempty"`
	// Broker is the state of the broker (the embedded NATS server):
	// degraded after a store failure, until it has healed.
	Broker *BrokerHealth `json:"broker,omitempty"`
	// Traces is what the trace store holds and export did.
	Traces *TracesStatus `json:"traces,omitempty"`
	// Skipped lists the sections of the spec nubo up does not run (yet),
	// so that nothing is silently dropped.
	Skipped []Skipped `json:"skipped"`
}

// Service is one service: the supervisor's snapshot (name, desired
// and ready counts, replicas) with what the engine knows around it.
type Service struct {
	ServiceStatus
	// Kind is what runs: "service" today; functions and databases will add
	// their own kinds.
	Kind string `json:"kind"`
	// Scaling is set when the service autoscales.
	Scaling *Scaling `json:"scaling,omitempty"`
}

// Scaling is a service's autoscaler.
type Scaling struct {
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

// ResourceUsage is a replica's sampled resource usage.
type ResourceUsage struct {
	// CPU is the CPU used between the last two samples, in cores (1.0 is
	// one core busy all the time).
	CPU float64 `json:"cpu"`
	// CPUSeconds is the CPU time the replica has used since it was first
	// started, over all its restarts: a counter, which cost and rate()
	// read without the drift a sampled gauge has.
	CPUSeconds float64 `json:"cpuSeconds"`
	// RSS is the resident memory of the replica's process group, in bytes.
	RSS uint64 `json:"rss"`
	// Processes is the number of processes in the group.
	Processes int `json:"processes"`
	// Time is when the sample was taken.
	Time time.Time `json:"time"`
}

// BrokerHealth is the broker's state.
type BrokerHealth struct {
	// State is "ok" or "degraded".
	State string `json:"state"`
	// Reason is the failure that degraded it (the server's error).
	Reason string `json:"reason,omitempty"`
	// Since is when the state last changed.
	Since time.Time `json:"since"`
	// Recoveries counts restarts of the embedded server after a failure.
	Recoveries int `json:"recoveries"`
}

// TracesStatus is the trace store and export of a running engine.
type TracesStatus struct {
	// Spans and Traces count what the store holds; DiskBytes is its
	// folder's size.
	Spans     int   `json:"spans"`
	Traces    int   `json:"traces"`
	DiskBytes int64 `json:"diskBytes"`
	// Dropped counts spans of nubo's own that found the recording queue
	// full.
	Dropped uint64 `json:"dropped"`
	// Export is set when tracing.export.otlp is.
	Export *TraceExportStatus `json:"export,omitempty"`
}

// TraceExportStatus counts what the exporter did.
type TraceExportStatus struct {
	Endpoint string `json:"endpoint"`
	// Sent reached the endpoint; Dropped found the queue full; Failed
	// were lost after every retry; Queued wait.
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
	Failed  uint64 `json:"failed"`
	Queued  int    `json:"queued"`
}

// CostReport is GET /admin/v1/cost: what the running system costs at the
// spec's prices, now and over a past window.
type CostReport struct {
	// Currency is the prices' currency.
	Currency string `json:"currency"`
	// Window is the past window asked for, as given (24h).
	Window string `json:"window"`
	// Rows are the costs by kind and name, sorted.
	Rows []CostRow `json:"rows"`
}

// CostRow is the cost of one service, function or the gateway.
type CostRow struct {
	// Kind is service, function or gateway.
	Kind string `json:"kind"`
	// Name is the service's or function's name; empty for the gateway.
	Name string `json:"name"`
	// PerHour is the cost per hour now, from the nubo:cost_per_hour series.
	PerHour float64 `json:"perHour"`
	// Window is the cost over the window, from the usage counters.
	Window float64 `json:"window"`
	// Month is PerHour over a 730-hour month.
	Month float64 `json:"monthProjected"`
}
