package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
)

// HPA defaults, as in kube-controller-manager and autoscaling/v2.
const (
	// DefaultTolerance is --horizontal-pod-autoscaler-tolerance.
	DefaultTolerance = 0.1
	// DefaultScaleDownStabilization is behavior.scaleDown's default
	// stabilizationWindowSeconds.
	DefaultScaleDownStabilization = 5 * time.Minute
	// DefaultAutoscalePeriod is --horizontal-pod-autoscaler-sync-period.
	DefaultAutoscalePeriod = 15 * time.Second
)

// scaleUpPeriod is the period of the default scale-up policies: within it
// a workload may grow by 100% or by 4 replicas, whichever is more.
const scaleUpPeriod = 15 * time.Second

// AutoscalePolicy is a HorizontalPodAutoscaler (autoscaling/v2) on CPU and
// memory utilization for one service, with the default behavior.
type AutoscalePolicy struct {
	// MinReplicas is the lower bound; zero means 1.
	MinReplicas int
	// MaxReplicas is the upper bound; required.
	MaxReplicas int
	// CPURequest is one replica's requests.cpu, in cores; utilization is
	// relative to it.
	CPURequest float64
	// TargetCPUUtilization is the target average utilization in percent of
	// CPURequest (70 means 70%); zero means no CPU metric.
	TargetCPUUtilization float64
	// MemoryRequest is one replica's requests.memory, in bytes.
	MemoryRequest uint64
	// TargetMemoryUtilization is the target average utilization in percent
	// of MemoryRequest; zero means no memory metric.
	TargetMemoryUtilization float64
	// Tolerance is how far the usage ratio may be from 1 without scaling;
	// zero means DefaultTolerance.
	Tolerance float64
	// ScaleDownStabilization is the window whose highest recommendation is
	// used when scaling down; zero means DefaultScaleDownStabilization,
	// negative means none.
	ScaleDownStabilization time.Duration
	// ScaleUpStabilization is the window whose lowest recommendation is used
	// when scaling up; zero means none, as in Kubernetes.
	ScaleUpStabilization time.Duration
	// Period is how often Run decides; zero means DefaultAutoscalePeriod.
	Period time.Duration
}

func (p AutoscalePolicy) normalize(service string) (AutoscalePolicy, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.MinReplicas == 0 {
		p.MinReplicas = 1
	}
	if p.MinReplicas < 1 {
		bad("min replicas %d is less than 1", p.MinReplicas)
	}
	if p.MaxReplicas < p.MinReplicas {
		bad("max replicas %d is less than min replicas %d", p.MaxReplicas, p.MinReplicas)
	}
	if p.TargetCPUUtilization <= 0 && p.TargetMemoryUtilization <= 0 {
		bad("no target: set a cpu or memory utilization target")
	}
	if p.TargetCPUUtilization > 0 && p.CPURequest <= 0 {
		bad("cpu utilization target without a cpu request")
	}
	if p.TargetMemoryUtilization > 0 && p.MemoryRequest == 0 {
		bad("memory utilization target without a memory request")
	}
	if p.TargetCPUUtilization < 0 || p.TargetMemoryUtilization < 0 || p.Tolerance < 0 || p.Period < 0 || p.ScaleUpStabilization < 0 {
		bad("targets, tolerance, period and scale-up window must not be negative")
	}
	if p.Tolerance == 0 {
		p.Tolerance = DefaultTolerance
	}
	switch {
	case p.ScaleDownStabilization == 0:
		p.ScaleDownStabilization = DefaultScaleDownStabilization
	case p.ScaleDownStabilization < 0:
		p.ScaleDownStabilization = 0
	}
	if p.Period == 0 {
		p.Period = DefaultAutoscalePeriod
	}
	if err := errors.Join(errs...); err != nil {
		return p, fmt.Errorf("service %q: autoscale: %w", service, err)
	}
	return p, nil
}

// ReplicaMetrics is one replica as the autoscaler sees it.
type ReplicaMetrics struct {
	// Ready is the replica's readiness; unready replicas are set aside for
	// CPU, as the HPA does, since starting processes burn CPU.
	Ready bool
	// Usage is the last sample, nil when there is none yet (the HPA's
	// "missing metrics").
	Usage *ResourceUsage
}

