package supervisor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pods builds replica metrics: a number is a ready replica using that many
// cores (and 1 MiB per core of memory), "u:N" an unready one, "-" one with
// no metrics yet.
func pods(spec ...string) []ReplicaMetrics {
	var out []ReplicaMetrics
	for _, s := range spec {
		if s == "-" {
			out = append(out, ReplicaMetrics{Ready: true})
			continue
		}
		ready := true
		if v, ok := strings.CutPrefix(s, "u:"); ok {
			ready, s = false, v
		}
		var cpu float64
		if _, err := fmt.Sscan(s, &cpu); err != nil {
			panic(err)
		}
		out = append(out, ReplicaMetrics{Ready: ready, Usage: &ResourceUsage{CPU: cpu, RSS: uint64(cpu * (1 << 20))}})
	}
	return out
}

func mustPolicy(t *testing.T, p AutoscalePolicy) AutoscalePolicy {
	t.Helper()
	a, err := NewAutoscaler(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy()
}

func TestDesiredReplicas(t *testing.T) {
	t.Parallel()
	cpu := AutoscalePolicy{MaxReplicas: 100, CPURequest: 1, TargetCPUUtilization: 50}
	both := cpu
	both.MemoryRequest, both.TargetMemoryUtilization = 1<<20, 50
	memOnly := AutoscalePolicy{MaxReplicas: 100, MemoryRequest: 1 << 20, TargetMemoryUtilization: 50}
	tests := []struct {
		name    string
		policy  AutoscalePolicy
		current int
		pods    []ReplicaMetrics
		want    int
		wantErr bool
	}{
		{"at target", cpu, 2, pods("0.5", "0.5"), 2, false},
		{"within tolerance above", cpu, 2, pods("0.54", "0.54"), 2, false},
		{"within tolerance below", cpu, 2, pods("0.46", "0.46"), 2, false},
		{"just outside tolerance", cpu, 10, pods("0.56", "0.56", "0.56", "0.56", "0.56", "0.56", "0.56", "0.56", "0.56", "0.56"), 12, false},
		{"double", cpu, 2, pods("1", "1"), 4, false},
		{"ceil", cpu, 3, pods("0.6", "0.6", "0.6"), 4, false},
		{"down", cpu, 4, pods("0.1", "0.1", "0.1", "0.1"), 1, false},
		// Missing metrics count as 0% on a scale-up...
		{"missing on scale-up", cpu, 3, pods("1", "1", "-"), 4, false},
		// ...and as 100% on a scale-down, here enough to flip the direction.
		{"missing flips scale-down", cpu, 4, pods("0.2", "0.2", "-", "-"), 4, false},
		{"missing on scale-down", cpu, 4, pods("0.1", "0.1", "0.1", "-"), 3, false},
		// Unready replicas count as 0% on a CPU scale-up.
		{"unready dampens scale-up", cpu, 4, pods("1", "1", "1", "u:5"), 6, false},
		{"unready cancels scale-up", cpu, 4, pods("1", "1", "u:5", "u:5"), 4, false},
		// ...and are ignored on a scale-down.
		{"unready ignored on scale-down", cpu, 4, pods("0.1", "0.1", "u:0", "u:0"), 1, false},
		{"no metrics", cpu, 2, pods("-", "-"), 2, true},
		// Memory does not set unready replicas aside.
		{"memory counts unready", memOnly, 2, pods("u:1", "u:1"), 4, false},
		// With two metrics the larger recommendation wins.
		{"max of metrics", both, 2, []ReplicaMetrics{
			{Ready: true, Usage: &ResourceUsage{CPU: 0.5, RSS: 3 << 19}},
			{Ready: true, Usage: &ResourceUsage{CPU: 0.5, RSS: 1 << 19}},
		}, 4, false},
		// CPU fails (all unready); memory wants fewer: unsafe, keep.
		{"partial metrics block scale-down", both, 4, pods("u:0.1", "u:0.1", "u:0.1", "u:0.1"), 4, false},
		// CPU fails; memory wants more: fine.
		{"partial metrics allow scale-up", both, 2, pods("u:1", "u:1"), 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, metrics, err := DesiredReplicas(mustPolicy(t, tt.policy), tt.current, tt.pods)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("DesiredReplicas = %d, %v (%v); want %d, error %v", got, err, metrics, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_000_000, 0)
	policy := AutoscalePolicy{MinReplicas: 2, MaxReplicas: 10, CPURequest: 1, TargetCPUUtilization: 50}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// cores returns n ready replicas each using c cores.
	cores := func(n int, c float64) []ReplicaMetrics {
		return pods(strings.Split(strings.TrimSuffix(strings.Repeat(fmt.Sprint(c)+",", n), ","), ",")...)
	}
	type step struct {
		at      time.Duration
		current int
		pods    []ReplicaMetrics
		want    int
		reason  string
	}
	tests := []struct {
		name   string
		policy AutoscalePolicy
		steps  []step
	}{
		{"bounds", policy, []step{
			{0, 1, cores(1, 0), 2, "below min replicas 2: 1 -> 2"},
			{time.Minute, 12, cores(12, 1), 10, "above max replicas 10: 12 -> 10"},
			{2 * time.Minute, 0, nil, 0, "scaled to zero: autoscaling disabled"},
			{3 * time.Minute, 8, cores(8, 1), 10, "capped at max replicas"},
		}},
		{"scale-up rate limit", policy, []step{
			{0, 2, cores(2, 10), 6, "cpu 1000% of 50% target: 2 -> 6 (recommended 40, limited to 6"},
			// Within the same 15s period: 6 is already 2 + 4.
			{10 * time.Second, 6, cores(6, 10), 6, "limited to 6"},
			{26 * time.Second, 6, cores(6, 10), 10, "capped at max replicas"},
		}},
		{"scale-down stabilization", policy, []step{
			{0, 6, cores(6, 0.5), 6, "cpu 50% of 50% target: 6 -> 6"},
			{time.Minute, 6, cores(6, 0.1), 6, "recommended 2, held by the 5m0s scale-down stabilization window"},
			{4 * time.Minute, 6, cores(6, 0.1), 6, "held by the 5m0s scale-down"},
			// The 6 from t0 has left the window; the highest since is 2.
			{5*time.Minute + time.Second, 6, cores(6, 0.1), 2, "cpu 10% of 50% target: 6 -> 2"},
			// A scale-up is not held back by the down window.
			{5*time.Minute + 2*time.Second, 2, cores(2, 1), 4, "cpu 100% of 50% target: 2 -> 4"},
		}},
		{"no stabilization", AutoscalePolicy{MinReplicas: 1, MaxReplicas: 10, CPURequest: 1, TargetCPUUtilization: 50, ScaleDownStabilization: -1}, []step{
			{0, 6, cores(6, 0.5), 6, ""},
			{time.Second, 6, cores(6, 0.1), 2, "6 -> 2"},
		}},
		{"scale-up stabilization", AutoscalePolicy{MaxReplicas: 10, CPURequest: 1, TargetCPUUtilization: 50, ScaleUpStabilization: time.Minute}, []step{
			{0, 2, cores(2, 0.5), 2, ""},
			{10 * time.Second, 2, cores(2, 1), 2, "recommended 4, held by the 1m0s scale-up stabilization window"},
			{61 * time.Second, 2, cores(2, 1), 4, "2 -> 4"},
		}},
		{"tolerance", policy, []step{
			{0, 4, cores(4, 0.53), 4, "cpu 53% of 50% target: 4 -> 4"},
		}},
		{"no metrics", policy, []step{
			{0, 3, pods("-", "-", "-"), 3, "no scaling: cpu: no metrics"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAutoscaler(nil, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				d := a.Decide(at(s.at), s.current, s.pods)
				if d.Desired != s.want || !strings.Contains(d.Reason, s.reason) {
					t.Fatalf("step %d: Decide = %d (%q), want %d (%q)", i, d.Desired, d.Reason, s.want, s.reason)
				}
				if last, ok := a.LastDecision(); !ok || last.Reason != d.Reason {
					t.Errorf("LastDecision = %+v", last)
				}
			}
		})
	}
}

func TestAutoscalePolicyValidation(t *testing.T) {
	t.Parallel()
	s, err := New(ServiceConfig{Name: "api", Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p    AutoscalePolicy
		want string
	}{
		{AutoscalePolicy{MaxReplicas: 3}, "no target"},
		{AutoscalePolicy{MaxReplicas: 3, TargetCPUUtilization: 50}, "cpu utilization target without a cpu request"},
		{AutoscalePolicy{MaxReplicas: 3, TargetMemoryUtilization: 50}, "memory utilization target without a memory request"},
		{AutoscalePolicy{MinReplicas: 4, MaxReplicas: 3, CPURequest: 1, TargetCPUUtilization: 50}, "max replicas 3 is less than min replicas 4"},
	}
	for _, tt := range tests {
		_, err := NewAutoscaler(s, tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `service "api": autoscale:`) {
			t.Errorf("NewAutoscaler(%+v) = %v, want %q", tt.p, err, tt.want)
		}
	}
}

// TestAutoscalerScalesRealProcesses runs the loop on real CPU-burning
// replicas with a tiny CPU request, so that even on a loaded machine they
// are far above target.
func TestAutoscalerScalesRealProcesses(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	s := startSupervisor(t, ServiceConfig{
		Command:  child("-burn", "0.1"),
		Replicas: 1,
	}, rec, WithSampleInterval(100*time.Millisecond))
	a, err := NewAutoscaler(s, AutoscalePolicy{
		MaxReplicas:          3,
		CPURequest:           0.005,
		TargetCPUUtilization: 50,
		Period:               200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	waitStatus(t, s, func(st ServiceStatus) error {
		if st.Desired != 3 || len(st.Replicas) != 3 {
			return fmt.Errorf("desired %d, %d replicas", st.Desired, len(st.Replicas))
		}
		return nil
	})
	e := rec.waitEvent(t, EventAutoscaled, nil)
	if !strings.Contains(e.Message, "cpu ") || !strings.Contains(e.Message, "of 50% target: 1 -> ") {
		t.Errorf("autoscaled event = %q", e.Message)
	}
}
