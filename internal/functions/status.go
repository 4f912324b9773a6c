package functions

import (
	"time"

	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Status is a snapshot of one function, for `nubo status` and GET
// /v1/functions. Its shape is stable: fields are added, never renamed.
type Status struct {
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
	Instances []InstanceStatus `json:"instances"`
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

// InstanceStatus is one instance.
type InstanceStatus struct {
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
	Usage *supervisor.ResourceUsage `json:"usage,omitempty"`
}

// Status returns a snapshot of every function that runs, by name.
func (f *Functions) Status() []Status {
	out := make([]Status, 0, len(f.names))
	for _, name := range f.names {
		out = append(out, f.pools[name].status(f.MemoryEnforcement()))
	}
	return out
}

// FunctionStatus returns the snapshot of one function.
func (f *Functions) FunctionStatus(name string) (Status, error) {
	p, err := f.pool(name)
	if err != nil {
		return Status{}, err
	}
	return p.status(f.MemoryEnforcement()), nil
}

func (p *pool) status(enforcement string) Status {
	st := Status{
		Name: p.name, Min: p.min, Max: p.max, Concurrency: p.conc,
		IdleTimeout: p.idle.String(), Timeout: p.timeout.String(), Memory: p.memoryText,
		Invocations: p.invocations.Load(), Errors: p.failures.Load(), ColdStarts: p.coldStarts.Load(),
		Instances: []InstanceStatus{},
	}
	if p.memory > 0 {
		st.MemoryEnforcement = enforcement
	}
	type supOf struct {
		i   int
		sup *supervisor.Supervisor
	}
	var sups []supOf
	p.mu.Lock()
	st.InFlight, st.Queued = p.inUse, len(p.waiters)
	st.LastError, st.LastErrorTime = p.lastErr, p.lastErrAt
	for _, in := range p.instances {
		is := InstanceStatus{ID: in.id, State: in.state.String(), InFlight: in.inflight, Invocations: in.served}
		if in.state != stateStarting {
			is.PID, is.Port, is.StartedAt = in.pid, in.port, in.startedAt
			is.ColdStartMs = float64(in.coldStart) / float64(time.Millisecond)
			if in.inflight == 0 {
				is.IdleSince = in.idleSince
			}
			if in.sup != nil {
				sups = append(sups, supOf{len(st.Instances), in.sup})
			}
		}
		st.Instances = append(st.Instances, is)
	}
	p.mu.Unlock()
	// The supervisors' own locks are taken without the pool's.
	for _, s := range sups {
		if rs := s.sup.Status().Replicas; len(rs) == 1 && rs[0].Usage != nil {
			u := *rs[0].Usage
			st.Instances[s.i].Usage = &u
		}
	}
	return st
}
