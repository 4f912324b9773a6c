package apitype

import (
	"time"
)

// Function is a snapshot of one function, for `nubo status` and GET
// /v1/functions. Its shape is stable: fields are added, never renamed.
type Function struct {
	// Name names the function.
	Name string `json:"name"`
	// Min, Max and Concurrency are the pool's bounds (scaling.min,
	// scaling.max, concurrency).
	Min         int `json:"min"`
	Max         int `json:"max"`
	Concurrency int `json:"concurrency"`
	// IdleTimeout and Timeout are as the spec says, e.g. "60s".
	IdleTimeout string `json:"idleTimeout"`
	Timeout     string `json:"timeout"`
	// Memory is the memory limit as written, "" when none.
	Memory string `json:"memory,omitempty"`
	// MemoryEnforcement says how Memory is enforced here ("cgroup v2",
	// "cgroup v1", "not enforced: WHY").
	MemoryEnforcement string `json:"memoryEnforcement,omitempty"`
	// Instances are the live instances, by number.
	Instances []FunctionInstance `json:"instances"`
	// InFlight counts the invocations running, Queued those waiting for a
	// slot.
	InFlight int `json:"inFlight"`
	Queued   int `json:"queued"`
	// Invocations, Errors and ColdStarts count since start.
	Invocations uint64 `json:"invocations"`
	Errors      uint64 `json:"errors"`
	ColdStarts  uint64 `json:"coldStarts"`
	// LastError is the last instance failure (a failed start, an exit, an
	// OOM kill), with its time.
	LastError     string    `json:"lastError,omitempty"`
	LastErrorTime time.Time `json:"lastErrorTime,omitzero"`
}

// FunctionInstance is one instance.
type FunctionInstance struct {
	// ID is the instance's number, as its output's prefix shows it.
	ID int `json:"id"`
	// State is starting, ready or draining.
	State string `json:"state"`
	// PID and Port are its process and $PORT, 0 until started.
	PID  int `json:"pid,omitempty"`
	Port int `json:"port,omitempty"`
	// InFlight counts the invocations it runs.
	InFlight int `json:"inFlight"`
	// Invocations counts those it has run.
	Invocations uint64 `json:"invocations"`
	// StartedAt is when its process started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// ColdStartMs is its cold start in milliseconds, 0 while starting.
	ColdStartMs float64 `json:"coldStartMs,omitempty"`
	// IdleSince is when its last invocation ended, zero while busy.
	IdleSince time.Time `json:"idleSince,omitzero"`
	// Usage is the last sample of its CPU and memory.
	Usage *ResourceUsage `json:"usage,omitempty"`
}
