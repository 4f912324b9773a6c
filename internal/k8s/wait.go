package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// waitPoll is the time between two looks at the objects being waited for.
const waitPoll = 500 * time.Millisecond

// readiness is what one look at a workload says.
type readiness struct {
	ready bool
	// status is a short account for progress lines: "1/2 available".
	status string
	// failed is set when the workload cannot become ready without a change
	// (a Deployment past its progress deadline).
	failed string
	// uncontrolled is set when no controller has touched the object: the
	// platform that runs it is not installed.
	uncontrolled bool
}

// waitable reports whether nubo waits for objects of an object's kind.
func waitable(o *unstructured.Unstructured) bool {
	switch o.GetAPIVersion() + " " + o.GetKind() {
	case "apps/v1 Deployment", "apps/v1 StatefulSet", "serving.knative.dev/v1 Service", "postgresql.cnpg.io/v1 Cluster":
		return true
	}
	return false
}

// Wait waits until every workload among objs is ready: Deployments and
// StatefulSets rolled out with all replicas available, Knative Services and
// CloudNativePG Clusters reporting Ready. It prints a line to progress
// whenever one's state changes. A custom workload no controller has touched
// by the time the others are ready is reported and not waited for. When
// ctx ends first, the error names every workload not ready, with the
// reasons its pods give.
func (c *Cluster) Wait(ctx context.Context, objs []*unstructured.Unstructured, progress io.Writer) error {
	var pending []*unstructured.Unstructured
	for _, o := range objs {
		if waitable(o) {
			pending = append(pending, o)
		}
	}
	start := time.Now()
	last := map[string]string{}
	ticker := time.NewTicker(waitPoll)
	defer ticker.Stop()
	for {
		var still []*unstructured.Unstructured
		uncontrolled := map[string]bool{}
		for _, o := range pending {
			live, err := c.Get(ctx, o)
			if err != nil {
				if ending(ctx) {
					return c.notReady(ctx, pending, start)
				}
				return err
			}
			r := readiness{status: "not created"}
			if live != nil {
				r = readinessOf(live)
			}
			name := resourceName(o)
			if r.status != last[name] {
				state := "waiting"
				if r.ready {
					state = "ready"
				}
				fmt.Fprintf(progress, "%s: %s %s\n", state, name, r.status)
				last[name] = r.status
			}
			if r.failed != "" {
				return fmt.Errorf("%s did not become ready: %s%s", ObjectName(o), r.failed, c.podReasons(ctx, live))
			}
			if r.ready {
				continue
			}
			still = append(still, o)
			if r.uncontrolled {
				uncontrolled[key(o)] = true
			}
		}
		pending = still
		// Only custom workloads nothing controls are left: their platform
		// is missing, and waiting longer would not change that.
		onlyUncontrolled := len(pending) > 0
		for _, o := range pending {
			if !uncontrolled[key(o)] {
				onlyUncontrolled = false
			}
		}
		if onlyUncontrolled {
			for _, o := range pending {
				fmt.Fprintf(progress, "not waited for: %s has no status; is the controller of %s installed?\n", ObjectName(o), o.GetAPIVersion())
			}
			pending = nil
		}
		if len(pending) == 0 {
			fmt.Fprintf(progress, "ready in %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return c.notReady(ctx, pending, start)
		case <-ticker.C:
		}
	}
}

// notReady is the error of a wait that ctx ended: every workload still
// pending, its state, and what its pods say.
func (c *Cluster) notReady(ctx context.Context, pending []*unstructured.Unstructured, start time.Time) error {
	// The wait's context is over; the last looks get one of their own.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var lines []string
	for _, o := range pending {
		live, _ := c.Get(lctx, o)
		status := "not created"
		if live != nil {
			status = readinessOf(live).status
		}
		lines = append(lines, fmt.Sprintf("%s did not become ready: %s%s", ObjectName(o), status, c.podReasons(lctx, live)))
	}
	err := ctx.Err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("gave up waiting after %s", time.Since(start).Round(100*time.Millisecond))
	}
	return fmt.Errorf("%s: %w", strings.Join(lines, "\n"), err)
}

