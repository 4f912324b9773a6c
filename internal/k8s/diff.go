package k8s

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Action is what applying a rendering does to one object.
type Action string

// The actions, as `nubo diff` and `nubo deploy` print them.
const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
	Prune     Action = "prune"
)

// Change is one object's difference between the cluster and a rendering.
type Change struct {
	// Object is the rendered object, or the live one for Prune.
	Object *unstructured.Unstructured
	Action Action
	// Diff is a line diff of the live object and the server's dry run of
	// the apply, for Update; Secrets' values are replaced by a digest.
	Diff string
	// Unvalidated is set when the server could not dry-run the object:
	// its namespace does not exist yet.
	Unvalidated bool
}

// Diff compares a rendering with the cluster: each object is applied in a
// server-side dry run and compared with the live one, so the differences
// are what the server would really store (defaults, admission, other field
// managers included). Objects of the app nubo would prune come last.
func (c *Cluster) Diff(ctx context.Context, objs []*unstructured.Unstructured, app, ns string) ([]Change, error) {
	nsExists, err := c.namespaceExists(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, o := range objs {
		if !nsExists && o.GetNamespace() != "" {
			// Nothing in a namespace that does not exist can be dry-run;
			// everything in it is new.
			out = append(out, Change{Object: o, Action: Create, Unvalidated: true})
			continue
		}
		live, err := c.Get(ctx, o)
		if err != nil {
			return nil, err
		}
		o := withDeployAnnotations(o, live)
		after, err := c.Apply(ctx, o, true)
		if err != nil {
			return nil, err
		}
		if live == nil {
			out = append(out, Change{Object: o, Action: Create})
			continue
		}
		before, afterText := comparable(live), comparable(after)
		if before == afterText {
			out = append(out, Change{Object: o, Action: Unchanged})
			continue
		}
		out = append(out, Change{Object: o, Action: Update, Diff: lineDiff(before, afterText)})
	}
	if !nsExists {
		return out, nil
	}
	stale, err := c.Stale(ctx, app, ns, objs)
	if err != nil {
		return nil, err
	}
	for _, o := range stale {
		out = append(out, Change{Object: o, Action: Prune})
	}
	return out, nil
}

// deployAnnotations are the annotations nubo deploy sets on what it
// applies, from the audit trail: they say who deployed, not what.
var deployAnnotations = []string{AnnotationAudit, AnnotationDeployedBy, AnnotationDeployedAt}

// withDeployAnnotations is o with live's deploy annotations, so that the
// dry run of a diff keeps them and shows only what the spec changes.
func withDeployAnnotations(o, live *unstructured.Unstructured) *unstructured.Unstructured {
	if live == nil {
		return o
	}
	var c *unstructured.Unstructured
	for _, k := range deployAnnotations {
		v, ok := live.GetAnnotations()[k]
		if !ok {
			continue
		}
		if c == nil {
			c = o.DeepCopy()
		}
		a := c.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[k] = v
		c.SetAnnotations(a)
	}
	if c == nil {
		return o
	}
	return c
}

// comparable is an object as YAML without what changes on every write
// (resource version, managed fields, status) and with secret values
// replaced by a digest: equal text means nothing to apply.
func comparable(o *unstructured.Unstructured) string {
	c := o.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	if c.GetKind() == "Secret" && c.GetAPIVersion() == "v1" {
		redactSecret(c.Object)
	}
	data, err := yaml.Marshal(c.Object)
	if err != nil {
		return fmt.Sprintf("%v", c.Object)
	}
	return string(data)
}

// redactSecret replaces each value of a Secret by a short digest: a diff
// shows which keys change, never what they hold.
func redactSecret(obj map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		m, ok := obj[field].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range m {
			sum := sha256.Sum256([]byte(fmt.Sprint(v)))
			m[k] = fmt.Sprintf("(redacted, sha256:%x)", sum[:4])
		}
	}
}

// WriteChanges prints changes for people: one line per object that
// changes, with its diff, and a count. prune says whether stale objects
// will be deleted.
func WriteChanges(w io.Writer, changes []Change, prune bool) {
	n := map[Action]int{}
	for _, ch := range changes {
		n[ch.Action]++
		name := ObjectName(ch.Object)
		switch ch.Action {
		case Create:
			note := ""
			if ch.Unvalidated {
				note = " (its namespace does not exist yet: not checked by the server)"
			}
			fmt.Fprintf(w, "+ %s created%s\n", name, note)
		case Update:
			fmt.Fprintf(w, "~ %s changed\n", name)
			for _, line := range strings.Split(strings.TrimRight(ch.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		case Prune:
			if prune {
				fmt.Fprintf(w, "- %s deleted (no longer rendered)\n", name)
			} else {
				fmt.Fprintf(w, "- %s no longer rendered (deleted with --prune)\n", name)
			}
		}
	}
	fmt.Fprintf(w, "%d to create, %d to change, %d unchanged, %d no longer rendered\n", n[Create], n[Update], n[Unchanged], n[Prune])
}

// lineDiff is a unified-style diff of two texts with three lines of
// context, "-" for the live object and "+" for the result of the apply.
// Written here because objects are small (a longest common subsequence is
// cheap) and no diff library is among nubo's dependencies.
func lineDiff(a, b string) string {
	x := strings.Split(strings.TrimRight(a, "\n"), "\n")
	y := strings.Split(strings.TrimRight(b, "\n"), "\n")
	// lcs[i][j] is the length of the longest common subsequence of x[i:]
	// and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i++
			j++
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', y[j]})
			j++
		default:
			lines = append(lines, line{'-', x[i]})
			i++
		}
	}
	const context = 3
	show := make([]bool, len(lines))
	for k, l := range lines {
		if l.op == ' ' {
			continue
		}
		for d := max(0, k-context); d <= min(len(lines)-1, k+context); d++ {
			show[d] = true
		}
	}
	var out strings.Builder
	gap := false
	for k, l := range lines {
		if !show[k] {
			gap = true
			continue
		}
		if gap && out.Len() > 0 {
			out.WriteString("...\n")
		}
		gap = false
		fmt.Fprintf(&out, "%c %s\n", l.op, l.text)
	}
	return out.String()
}