// MetricStatus is what one metric recommends.
type MetricStatus struct {
	// Metric is "cpu" or "memory".
	Metric string
	// Utilization is the average utilization of the replicas with metrics,
	// in percent of the request.
	Utilization float64
	// Target is the target utilization, in percent.
	Target float64
	// Replicas is the replica count this metric recommends.
	Replicas int
	// Err is set when the metric could not be computed.
	Err error
}

// String formats m for a decision's reason, e.g. "cpu 140% of 70% target".
func (m MetricStatus) String() string {
	if m.Err != nil {
		return fmt.Sprintf("%s: %v", m.Metric, m.Err)
	}
	return fmt.Sprintf("%s %.0f%% of %.0f%% target", m.Metric, m.Utilization, m.Target)
}

// DesiredReplicas is the HPA's replica calculation (kube-controller-manager's
// replica calculator) for p's metrics: for each metric,
// desired = ceil(ready × utilization / target), unless the ratio is within
// the tolerance of 1; replicas without metrics count as 100% of target on a
// scale-down and 0% on a scale-up, and unready replicas as 0% on a CPU
// scale-up, and if that reverses the direction nothing changes. With
// several metrics the highest recommendation wins; if a metric fails and
// the others recommend scaling down, nothing changes. It neither clamps to
// [min, max] nor stabilizes: see Autoscaler.Decide. p must be normalized.
func DesiredReplicas(p AutoscalePolicy, current int, replicas []ReplicaMetrics) (int, []MetricStatus, error) {
	var statuses []MetricStatus
	if p.TargetCPUUtilization > 0 {
		samples := make([]podSample, len(replicas))
		for i, r := range replicas {
			samples[i] = podSample{ready: r.Ready, has: r.Usage != nil}
			if r.Usage != nil {
				samples[i].value = r.Usage.CPU
			}
		}
		n, util, err := resourceReplicas(current, samples, p.CPURequest, p.TargetCPUUtilization, p.Tolerance, true)
		statuses = append(statuses, MetricStatus{Metric: "cpu", Utilization: util, Target: p.TargetCPUUtilization, Replicas: n, Err: err})
	}
	if p.TargetMemoryUtilization > 0 {
		samples := make([]podSample, len(replicas))
		for i, r := range replicas {
			samples[i] = podSample{ready: r.Ready, has: r.Usage != nil}
			if r.Usage != nil {
				samples[i].value = float64(r.Usage.RSS)
			}
		}
		n, util, err := resourceReplicas(current, samples, float64(p.MemoryRequest), p.TargetMemoryUtilization, p.Tolerance, false)
		statuses = append(statuses, MetricStatus{Metric: "memory", Utilization: util, Target: p.TargetMemoryUtilization, Replicas: n, Err: err})
	}

	desired, valid, invalid := 0, 0, 0
	for _, m := range statuses {
		if m.Err != nil {
			invalid++
			continue
		}
		valid++
		desired = max(desired, m.Replicas)
	}
	switch {
	case valid == 0:
		var errs []error
		for _, m := range statuses {
			errs = append(errs, fmt.Errorf("%s: %w", m.Metric, m.Err))
		}
		return current, statuses, errors.Join(errs...)
	case invalid > 0 && desired < current:
		// A scale-down on partial information is not safe.
		return current, statuses, nil
	}
	return desired, statuses, nil
}

type podSample struct {
	value float64
	has   bool
	ready bool
}