// ending reports whether ctx is over or about to be: client-go's rate
// limiter refuses a request that could not finish in time before the
// context itself ends.
func ending(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < waitPoll
}

// readinessOf reads a workload's status the way kubectl rollout status
// does, or its Ready condition.
func readinessOf(o *unstructured.Unstructured) readiness {
	gen := o.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(o.Object, "status", "observedGeneration")
	switch o.GetKind() {
	case "Deployment", "StatefulSet":
		want, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
		if !found {
			want = 1
		}
		updated, _, _ := unstructured.NestedInt64(o.Object, "status", "updatedReplicas")
		current, _, _ := unstructured.NestedInt64(o.Object, "status", "replicas")
		available, _, _ := unstructured.NestedInt64(o.Object, "status", "availableReplicas")
		if o.GetKind() == "StatefulSet" {
			available, _, _ = unstructured.NestedInt64(o.Object, "status", "readyReplicas")
		}
		r := readiness{status: fmt.Sprintf("%d/%d available", available, want)}
		if observed < gen {
			r.status = "rollout not started"
			return r
		}
		if o.GetKind() == "Deployment" {
			for _, cond := range conditions(o) {
				if cond["type"] == "Progressing" && cond["reason"] == "ProgressDeadlineExceeded" {
					r.failed = fmt.Sprint(cond["message"])
				}
			}
		}
		r.ready = updated == want && current == want && available == want
		return r
	}
	for _, cond := range conditions(o) {
		if cond["type"] != "Ready" {
			continue
		}
		status := fmt.Sprintf("Ready=%v", cond["status"])
		if msg, ok := cond["message"].(string); ok && msg != "" {
			status += ": " + msg
		}
		return readiness{ready: cond["status"] == "True" && observed >= gen, status: status}
	}
	if _, hasStatus := o.Object["status"]; !hasStatus {
		return readiness{status: "no status yet", uncontrolled: true}
	}
	return readiness{status: "not ready"}
}

func conditions(o *unstructured.Unstructured) []map[string]any {
	list, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	var out []map[string]any
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// podReasons says why a workload's pods are not ready, from their
// containers' waiting states and the pods' conditions: ImagePullBackOff,
// CrashLoopBackOff, Unschedulable with the scheduler's message.
func (c *Cluster) podReasons(ctx context.Context, live *unstructured.Unstructured) string {
	if live == nil {
		return ""
	}
	sel, found, _ := unstructured.NestedStringMap(live.Object, "spec", "selector", "matchLabels")
	if !found || len(sel) == 0 {
		return ""
	}
	pods, err := c.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(live.GetNamespace()).
		List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
	if err != nil {
		return ""
	}
	if len(pods.Items) == 0 {
		return "; no pods"
	}
	var reasons []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			reasons = append(reasons, s)
		}
	}
	for _, p := range pods.Items {
		statuses, _, _ := unstructured.NestedSlice(p.Object, "status", "containerStatuses")
		for _, s := range statuses {
			m, _ := s.(map[string]any)
			if w, ok, _ := unstructured.NestedMap(m, "state", "waiting"); ok {
				add(fmt.Sprintf("pod %s: %v %v", p.GetName(), w["reason"], w["message"]))
			}
		}
		for _, cond := range conditions(&p) {
			if cond["status"] == "False" && cond["reason"] != nil && cond["reason"] != "" {
				add(fmt.Sprintf("pod %s: %v: %v", p.GetName(), cond["reason"], cond["message"]))
			}
		}
		if phase, _, _ := unstructured.NestedString(p.Object, "status", "phase"); phase == "Pending" && len(statuses) == 0 {
			add(fmt.Sprintf("pod %s: Pending", p.GetName()))
		}
	}
	if len(reasons) == 0 {
		return ""
	}
	sort.Strings(reasons)
	if len(reasons) > 5 {
		reasons = append(reasons[:5], fmt.Sprintf("and %d more", len(reasons)-5))
	}
	return "; " + strings.Join(reasons, "; ")
}
