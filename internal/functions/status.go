package functions

import (
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// Status is apitype.Function: the wire type lives there, so that the API
// changes only where it is declared.
type Status = apitype.Function

// InstanceStatus is apitype.FunctionInstance: the wire type lives there, so that the API
// changes only where it is declared.
type InstanceStatus = apitype.FunctionInstance

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