// resourceReplicas follows GetResourceReplicas in Kubernetes'
// pkg/controller/podautoscaler/replica_calculator.go. Every replica has the
// same request, so utilization is the mean value over the request.
func resourceReplicas(current int, pods []podSample, request, target, tolerance float64, considerReadiness bool) (int, float64, error) {
	var values []float64
	missing, unready := 0, 0
	for _, p := range pods {
		switch {
		case !p.has:
			missing++
		case considerReadiness && !p.ready:
			unready++
		default:
			values = append(values, p.value)
		}
	}
	if len(values) == 0 {
		return current, 0, errors.New("no metrics for any ready replica yet")
	}
	utilization := func(vals []float64) float64 {
		sum := 0.0
		for _, v := range vals {
			sum += v
		}
		return 100 * sum / (float64(len(vals)) * request)
	}
	within := func(ratio float64) bool { return math.Abs(ratio-1) <= tolerance }

	util := utilization(values)
	ratio := util / target
	scaleUpWithUnready := unready > 0 && ratio > 1
	if !scaleUpWithUnready && missing == 0 {
		if within(ratio) {
			return current, util, nil
		}
		return int(math.Ceil(ratio * float64(len(values)))), util, nil
	}

	// Assume the worst for the direction being considered, and keep the
	// current count if that changes the answer.
	if missing > 0 {
		fill := 0.0 // scale-up: missing replicas use nothing
		if ratio < 1 {
			fill = request * max(100, target) / 100 // scale-down: at least the target
		}
		if ratio != 1 {
			for range missing {
				values = append(values, fill)
			}
		}
	}
	if scaleUpWithUnready {
		for range unready {
			values = append(values, 0)
		}
	}
	newRatio := utilization(values) / target
	if within(newRatio) || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		return current, util, nil
	}
	n := int(math.Ceil(newRatio * float64(len(values))))
	if (newRatio < 1 && n > current) || (newRatio > 1 && n < current) {
		return current, util, nil
	}
	return n, util, nil
}

// Decision is one autoscaling decision.
type Decision struct {
	// Time is the decision's time, as given to Decide.
	Time time.Time
	// Current is the replica count before the decision.
	Current int
	// Recommended is what the metrics alone recommend (DesiredReplicas).
	Recommended int
	// Desired is the count after stabilization, rate limits and [min, max].
	Desired int
	// Metrics are the per-metric recommendations.
	Metrics []MetricStatus
	// Reason says why, e.g. "cpu 140% of 70% target: 2 -> 4".
	Reason string
}

// Autoscaler is a HorizontalPodAutoscaler for one Supervisor: Decide is the
// controller's algorithm with its memory of recent recommendations, and Run
// the control loop.
type Autoscaler struct {
	sup    *Supervisor
	policy AutoscalePolicy
	log    *slog.Logger

	mu sync.Mutex // guards the fields below
	// recs are recent unstabilized recommendations, for the stabilization
	// windows; ups are recent scale-ups, for the scale-up rate limit.
	recs []timedCount
	ups  []timedCount
	last *Decision
}

type timedCount struct {
	t time.Time
	n int
}

// NewAutoscaler validates p and returns an autoscaler for sup. sup may be
// nil to use Decide alone.
func NewAutoscaler(sup *Supervisor, p AutoscalePolicy) (*Autoscaler, error) {
	name := ""
	log := slog.New(slog.DiscardHandler)
	if sup != nil {
		name, log = sup.cfg.Name, sup.log
	}
	np, err := p.normalize(name)
	if err != nil {
		return nil, err
	}
	return &Autoscaler{sup: sup, policy: np, log: log.With("component", "autoscaler")}, nil
}

// Policy returns the normalized policy.
func (a *Autoscaler) Policy() AutoscalePolicy { return a.policy }

// LastDecision returns the last decision, if any.
func (a *Autoscaler) LastDecision() (Decision, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return Decision{}, false
	}
	return *a.last, true
}

// Decide computes the desired replica count at time now for a workload of
// current replicas with the given metrics, as the HPA controller does:
// below min or above max it returns the bound; otherwise it takes the
// metrics' recommendation, stabilizes it (the highest recommendation within
// the scale-down window, the lowest within the scale-up window), limits a
// scale-up to 100% or 4 replicas per 15s, whichever is more, and clamps it
// to [min, max]. It records the decision as applied: call it once per
// period and apply its result.
func (a *Autoscaler) Decide(now time.Time, current int, replicas []ReplicaMetrics) Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.policy
	d := Decision{Time: now, Current: current, Recommended: current, Desired: current}
	switch {
	case current == 0:
		d.Reason = "scaled to zero: autoscaling disabled"
	case current > p.MaxReplicas:
		d.Desired = p.MaxReplicas
		d.Reason = fmt.Sprintf("above max replicas %d: %d -> %d", p.MaxReplicas, current, d.Desired)
	case current < p.MinReplicas:
		d.Desired = p.MinReplicas
		d.Reason = fmt.Sprintf("below min replicas %d: %d -> %d", p.MinReplicas, current, d.Desired)
	default:
		rec, metrics, err := DesiredReplicas(p, current, replicas)
		d.Recommended, d.Metrics = rec, metrics
		if err != nil {
			d.Reason = fmt.Sprintf("no scaling: %v", err)
			break
		}
		desired, why := a.normalize(now, current, rec)
		d.Desired = desired
		var ms []string
		for _, m := range metrics {
			ms = append(ms, m.String())
		}
		d.Reason = fmt.Sprintf("%s: %d -> %d", strings.Join(ms, ", "), current, desired)
		if why != "" {
			d.Reason += " (" + why + ")"
		}
	}
	if d.Desired > current {
		a.ups = append(a.ups, timedCount{now, d.Desired - current})
	}
	a.last = &d
	return d
}

