package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// GroupUsage is the resource usage of one process group: what a replica,
// with everything it forked, uses.
type GroupUsage struct {
	// CPUTime is user plus system time of the group's live processes and of
	// the children they have reaped.
	CPUTime time.Duration
	// RSS is the sum of the processes' resident set sizes, in bytes. Pages
	// shared between processes are counted once per process, as ps does;
	// a container runtime's cgroup figure would count them once.
	RSS uint64
	// Processes is the number of live processes in the group.
	Processes int
}

// ReadGroupUsage reads the usage of the process groups whose ids are given,
// with one scan of /proc. Groups with no live process are absent from the
// result. It is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func ReadGroupUsage(pgids []int) (map[int]GroupUsage, error) {
	return readGroupUsage("/proc", pgids)
}

// ResourceUsage is apitype.ResourceUsage: the wire type lives there, so that the API
// changes only where it is declared.
type ResourceUsage = apitype.ResourceUsage

// usageSample is the previous sample of a replica's group, from which the
// next one computes a CPU rate.
type usageSample struct {
	pid     int
	cpuTime time.Duration
	at      time.Time
}

// cpuSince is the CPU time a replica's group used since the previous
// sample: all of it for a new process (a restart), and never less than
// zero (the time of a process that exited unreaped inside the group
// leaves the sum), so that the replica's total only grows.
func (prev usageSample) cpuSince(pid int, u GroupUsage) time.Duration {
	if prev.pid != pid {
		return u.CPUTime
	}
	return max(u.CPUTime-prev.cpuTime, 0)
}

// rate turns two samples of one group into a ResourceUsage. ok is false when
// there is no earlier sample of the same process to compare with.
func (prev usageSample) rate(pid int, u GroupUsage, now time.Time) (ResourceUsage, bool) {
	if prev.pid != pid || !now.After(prev.at) {
		return ResourceUsage{}, false
	}
	// CPU time of a process that exited without being reaped inside the
	// group vanishes from the sum: clamp rather than report negative use.
	d := max(u.CPUTime-prev.cpuTime, 0)
	return ResourceUsage{
		CPU:       d.Seconds() / now.Sub(prev.at).Seconds(),
		RSS:       u.RSS,
		Processes: u.Processes,
		Time:      now,
	}, true
}

// sampleUsage reads the replicas' resource usage from /proc every
// sampleEvery, with one scan for all of them, until ctx is done.
func (s *Supervisor) sampleUsage(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var pids []int
		for _, r := range s.replicas {
			if r.pid > 0 {
				pids = append(pids, r.pid)
			}
		}
		s.mu.Unlock()
		if len(pids) == 0 {
			continue
		}
		usage, err := ReadGroupUsage(pids)
		if errors.Is(err, errors.ErrUnsupported) {
			return
		}
		if err != nil {
			s.log.Debug("read usage", "err", err)
			continue
		}
		now := time.Now()
		s.mu.Lock()
		for _, r := range s.replicas {
			u, ok := usage[r.pid]
			if r.pid == 0 || !ok {
				continue
			}
			r.cpuTotal += r.sample.cpuSince(r.pid, u)
			if ru, ok := r.sample.rate(r.pid, u, now); ok {
				r.usage = &ru
			}
			if r.usage != nil {
				r.usage.CPUSeconds = r.cpuTotal.Seconds()
			}
			r.sample = usageSample{pid: r.pid, cpuTime: u.CPUTime, at: now}
		}
		s.mu.Unlock()
	}
}
