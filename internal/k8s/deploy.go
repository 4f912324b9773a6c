package k8s

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Prepare renders app for applying to this cluster: opts.Secrets fill the
// Secrets, and the values nubo generates (database roles' passwords) are
// read back from the cluster, or generated the first time. Diff and Deploy
// both apply what Prepare returns, so that a diff shows what a deploy does.
func (c *Cluster) Prepare(ctx context.Context, app *spec.App, opts Options) (*Result, error) {
	base := opts
	base.Secrets = nil
	res, err := Render(app, base)
	if err != nil {
		return nil, err
	}
	gen := map[string]map[string]string{}
	for _, o := range res.Objects {
		keys := o.GetAnnotations()[AnnotationGenerate]
		if o.GetKind() != "Secret" || keys == "" {
			continue
		}
		live, err := c.Get(ctx, o)
		if err != nil {
			return nil, err
		}
		vals := map[string]string{}
		for _, k := range strings.Split(keys, ",") {
			if v, ok, _ := unstructured.NestedString(objOrEmpty(live), "data", k); ok {
				if dec, err := base64.StdEncoding.DecodeString(v); err == nil && len(dec) > 0 {
					vals[k] = string(dec)
					continue
				}
			}
			if vals[k], err = randomPassword(); err != nil {
				return nil, err
			}
		}
		gen[o.GetName()] = vals
	}
	opts.Generated = gen
	return Render(app, opts)
}

func objOrEmpty(o *unstructured.Unstructured) map[string]any {
	if o == nil {
		return map[string]any{}
	}
	return o.Object
}

// randomPassword is 32 letters and digits: safe in a connection URL
// without escaping, 190 bits of entropy.
func randomPassword() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf), nil
}

// DeployOptions tune Deploy.
type DeployOptions struct {
	// Prune deletes the app's objects that the rendering no longer has.
	Prune bool
	// Wait waits for the workloads to be ready, for at most Timeout.
	Wait    bool
	Timeout time.Duration
	// Out gets a line per object applied or deleted, and the progress of
	// the wait.
	Out io.Writer
	// Annotations are set on every object applied: nubo deploy's record
	// in the audit trail (AnnotationAudit), who deployed and when.
	Annotations map[string]string
}

// Deploy applies a rendering of the app named app in namespace ns, in
// order, then prunes and waits as opts say. A kind the cluster does not
// serve (a platform not installed) does not stop the others from being
// applied; the error lists every one of them at the end.
func (c *Cluster) Deploy(ctx context.Context, objs []*unstructured.Unstructured, app, ns string, opts DeployOptions) error {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	var missing []error
	for _, o := range objs {
		if len(opts.Annotations) > 0 {
			o = o.DeepCopy()
			a := o.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			for k, v := range opts.Annotations {
				a[k] = v
			}
			o.SetAnnotations(a)
		}
		live, err := c.Get(ctx, o)
		if errors.Is(err, errNotServed) {
			missing = append(missing, err)
			continue
		}
		if err != nil {
			return err
		}
		applied, err := c.Apply(ctx, o, false)
		if errors.Is(err, errNotServed) {
			missing = append(missing, err)
			continue
		}
		if err != nil {
			return err
		}
		action := "created"
		if live != nil {
			action = "configured"
			if live.GetResourceVersion() == applied.GetResourceVersion() {
				action = "unchanged"
			}
		}
		fmt.Fprintf(out, "%s %s\n", resourceName(o), action)
	}
	if len(missing) > 0 {
		return errors.Join(missing...)
	}
	if opts.Prune {
		stale, err := c.Stale(ctx, app, ns, objs)
		if err != nil {
			return err
		}
		for _, o := range stale {
			if err := c.Delete(ctx, o, false); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s deleted (no longer rendered)\n", resourceName(o))
		}
	}
	if !opts.Wait {
		return nil
	}
	wctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	return c.Wait(wctx, objs, out)
}

// resourceName is kubectl's way of naming an object: deployment.apps/users.
func resourceName(o *unstructured.Unstructured) string {
	i := kindIndex(o.GetAPIVersion(), o.GetKind())
	if i < 0 || kinds[i].group == "" {
		return strings.ToLower(o.GetKind()) + "/" + o.GetName()
	}
	return strings.ToLower(o.GetKind()) + "." + kinds[i].group + "/" + o.GetName()
}