// normalize applies stabilization, the scale-up rate limit and the bounds
// to a recommendation, as normalizeDesiredReplicasWithBehaviors does, and
// says what held it back, if anything. a.mu must be held.
func (a *Autoscaler) normalize(now time.Time, current, rec int) (int, string) {
	p := a.policy
	up, down := rec, rec
	upCutoff, downCutoff := now.Add(-p.ScaleUpStabilization), now.Add(-p.ScaleDownStabilization)
	keep := a.recs[:0]
	for _, r := range a.recs {
		if r.t.After(upCutoff) {
			up = min(up, r.n)
		}
		if r.t.After(downCutoff) {
			down = max(down, r.n)
		}
		if r.t.After(upCutoff) || r.t.After(downCutoff) {
			keep = append(keep, r)
		}
	}
	a.recs = append(keep, timedCount{now, rec})

	desired, why := current, ""
	if desired < up {
		desired = up
	}
	if desired > down {
		desired = down
	}
	switch {
	case rec < current && desired > rec:
		why = fmt.Sprintf("recommended %d, held by the %v scale-down stabilization window", rec, p.ScaleDownStabilization)
	case rec > current && desired < rec:
		why = fmt.Sprintf("recommended %d, held by the %v scale-up stabilization window", rec, p.ScaleUpStabilization)
	}

	if desired > current {
		// Replicas at the start of the rate-limit period.
		added := 0
		keep := a.ups[:0]
		for _, u := range a.ups {
			if u.t.After(now.Add(-scaleUpPeriod)) {
				added += u.n
				keep = append(keep, u)
			}
		}
		a.ups = keep
		start := current - added
		limit := max(start*2, start+4, current)
		if desired > limit {
			desired, why = limit, fmt.Sprintf("recommended %d, limited to %d by the scale-up rate (100%% or 4 per %v)", rec, limit, scaleUpPeriod)
		}
	}
	switch {
	case desired > p.MaxReplicas:
		desired, why = p.MaxReplicas, fmt.Sprintf("recommended %d, capped at max replicas", rec)
	case desired < p.MinReplicas:
		desired, why = p.MinReplicas, fmt.Sprintf("recommended %d, held at min replicas", rec)
	}
	return desired, why
}

// Run decides every Period from the Supervisor's status and scales it,
// reporting each change as an EventAutoscaled, until ctx is done.
func (a *Autoscaler) Run(ctx context.Context) error {
	if a.sup == nil {
		return errors.New("autoscale: no supervisor")
	}
	t := time.NewTicker(a.policy.Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st := a.sup.Status()
		var ms []ReplicaMetrics
		for _, r := range st.Replicas {
			// Retiring replicas are being deleted and finished ones have
			// failed: the HPA ignores both.
			if r.Retiring || terminal(r.State) {
				continue
			}
			ms = append(ms, ReplicaMetrics{Ready: r.Ready, Usage: r.Usage})
		}
		d := a.Decide(time.Now(), st.Desired, ms)
		a.log.Debug("decided", "reason", d.Reason)
		if d.Desired == d.Current {
			continue
		}
		a.sup.emit(Event{Kind: EventAutoscaled, Replica: -1, Message: d.Reason})
		if err := a.sup.Scale(ctx, d.Desired); err != nil {
			if errors.Is(err, ErrStopped) || ctx.Err() != nil {
				return nil
			}
			a.log.Warn("scale failed", "err", err)
		}
	}
}
